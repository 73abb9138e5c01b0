"""Top-down geometry: box -> centre/scale, MSRA and UDP crop matrices, flips, half-body boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pyramidpose.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    flip_keypoints,
    half_body_box,
    normalize_crops,
    random_scale_rotation,
)
from pyramidpose.geometry.crops import (
    affine_points,
    box_to_center_scale,
    crop_to_image,
    get_affine_matrix,
    warp_crop,
)
from pyramidpose.skeletons import COCO


def test_box_to_center_scale_aspect_and_padding() -> None:
    c, s = box_to_center_scale(np.array([[10, 20, 30, 100], [0, 0, 90, 40]]), aspect_ratio=0.75)
    np.testing.assert_allclose(c, [[25, 70], [45, 20]])
    # tall box: width grows to 0.75 h; wide box: height grows to w / 0.75
    np.testing.assert_allclose(s, [[75 * 1.25, 100 * 1.25], [90 * 1.25, 120 * 1.25]])
    c1, s1 = box_to_center_scale([10, 20, 30, 100], 0.75, padding=1.0)
    assert c1.shape == (2,) and s1[0] / s1[1] == pytest.approx(0.75)


def _msra_three_point(center, scale, rot, size):
    """HRNet's construction of the crop matrix from three point correspondences."""
    w_out, h_out = size
    r = np.deg2rad(rot)

    def rotate(p):
        return np.array([p[0] * np.cos(r) - p[1] * np.sin(r), p[0] * np.sin(r) + p[1] * np.cos(r)])

    src_dir = rotate([0, scale[0] * -0.5])
    dst_dir = np.array([0, w_out * -0.5])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, np.asarray(center) + src_dir
    dst[0], dst[1] = [w_out * 0.5, h_out * 0.5], np.array([w_out * 0.5, h_out * 0.5]) + dst_dir
    for arr in (src, dst):
        d = arr[0] - arr[1]
        arr[2] = arr[1] + np.array([-d[1], d[0]])
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_msra_matrix_matches_three_point_construction(rot: float) -> None:
    center, scale = np.array([120.3, 80.7]), np.array([150.0, 200.0])
    m = get_affine_matrix(center, scale, (256, 192), rot)
    np.testing.assert_allclose(m, _msra_three_point(center, scale, rot, (192, 256)), atol=1e-4)


@pytest.mark.parametrize("rot", [0.0, 25.0])
def test_udp_matrix_maps_region_to_pixel_intervals(rot: float) -> None:
    center, scale, size = np.array([100.0, 60.0]), np.array([90.0, 120.0]), (256, 192)
    m = get_affine_matrix(center, scale, size, rot, udp=True)
    np.testing.assert_allclose(affine_points(center, m), [95.5, 127.5])
    if rot == 0:
        corners = np.array([center - scale / 2, center + scale / 2])
        np.testing.assert_allclose(affine_points(corners, m), [[0, 0], [191, 255]], atol=1e-9)
    inv = get_affine_matrix(center, scale, size, rot, udp=True, inverse=True)
    p = np.random.default_rng(0).uniform(0, 200, (10, 2))
    np.testing.assert_allclose(affine_points(affine_points(p, m), inv), p, atol=1e-9)
    # rotation has the same sign in both conventions
    m_msra = get_affine_matrix(center, scale, size, rot)
    a, b = m[:, :2] / np.linalg.norm(m[0, :2]), m_msra[:, :2] / np.linalg.norm(m_msra[0, :2])
    np.testing.assert_allclose(a, b, atol=1e-2)


def test_udp_crop_of_mirrored_image_is_mirrored_crop() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    w = img.shape[1]
    center, scale = np.array([37.3, 30.2]), np.array([45.0, 60.0])
    crop = warp_crop(img, center, scale, (64, 48), udp=True)
    assert crop.shape == (64, 48, 3)
    mirrored_center = np.array([w - 1 - center[0], center[1]])
    crop_m = warp_crop(img[:, ::-1].copy(), mirrored_center, scale, (64, 48), udp=True)
    diff = np.abs(crop.astype(int) - crop_m[:, ::-1].astype(int))
    assert diff.max() <= 1  # bilinear rounding only


