"""Heatmap codecs: encode -> decode round trips, target weights, image mapping, flip test."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pyramidpose.codecs import (
    HeatmapCodec,
    encode_msra,
    encode_udp,
    flip_heatmaps_back,
    gaussian_blur,
    get_heatmap_maximum,
    is_udp,
    refine_quarter,
)
from pyramidpose.geometry.crops import box_to_center_scale, image_to_crop
from pyramidpose.skeletons import COCO

INPUT = (256, 192)  # (H, W), the codec convention
HEATMAP = (64, 48)
INPUT_WH = INPUT[::-1]  # for arithmetic with (x, y) points
HEATMAP_WH = HEATMAP[::-1]


def decode_heatmaps(hm: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode with the codec of a decode-method name."""
    return HeatmapCodec(INPUT).with_method(method).decode(hm)


def _random_keypoints(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # keep 3 sigma of the Gaussian (24 input px) inside so the encoders do not truncate at the border
    return rng.uniform([24.0, 24.0], [INPUT_WH[0] - 25.0, INPUT_WH[1] - 25.0], size=(n, 17, 2))


def test_udp_round_trip_within_005_px() -> None:
    kp = _random_keypoints(64, 0)
    hm, w = encode_udp(kp, None, INPUT, HEATMAP, sigma=2.0)
    assert hm.shape == (64, 17, 64, 48) and (w == 1).all()
    coords, maxvals = decode_heatmaps(hm, "dark_udp")
    to_hm = (np.array(HEATMAP_WH) - 1) / (np.array(INPUT_WH) - 1)
    err_input_px = np.abs(coords / to_hm - kp)
    assert err_input_px.max() < 0.05, err_input_px.max()
    assert (maxvals > 0.8).all()


def test_dark_round_trip_within_005_px() -> None:
    kp = _random_keypoints(64, 1)
    hm, _ = encode_msra(kp, None, INPUT, HEATMAP, sigma=2.0, unbiased=True)
    coords, _ = decode_heatmaps(hm, "dark")
    err_input_px = np.abs(coords * 4.0 - kp)
    assert err_input_px.max() < 0.05, err_input_px.max()


def test_msra_round_trip_within_quarter_pixel() -> None:
    kp = _random_keypoints(64, 2)
    hm, _ = encode_msra(kp, None, INPUT, HEATMAP, sigma=2.0)
    coords, _ = decode_heatmaps(hm, "msra")
    # the biased encoder centres the Gaussian on the nearest heatmap pixel: the quarter shift
    # then lands within 0.25 of that pixel, i.e. within 0.5 + 0.25 heatmap px of the truth
    assert np.abs(coords - kp / 4.0).max() <= 0.75
    # and plain arg-max + quarter shift on an exactly centred heatmap moves toward the true side
    hm_u, _ = encode_msra(kp, None, INPUT, HEATMAP, unbiased=True)
    c_u, _ = decode_heatmaps(hm_u, "msra")
    c_max, _ = get_heatmap_maximum(hm_u)
    assert np.abs(c_u - kp / 4.0).mean() < np.abs(c_max - kp / 4.0).mean()


def test_target_weights_invisible_and_outside() -> None:
    kp = np.array([[50.0, 60.0], [50.0, 60.0], [-100.0, 60.0], [50.0, 400.0], [-5.0, 60.0]])
    vis = np.array([2, 0, 2, 2, 2])
    for hm, w in (encode_udp(kp, vis, INPUT, HEATMAP), encode_msra(kp, vis, INPUT, HEATMAP)):
        np.testing.assert_array_equal(w, [1, 0, 0, 0, 1])  # -5 px: Gaussian still reaches the heatmap
        assert hm[0].max() > 0.9 and hm[1].max() == 0 and hm[2].max() == 0
    hm, _ = encode_udp(kp[:1], None, INPUT, HEATMAP)
    assert (hm[0] > 0).sum() <= 13 * 13  # cut to the 6 sigma + 1 window


@pytest.mark.parametrize("method", ["dark_udp", "dark"])
def test_image_round_trip_through_crop(method: str) -> None:
    udp = is_udp(method)
    rng = np.random.default_rng(3)
    boxes = np.array([[100.0, 50.0, 80.0, 200.0], [10.0, 300.0, 150.0, 90.0]])
    centers, scales = box_to_center_scale(boxes, INPUT_WH[0] / INPUT_WH[1])
    kp_img = boxes[:, None, :2] + rng.uniform(0.2, 0.8, (2, 17, 2)) * boxes[:, None, 2:]
    kp_in = np.stack([image_to_crop(kp_img[i], centers[i], scales[i], INPUT, udp=udp) for i in range(2)])
    if udp:
        hm, _ = encode_udp(kp_in, None, INPUT, HEATMAP)
    else:
        hm, _ = encode_msra(kp_in, None, INPUT, HEATMAP, unbiased=True)
    coords, _ = decode_heatmaps(hm, method)
    back = HeatmapCodec(INPUT, HEATMAP).with_method(method).to_image(coords, centers, scales)
    px_per_input_px = scales[:, None, :1] / INPUT_WH[0]
    assert (np.abs(back - kp_img) / px_per_input_px).max() < 0.05


def test_gaussian_blur_keeps_maximum_and_peak() -> None:
    hm, _ = encode_udp(_random_keypoints(2, 4), None, INPUT, HEATMAP)
    b = gaussian_blur(hm, 11)
    np.testing.assert_allclose(b.max(axis=(-2, -1)), hm.max(axis=(-2, -1)), rtol=1e-5)
    np.testing.assert_array_equal(get_heatmap_maximum(b)[0], get_heatmap_maximum(hm)[0])
    assert not np.allclose(b, hm)
    # same as a plain zero-padded separable filter per heatmap (then max-rescaled)
    import cv2
    from scipy.ndimage import correlate1d

    rnd = np.random.default_rng(7).random((3, 5, 20, 16)).astype(np.float32)
    k = cv2.getGaussianKernel(11, 0).ravel()
    ref = correlate1d(correlate1d(rnd, k, axis=-1, mode="constant"), k, axis=-2, mode="constant")
    ref *= rnd.max(axis=(-2, -1), keepdims=True) / ref.max(axis=(-2, -1), keepdims=True)
    np.testing.assert_allclose(gaussian_blur(rnd, 11), ref, atol=1e-5)


def test_flip_back_numpy_matches_torch_and_shift() -> None:
    hm = np.random.default_rng(5).random((2, 17, 8, 6)).astype(np.float32)
    perm = COCO.flip_index()
    a = flip_heatmaps_back(hm, perm)
    np.testing.assert_array_equal(a[:, 1], hm[:, 2, :, ::-1])
    t = flip_heatmaps_back(torch.from_numpy(hm), perm)
    np.testing.assert_array_equal(t.numpy(), a)
    s = flip_heatmaps_back(hm, perm, shift=True)
    np.testing.assert_array_equal(s[..., 1:], a[..., :-1])
    ts = flip_heatmaps_back(torch.from_numpy(hm), perm, shift=True)
    np.testing.assert_array_equal(ts.numpy(), s)


def test_flip_test_exact_on_symmetric_input_udp() -> None:
    """Symmetric keypoints: un-flipped heatmaps of the mirrored crop equal the originals (UDP)."""
    rng = np.random.default_rng(6)
    kp = np.zeros((17, 2))
    kp[:, 1] = rng.uniform(30, 220, 17)
    for left, right in COCO.flip_pairs:
        kp[left, 0] = rng.uniform(30, 90)
        kp[right, 0] = INPUT_WH[0] - 1 - kp[left, 0]
        kp[right, 1] = kp[left, 1]
    kp[0, 0] = (INPUT_WH[0] - 1) / 2  # nose on the midline
    hm, _ = encode_udp(kp, None, INPUT, HEATMAP)
    # a flip-equivariant model sees the same symmetric crop mirrored: its output is `hm` mirrored
    # and channel-swapped; un-flipping must give back exactly `hm`
    predicted_on_flipped = hm[COCO.flip_index()][..., ::-1]
    back = flip_heatmaps_back(predicted_on_flipped, COCO.flip_index())
    np.testing.assert_allclose(back, hm, atol=1e-6)
    avg = 0.5 * (hm + back)
    c_avg, _ = decode_heatmaps(avg, "dark_udp")
    c, _ = decode_heatmaps(hm, "dark_udp")
    np.testing.assert_allclose(c_avg, c, atol=1e-5)
    # and the decoded left/right pairs are mirror images about the heatmap centre
    for left, right in COCO.flip_pairs:
        assert c[left, 0] + c[right, 0] == pytest.approx(HEATMAP_WH[0] - 1, abs=1e-4)
        assert c[left, 1] == pytest.approx(c[right, 1], abs=1e-4)


def _scalar_dark_udp(hm_log_pad: np.ndarray, x: int, y: int) -> np.ndarray:
    """Reference Newton step for one keypoint on an edge-padded log heatmap (loop form)."""
    f = lambda dx, dy: hm_log_pad[y + 1 + dy, x + 1 + dx]  # noqa: E731
    g = np.array([0.5 * (f(1, 0) - f(-1, 0)), 0.5 * (f(0, 1) - f(0, -1))])
    dxx = f(1, 0) - 2 * f(0, 0) + f(-1, 0)
    dyy = f(0, 1) - 2 * f(0, 0) + f(0, -1)
    dxy = 0.5 * (f(1, 1) - f(1, 0) - f(0, 1) + 2 * f(0, 0) - f(-1, 0) - f(0, -1) + f(-1, -1))
    hess = np.array([[dxx, dxy], [dxy, dyy]]) + np.finfo(np.float32).eps * np.eye(2)
    return np.array([x, y], float) - np.linalg.inv(hess) @ g


def test_refinements_match_a_scalar_reference_on_arbitrary_heatmaps() -> None:
    from pyramidpose.codecs import refine_dark, refine_dark_udp

    rng = np.random.default_rng(8)
    hm = rng.random((2, 4, 16, 12)).astype(np.float32) + 0.01
    hm[0, 0, 0, 5] = 3.0  # maxima on the border too
    hm[1, 2, 15, 11] = 3.0
    coords, _ = get_heatmap_maximum(hm)
    blurred = gaussian_blur(hm, 11)
    out = refine_dark_udp(coords, hm, 11, reference=True)
    out_dark = refine_dark(coords, hm, 11, reference=True)
    for n in range(2):
        for k in range(4):
            x, y = (int(v) for v in coords[n, k])
            pad = np.pad(np.log(np.clip(blurred[n, k].astype(np.float64), 1e-3, 50)), 1, mode="edge")
            np.testing.assert_allclose(out[n, k], _scalar_dark_udp(pad, x, y), rtol=1e-4, atol=1e-4)
            lg = np.log(np.maximum(blurred[n, k].astype(np.float64), 1e-10))
            if 1 < x < 12 - 2 and 1 < y < 16 - 2:
                g = np.array([0.5 * (lg[y, x + 1] - lg[y, x - 1]), 0.5 * (lg[y + 1, x] - lg[y - 1, x])])
                dxx = 0.25 * (lg[y, x + 2] - 2 * lg[y, x] + lg[y, x - 2])
                dyy = 0.25 * (lg[y + 2, x] - 2 * lg[y, x] + lg[y - 2, x])
                dxy = 0.25 * (lg[y + 1, x + 1] - lg[y - 1, x + 1] - lg[y + 1, x - 1] + lg[y - 1, x - 1])
                expect = np.array([x, y]) - np.linalg.solve([[dxx, dxy], [dxy, dyy]], g)
            else:
                expect = np.array([x, y], float)
            np.testing.assert_allclose(out_dark[n, k], expect, rtol=1e-4, atol=1e-4)


def test_udp_combined_target_round_trip() -> None:
    from pyramidpose.codecs import decode_udp_combined, encode_udp_combined

    kp = _random_keypoints(8, 9)
    vis = np.ones((8, 17))
    vis[0, 3] = 0
    t, w = encode_udp_combined(kp, vis, INPUT, HEATMAP)
    assert t.shape == (8, 17, 3, 64, 48) and w[0, 3] == 0 and t[0, 3].max() == 0
    coords, maxvals = decode_udp_combined(t)
    to_hm = (np.array(HEATMAP_WH) - 1) / (np.array(INPUT_WH) - 1)
    ok = vis > 0
    assert np.abs(coords / to_hm - kp)[ok].max() < 1e-3  # the offsets carry the exact position
    assert (maxvals[ok] > 0.2).all()  # maxima of the blurred disc (not rescaled, as in MMPose)
    with pytest.raises(ValueError):
        decode_udp_combined(t.reshape(8, 51, 64, 48))


def test_codec_from_config_sizes_are_h_w_and_methods_round_trip() -> None:
    from types import SimpleNamespace

    codec = HeatmapCodec.from_config(SimpleNamespace(input_size=(256, 192), codec="msra"), sigma=3.0)
    assert codec.input_size == (256, 192) and codec.heatmap_size == (64, 48)
    assert not codec.udp and codec.sigma == 3.0 and codec.method == "dark"
    for method in ("msra", "dark", "udp", "dark_udp"):
        assert codec.with_method(method).method == method
    # encode follows the geometry: the MSRA target equals encode_msra, the UDP one encode_udp
    kp = _random_keypoints(2, 9)
    np.testing.assert_array_equal(codec.encode(kp)[0], encode_msra(kp, None, INPUT, HEATMAP, 3.0)[0])
    udp = codec.with_method("dark_udp")
    np.testing.assert_array_equal(udp.encode(kp)[0], encode_udp(kp, None, INPUT, HEATMAP, 3.0)[0])
    assert udp.encode(kp)[0].shape == (2, 17, 64, 48)
    # a non-square codec crops (H, W) images
    crop = udp.crop(np.zeros((300, 400, 3), np.uint8), (200.0, 150.0), (120.0, 160.0))
    assert crop.shape == (256, 192, 3)
    with pytest.raises(ValueError, match="refinement"):
        HeatmapCodec(refinement="soft")
    with pytest.raises(ValueError, match="decode method"):
        codec.with_method("argmax")
    with pytest.raises(ValueError, match="codec"):
        HeatmapCodec.from_config(SimpleNamespace(input_size=(256, 192), codec="simcc"))


def _degenerate_heatmaps() -> np.ndarray:
    """(17, 64, 48) heatmaps like an untrained model's: noise, faint noise, and flat up to 1e-6
    noise. Their blurred log has no clean peak: the log-Hessian at the arg-max is often not negative
    definite and the reference Newton step goes tens of pixels astray."""
    rng = np.random.default_rng(0)
    noise = rng.random((8, 64, 48))
    faint = 0.01 * rng.random((8, 64, 48))
    flat = 0.2 + 1e-6 * rng.random((1, 64, 48))
    return np.concatenate([noise, faint, flat]).astype(np.float32)


@pytest.mark.parametrize("method", ["dark", "dark_udp"])
def test_dark_falls_back_to_the_quarter_offset_on_degenerate_heatmaps(method) -> None:
    hm = _degenerate_heatmaps()
    codec = HeatmapCodec((256, 192)).with_method(method)
    coords, _ = get_heatmap_maximum(hm)
    quarter = refine_quarter(coords, hm)
    got, _ = codec.decode(hm)
    assert np.abs(got - coords).max() <= 1.0 + 1e-6  # never far from the arg-max
    ref, _ = dataclasses.replace(codec, reference_refine=True).decode(hm)
    far = np.linalg.norm(ref - coords, axis=-1) > 1.0
    assert far.any()  # the reference step does go astray on these
    np.testing.assert_allclose(got[far], quarter[far], atol=1e-6)
    # on a proper Gaussian both agree: the fallback changes nothing there
    g, _ = codec.encode(np.array([[[80.3, 131.7], [100.0, 40.2]]], np.float32))
    np.testing.assert_allclose(codec.decode(g)[0], dataclasses.replace(codec, reference_refine=True).decode(g)[0])
