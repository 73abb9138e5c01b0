"""Top-down predictor: keypoints land where the image says, flip test, batching, bad boxes."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch
from standin_models import BrightnessModel, MirrorConvModel

from pyramidpose.codecs import HeatmapCodec, flip_heatmaps_back
from pyramidpose.data.transforms import normalize_crops
from pyramidpose.geometry.boxes import clip_boxes
from pyramidpose.geometry.crops import warp_crop
from pyramidpose.inference.results import PoseResult, rescore
from pyramidpose.inference.topdown import TopDownPredictor
from pyramidpose.skeletons import COCO


def _blob_image(h: int, w: int, centre: tuple[float, float], sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.round(blob * 255).astype(np.uint8)
    return img


@pytest.mark.parametrize("flip", [False, True])
def test_keypoints_land_on_the_blob_udp(flip: bool) -> None:
    centre = (83.3, 61.7)
    img = _blob_image(150, 200, centre, sigma=5.0)
    model = BrightnessModel((256, 192))
    pred = TopDownPredictor(model, flip_test=flip, codec=HeatmapCodec.from_config(model.config, method="dark_udp"), precision="fp32")
    res = pred.predict(img, np.array([[50.0, 20.0, 70.0, 100.0]]), np.array([0.9]))
    assert res.keypoints.shape == (1, 17, 2)
    err = np.abs(res.keypoints[0] - np.array(centre)).max()
    assert err < 0.1, err
    assert res.keypoint_scores.min() > 0.95
    np.testing.assert_allclose(res.scores, 0.9 * res.keypoint_scores.mean(), rtol=1e-5)


@pytest.mark.parametrize("decode", ["dark", "msra", "udp"])
def test_other_decoders_land_near_the_blob(decode: str) -> None:
    centre = (83.3, 61.7)
    img = _blob_image(150, 200, centre, sigma=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # codec / decode mismatch warning for the MSRA geometry
        pred = TopDownPredictor(
            BrightnessModel((256, 192)), flip_test=True, codec=HeatmapCodec((256, 192)).with_method(decode), precision="fp32"
        )
    res = pred.predict(img, np.array([[50.0, 20.0, 70.0, 100.0]]))
    # one heatmap pixel covers 125/64 ~ 2 image pixels; the model's resampling matches UDP only
    assert np.abs(res.keypoints[0] - np.array(centre)).max() < 2.0


def test_flip_test_is_exact_for_a_flip_equivariant_model_on_a_symmetric_image() -> None:
    model = MirrorConvModel((64, 64))
    with_flip = TopDownPredictor(model, flip_test=True, precision="fp32")
    no_flip = TopDownPredictor(model, flip_test=False, precision="fp32")
    # any input: un-flipped heatmaps of the mirrored crop equal the direct ones
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32))
    np.testing.assert_allclose(with_flip.heatmaps(x), no_flip.heatmaps(x), atol=1e-5)  # float32 sums
    # a smooth image symmetric about x = 49.5, and a box whose UDP crop is an integer-shifted window
    # (scale 63 px onto 64 px: no resampling), so the crop itself is exactly symmetric
    rng = np.random.default_rng(0)
    half = cv2.GaussianBlur(rng.integers(0, 256, (80, 50, 3), dtype=np.uint8), (0, 0), 3)
    img = np.concatenate([half, half[:, ::-1]], axis=1)
    side = 63 / 1.25
    box = np.array([[49.5 - side / 2, 40.5 - side / 2, side, side]])
    crop = torch.from_numpy(normalize_crops(warp_crop(img, (49.5, 40.5), (63.0, 63.0), (64, 64), udp=True)))
    hm = with_flip.heatmaps(crop)
    np.testing.assert_allclose(flip_heatmaps_back(hm, COCO.flip_index()), hm, atol=1e-5)
    # keypoints: left/right pairs are mirror images about the symmetry axis, exactly with the
    # quarter-pixel decoder. DARK-UDP's 7-point cross derivative is not mirror-symmetric, so on these
    # non-Gaussian heatmaps its Newton step differs between the two sides (most near the crop border).
    pairs = np.array(COCO.flip_pairs)
    for decode in ("udp", "dark_udp"):
        codec = HeatmapCodec.from_config(model.config, method=decode)
        kp = TopDownPredictor(model, flip_test=True, codec=codec, precision="fp32").predict(img, box).keypoints[0]
        asym = np.abs(np.stack([kp[pairs[:, 0], 0] + kp[pairs[:, 1], 0] - (img.shape[1] - 1),
                                kp[pairs[:, 0], 1] - kp[pairs[:, 1], 1]]))  # fmt: skip
        if decode == "udp":
            assert asym.max() < 1e-3
        else:
            assert np.median(asym) < 0.1


def test_predict_many_batches_across_images_like_predict() -> None:
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (80 + 10 * i, 100, 3), dtype=np.uint8) for i in range(4)]
    boxes = [
        np.array([[10, 10, 40, 50], [30, 5, 50, 60], [0, 0, 20, 20]], float),
        np.zeros((0, 4)),
        np.array([[5, 5, 60, 70], [200, 10, 20, 20]], float),  # second one is outside the image
        np.array([[-10, -10, 50, 200]], float),  # clipped to the image
    ]
    pred = TopDownPredictor(MirrorConvModel((64, 48)), batch_size=2, precision="fp32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        many = list(pred.predict_many((im, b, None) for im, b in zip(images, boxes)))
    assert any("zero-area" in str(w.message) for w in caught)
    assert [len(r) for r in many] == [3, 0, 1, 1]
    assert [r.num_skipped_boxes for r in many] == [0, 0, 1, 0]
    np.testing.assert_array_equal(many[2].box_indices, [0])
    np.testing.assert_allclose(many[3].bboxes, [[0, 0, 40, 110]])
    for im, b, r in zip(images, boxes, many):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            single = pred.predict(im, b)
        np.testing.assert_allclose(single.keypoints, r.keypoints, atol=1e-4)
        np.testing.assert_allclose(single.keypoint_scores, r.keypoint_scores, atol=1e-6)


def test_bf16_close_to_fp32() -> None:
    img = _blob_image(150, 200, (83.3, 61.7), sigma=5.0)
    box = np.array([[50.0, 20.0, 70.0, 100.0]])
    model = MirrorConvModel((64, 48))
    a = TopDownPredictor(model, precision="fp32").predict(img, box)
    b = TopDownPredictor(model, precision="bf16").predict(img, box)
    assert np.abs(a.keypoint_scores - b.keypoint_scores).max() < 0.02


def test_default_precision_is_chosen_once_by_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    """precision="auto" (the default) resolves once, at construction: fp32 on a CPU that would
    emulate bf16, bf16 (with the weights cast once, the caller's model untouched) where it is native."""
    from pyramidpose.utils import device as dev

    model = MirrorConvModel((64, 48))
    monkeypatch.setattr(dev, "native_bf16_cpu", lambda: (False, "AVX2"))
    emulating = TopDownPredictor(model)
    assert emulating.precision.name == "fp32" and emulating.model is model
    monkeypatch.setattr(dev, "native_bf16_cpu", lambda: (True, "AVX512, amx_bf16"))
    native = TopDownPredictor(model)
    assert native.precision.name == "bf16" and "native" in native.precision.reason
    dtypes = {p.dtype for m in native.model.modules() if isinstance(m, torch.nn.Conv2d) for p in m.parameters()}
    assert dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_vitpose_tiny_runs_end_to_end() -> None:
    import pyramidpose

    model = pyramidpose.create_model("vitpose-tiny", num_keypoints=17, input_size=(128, 96))
    model.eval()
    img = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[20, 30, 100, 180], [150, 40, 120, 150]], float)
    res = TopDownPredictor(model, batch_size=8, precision="fp32").predict(img, boxes, np.array([0.8, 0.6]))
    assert res.keypoints.shape == (2, 17, 2) and np.isfinite(res.keypoints).all()
    # keypoints stay inside the padded crop region of their box
    for kp, (x, y, w, h) in zip(res.keypoints, boxes):
        assert (kp[:, 0] > x - w).all() and (kp[:, 0] < x + 2 * w).all()
        assert (kp[:, 1] > y - h).all() and (kp[:, 1] < y + 2 * h).all()