def test_warp_crop_moves_pixels_where_matrix_says() -> None:
    ys, xs = np.mgrid[0:100, 0:120]
    blob = np.exp(-((xs - 70.3) ** 2 + (ys - 40.6) ** 2) / (2 * 4.0**2))
    img = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    for udp in (False, True):
        center, scale = np.array([60.0, 50.0]), np.array([60.0, 80.0])
        crop = warp_crop(img, center, scale, (128, 96), udp=udp)
        expect = affine_points(np.array([70.3, 40.6]), get_affine_matrix(center, scale, (128, 96), udp=udp))
        ys, xs = np.nonzero(crop[..., 0] > 0)
        centroid = np.array([np.average(xs, weights=crop[ys, xs, 0]), np.average(ys, weights=crop[ys, xs, 0])])
        np.testing.assert_allclose(centroid, expect, atol=0.05)


def test_normalize_crops() -> None:
    crops = np.full((2, 4, 3, 3), 255, np.uint8)
    x = normalize_crops(crops)
    assert x.shape == (2, 3, 4, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD), rtol=1e-6)


def test_flip_keypoints_twice_is_identity() -> None:
    rng = np.random.default_rng(2)
    kp = rng.uniform(0, 100, (3, 17, 2))
    vis = rng.integers(0, 3, (3, 17))
    f, fv = flip_keypoints(kp, 101, COCO, vis)
    assert f[0, 1, 0] == pytest.approx(100 - kp[0, 2, 0])  # left_eye <- mirrored right_eye
    np.testing.assert_array_equal(fv[:, 1], vis[:, 2])
    back, bv = flip_keypoints(f, 101, COCO.flip_index(), fv)
    np.testing.assert_allclose(back, kp)
    np.testing.assert_array_equal(bv, vis)


def test_random_scale_rotation_ranges() -> None:
    rng = np.random.default_rng(3)
    draws = np.array([random_scale_rotation(rng, 0.35, 40.0) for _ in range(2000)])
    assert draws[:, 0].min() >= 0.65 and draws[:, 0].max() <= 1.35
    assert np.abs(draws[:, 1]).max() <= 80
    assert 0.3 < (draws[:, 1] == 0).mean() < 0.5


def test_half_body_box() -> None:
    rng = np.random.default_rng(4)
    kp = np.zeros((17, 2))
    kp[:, 0] = np.arange(17) * 2
    kp[:, 1] = np.arange(17) * 10
    vis = np.zeros(17)
    vis[[11, 12, 13]] = 2  # only lower body visible -> always the lower half
    center, scale = half_body_box(kp, vis, COCO, 0.75, rng)
    np.testing.assert_allclose(center, kp[[11, 12, 13]].mean(axis=0))
    assert scale[1] == pytest.approx(20 * 1.5) and scale[0] == pytest.approx(0.75 * 20 * 1.5)
    vis[:] = 0
    vis[5] = 1
    assert half_body_box(kp, vis, COCO, 0.75, rng) is None


def test_udp_geometry_matches_the_transformers_vitpose_reference() -> None:
    """Box -> centre/scale, the UDP warp and the UDP back-mapping agree with transformers' port of
    MMPose's code (``scale / 200`` convention there; its UDP rotation has the opposite sign)."""
    ref = pytest.importorskip("transformers.models.vitpose.image_processing_pil_vitpose")
    box = [37.2, 55.9, 81.3, 190.4]
    c_ref, s_ref = ref.box_to_center_and_scale(box, image_width=192, image_height=256)
    c, s = box_to_center_scale(box, 192 / 256)
    np.testing.assert_allclose(c, c_ref, rtol=1e-6)
    np.testing.assert_allclose(s, s_ref * 200.0, rtol=1e-6)
    for rot in (0.0, 17.0):
        m_ref = ref.get_warp_matrix(-rot, c * 2.0, np.array([192, 256]) - 1.0, s)
        np.testing.assert_allclose(get_affine_matrix(c, s, (256, 192), rot, udp=True), m_ref, rtol=1e-5, atol=1e-4)
    coords = np.random.default_rng(0).uniform(0, 47, (17, 2))
    back_ref = ref.transform_preds(coords, c_ref, s_ref, output_size=[64, 48])
    back = crop_to_image(coords[None], c[None], s[None], (64, 48), udp=True)[0]
    np.testing.assert_allclose(back, back_ref, rtol=1e-5, atol=1e-3)
