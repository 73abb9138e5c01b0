"""Person detectors: SSD anchors, NMS, plug-ins and the embedded detectors (loaded by name)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyramidpose.errors import ConfigError, DataError
from pyramidpose.geometry.boxes import box_nms, iou_xywh
from pyramidpose.inference.backends import blazepose as bp
from pyramidpose.inference.backends import load_detector
from pyramidpose.inference.backends.hog import HogDetector

SAMPLES = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples"


def _image(name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(SAMPLES / name).convert("RGB"))


@pytest.fixture(scope="module")
def blaze():
    pytest.importorskip("ai_edge_litert")
    return load_detector("blazepose")


def test_ssd_anchor_layout_matches_the_model():
    a = bp.ssd_anchors(224)
    assert a.shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 2) == (2254, 2)
    assert (a > 0).all() and (a < 1).all()
    # the first two anchors share the first 8-pixel cell's centre
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[1], a[0])


def test_iou_and_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 5, 5]], float)
    iou = iou_xywh(boxes, boxes)
    assert np.allclose(np.diag(iou), 1.0)
    assert iou[0, 1] == pytest.approx(81 / 119)
    assert iou[0, 2] == 0.0
    keep = box_nms(boxes, np.array([0.5, 0.9, 0.3]), 0.5)
    assert keep.tolist() == [1, 2]


def test_weighted_nms_averages_a_cluster():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 10, 10], [100, 100, 10, 10]], float)
    pts = np.zeros((3, 4, 2))
    pts[1] += 2.0
    b, p, s = bp.weighted_nms(boxes, pts, np.array([0.6, 0.6, 0.9]), 0.3)
    assert len(b) == 2
    assert s.tolist() == [0.9, 0.6]
    assert b[1] == pytest.approx([1, 0, 10, 10])
    assert p[1] == pytest.approx(np.ones((4, 2)))


def test_plugin_detector_output_is_validated():
    wrapped = load_detector(lambda im: ([[0, 0, 5, 5], [1, 1, 0, 3], [np.nan, 0, 1, 1]], [0.9, 0.8, 0.7]))
    boxes, scores = wrapped.detect(np.zeros((10, 10, 3), np.uint8))
    assert boxes.tolist() == [[0, 0, 5, 5]] and scores.tolist() == [0.9]
    bad = load_detector(lambda im: ([[0, 0, 5, 5]], [0.9, 0.1]))
    with pytest.raises(DataError, match="1 boxes but 2 scores"):
        bad.detect(np.zeros((10, 10, 3), np.uint8))
    assert load_detector(wrapped) is wrapped  # a detector object is used as it is


def test_blazepose_detector_finds_people_and_nothing_in_a_blank_image(blaze):
    image = _image("000000165518.jpg")
    boxes, scores = blaze.detect(image)
    h, w = image.shape[:2]
    assert len(boxes) >= 1
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= w + 1e-6).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + boxes[:, 3] <= h + 1e-6).all()
    assert ((scores > 0) & (scores <= 1)).all()
    # the motorcyclist stands in the middle of the photo
    cx = boxes[0, 0] + boxes[0, 2] / 2
    assert 0.3 * w < cx < 0.7 * w
    b0, s0 = blaze.detect(np.full((300, 400, 3), 127, np.uint8))
    assert b0.shape == (0, 4) and s0.shape == (0,)


def test_very_large_images_are_downscaled_and_boxes_mapped_back(blaze):
    import cv2

    image = _image("000000165518.jpg")
    big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)  # 2448 px > max_side
    small_boxes, _ = blaze.detect(image)
    big_boxes, _ = blaze.detect(big)
    assert len(big_boxes) >= 1
    iou = iou_xywh(big_boxes[:1] / 4.0, small_boxes[:1])[0, 0]
    assert iou > 0.6


def test_hog_detector_without_hog_in_opencv_is_one_clear_error(monkeypatch):
    import cv2

    from pyramidpose.errors import PyramidPoseError

    monkeypatch.delattr(cv2, "HOGDescriptor", raising=False)
    with pytest.raises(PyramidPoseError, match="HOGDescriptor.*--detector nanodet"):
        load_detector("hog")


def test_hog_detector_runs_and_returns_consistent_arrays():
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "HOGDescriptor"):
        pytest.skip(f"OpenCV {cv2.__version__} has no HOGDescriptor (OpenCV 5 moved HOG to contrib)")
    hog = load_detector("hog")
    assert isinstance(hog, HogDetector)
    boxes, scores = hog.detect(_image("000000434204.jpg"))
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) == len(scores)
    empty = hog.detect(np.zeros((8, 8, 3), np.uint8))
    assert len(empty[0]) == 0


def test_unknown_detector_name():
    with pytest.raises(ConfigError, match="unknown detector"):
        load_detector("yolo")


@pytest.mark.parametrize("shape", [(2, 20000), (20000, 2), (300, 20000), (5, 5), (1, 1)])
def test_window_count_is_bounded_whatever_the_shape(shape):
    det = object.__new__(bp.BlazePoseDetector)  # the window plan needs no model
    det.tiles, det.tile_overlap, det.input_size = (2, 3), 0.25, 224
    wins = det._windows(*shape)
    assert 1 <= len(wins) <= 1 + 4 * 4 + 4 * 9  # was 5121+ for 2 x 20000
    # an ordinary photo keeps its whole-image pass plus the 2x2 and 3x3 tiles
    assert len(det._windows(480, 640)) == 1 + 4 + 9


def test_detector_on_a_2_by_20000_image_runs_few_passes(blaze, monkeypatch):
    calls = []
    real = blaze.detect_window
    monkeypatch.setattr(blaze, "detect_window", lambda *a, **k: calls.append(a) or real(*a, **k))
    blaze.detect(np.full((2, 20000, 3), 128, np.uint8))
    assert 1 <= len(calls) <= 12