def test_clip_boxes_and_rescore() -> None:
    b, ok = clip_boxes(np.array([[-5, 5, 20, 10], [50, 50, 10, 10], [3, 3, 0, 5]]), 40, 30)
    np.testing.assert_allclose(b[0], [0, 5, 15, 10])
    np.testing.assert_array_equal(ok, [True, False, False])
    s = rescore(np.array([0.5, 1.0]), np.array([[0.1, 0.3, 0.5], [0.1, 0.1, 0.2]]))
    np.testing.assert_allclose(s, [0.5 * 0.4, 0.0])


def test_to_coco() -> None:
    r = PoseResult(
        keypoints=np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2),
        keypoint_scores=np.full((2, 3), 0.5, np.float32),
        bboxes=np.zeros((2, 4), np.float32),
        box_scores=np.ones(2, np.float32),
        scores=np.array([0.4, 0.3], np.float32),
    )
    out = r.to_coco(image_id=7)
    assert len(out) == 2 and out[0]["image_id"] == 7 and out[0]["category_id"] == 1
    assert out[1]["keypoints"] == [6.0, 7.0, 0.5, 8.0, 9.0, 0.5, 10.0, 11.0, 0.5]
    assert out[0]["score"] == pytest.approx(0.4)
    assert len(r.select(r.scores > 0.35)) == 1


def test_unknown_layout_needs_keypoint_set_for_flip_but_runs_without() -> None:
    from pyramidpose.errors import ConfigError
    from pyramidpose.viz.draw import draw_result

    model = BrightnessModel((64, 48), num_keypoints=5)
    model.config.keypoint_set = "none"
    with pytest.raises(ConfigError, match="flip"):
        TopDownPredictor(model, flip_test=True)
    img = _blob_image(80, 90, (40.2, 30.6), sigma=3.0)
    res = TopDownPredictor(model, flip_test=False).predict(img, np.array([[20.0, 10.0, 40.0, 50.0]]))
    assert res.keypoints.shape == (1, 5, 2) and res.keypoint_set == "none"
    assert np.abs(res.keypoints[0] - [40.2, 30.6]).max() < 0.3
    assert draw_result(img, res).shape == img.shape
    with pytest.raises(ConfigError, match="17 keypoints"):
        TopDownPredictor(model, keypoint_set="coco")
