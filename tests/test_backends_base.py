"""The backend layout: presets and detectors resolve to modules, the generic video session, and a
pipeline run with stand-in backends that only implement the protocol (bottom-up and top-down)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from pyramidpose.inference import backends
from pyramidpose.inference.backends.base import (
    DetectAndFollow,
    SessionOptions,
    boxes_around_poses,
    predict_each,
)
from pyramidpose.inference.pipeline import Pipeline, PipelineConfig
from pyramidpose.inference.results import PoseResult

SAMPLES = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples"


def test_every_preset_and_detector_names_a_loadable_module() -> None:
    assert backends.DEFAULT_PRESET in backends.PRESETS
    for name, preset in backends.PRESETS.items():
        module = importlib.import_module(f"pyramidpose.inference.backends.{preset.module}")
        assert callable(module.load), name
        assert preset.detector is None or preset.detector in backends.DETECTORS, name
    for name, module_name in backends.DETECTORS.items():
        assert callable(importlib.import_module(f"pyramidpose.inference.backends.{module_name}").load_detector), name


class _Centre:
    """A stand-in top-down backend: every keypoint at its box centre, score 0.9."""

    name = "centre"
    keypoint_set = "coco"
    needs_boxes = True

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, image, boxes, box_scores=None) -> PoseResult:
        self.calls += 1
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        c = b[:, :2] + b[:, 2:] / 2
        s = np.ones(len(b)) if box_scores is None else np.asarray(box_scores, np.float64)
        kp = np.repeat(c[:, None], 17, axis=1) + np.linspace(-5, 5, 17)[None, :, None]
        return PoseResult(kp.astype(np.float32), np.full((len(b), 17), 0.9, np.float32), b.astype(np.float32),
                          s.astype(np.float32), s.astype(np.float32), box_indices=np.arange(len(b)))  # fmt: skip

    def predict_many(self, items):
        return predict_each(self, items)

    def video_session(self, detector, options):
        return DetectAndFollow(self, detector, options)


class _Counter:
    def __init__(self, boxes) -> None:
        self.boxes = np.asarray(boxes, np.float64)
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return self.boxes, np.array([0.8, 0.1])[: len(self.boxes)]


def test_detect_and_follow_detects_only_on_detection_frames() -> None:
    det = _Counter([[10, 10, 40, 80], [100, 10, 40, 80]])
    backend = _Centre()
    session = backend.video_session(det, SessionOptions(min_box_score=0.5))
    frame = np.zeros((120, 160, 3), np.uint8)
    first = session.step(frame, detect=True)
    assert det.calls == 1 and len(first) == 1  # the 0.1 box is below min_box_score
    followed = session.step(frame, detect=False)
    assert det.calls == 1 and len(followed) == 1
    # the followed box is built around the previous poses (20 % margin), with the previous box score
    np.testing.assert_allclose(followed.bboxes, boxes_around_poses(first, frame.shape), rtol=1e-6)
    x, y, w, h = followed.bboxes[0]
    assert w == pytest.approx(10 * 1.2 + 4) and x == pytest.approx(30 - w / 2)  # keypoints span 25..35
    assert followed.box_scores[0] == pytest.approx(0.8)
    session.step(frame, detect=True)
    assert det.calls == 2
    # nobody found: the next frame detects again even when it is not a detection frame
    nobody = _Counter(np.zeros((0, 4)))
    s2 = backend.video_session(nobody, SessionOptions())
    assert len(s2.step(frame, detect=True)) == 0 and len(s2.step(frame, detect=False)) == 0
    assert nobody.calls == 2


class _Boxes:
    """A stand-in detector returning fixed boxes and scores."""

    def __init__(self, boxes, scores) -> None:
        self.boxes, self.scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)

    def detect(self, image):
        return self.boxes, self.scores


class _Recording(_Centre):
    """:class:`_Centre` remembering the boxes it was asked to pose."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[np.ndarray] = []

    def predict(self, image, boxes, box_scores=None) -> PoseResult:
        self.seen.append(np.asarray(boxes, np.float64).reshape(-1, 4))
        return super().predict(image, boxes, box_scores)


def test_max_people_poses_only_the_best_detections_and_follows_them() -> None:
    boxes = [[0, 0, 20, 40], [30, 0, 20, 40], [60, 0, 20, 40], [90, 0, 20, 40], [120, 0, 20, 40]]
    scores = [0.4, 0.9, 0.3, 0.7, 0.8]
    frame = np.zeros((100, 160, 3), np.uint8)
    backend = _Recording()
    session = backend.video_session(_Boxes(boxes, scores), SessionOptions(max_people=2))
    first = session.step(frame, detect=True)
    # only 2 crops posed: the two best detections (0.9 and 0.8), in the detector's order
    np.testing.assert_array_equal(backend.seen[-1][:, 0], [30, 120])
    assert len(first) == 2 and sorted(first.scores.tolist()) == pytest.approx([0.8, 0.9])
    assert len(session.step(frame, detect=False)) == 2 and len(backend.seen[-1]) == 2
    # two people followed = the cap: a detection frame does not run the detector (as MediaPipe)
    counting = _Counter([[10, 10, 40, 80], [100, 10, 40, 80]])
    capped = _Centre().video_session(counting, SessionOptions(max_people=1))
    capped.step(frame, detect=True)
    capped.step(frame, detect=True)
    assert counting.calls == 1
    uncapped = _Centre().video_session(counting, SessionOptions(max_people=3))
    uncapped.step(frame, detect=True)
    uncapped.step(frame, detect=True)  # 2 followed < 3: look for more
    assert counting.calls == 3
    everyone = _Recording()
    assert len(everyone.video_session(_Boxes(boxes, scores), SessionOptions()).step(frame, detect=True)) == 5


def test_best_people_keeps_the_top_scores_in_order() -> None:
    from pyramidpose.inference.backends.base import best_people

    r = PoseResult(np.zeros((4, 17, 2), np.float32), np.ones((4, 17), np.float32), np.ones((4, 4), np.float32),
                   np.ones(4, np.float32), np.array([0.2, 0.9, 0.5, 0.7], np.float32))  # fmt: skip
    assert best_people(r, None) is r and best_people(r, 4) is r
    np.testing.assert_allclose(best_people(r, 2).scores, [0.9, 0.7])
    np.testing.assert_allclose(best_people(r, 3).scores, [0.9, 0.5, 0.7])


class _BottomUp:
    """A stand-in bottom-up backend: one fixed pose per image, no boxes needed."""

    name = "bottomup"
    keypoint_set = "coco"
    needs_boxes = False

    def predict(self, image, boxes, box_scores=None) -> PoseResult:
        assert boxes is None
        kp = np.tile(np.array([[20.0, 30.0]], np.float32), (1, 17, 1))
        one = np.ones(1, np.float32)
        return PoseResult(kp, np.full((1, 17), 0.5, np.float32), np.array([[0, 0, 40, 60]], np.float32), one, one)

    def predict_many(self, items):
        return predict_each(self, items)

    def video_session(self, detector, options):
        assert detector is None
        return DetectAndFollow(self, detector, options)


def test_pipeline_runs_a_bottom_up_backend_without_a_detector(tmp_path: Path) -> None:
    def no_detector(image):
        raise AssertionError("a bottom-up backend needs no detector")

    pipe = Pipeline(PipelineConfig(out_dir=tmp_path, progress=False, max_frames=2), backend=_BottomUp(),
                    detector=no_detector)  # fmt: skip
    report = pipe.run([str(SAMPLES / "000000165518.jpg"), str(SAMPLES / "street_5frames.mp4")])
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [r["image_id"] for r in rows] == [165518] and report.people == 1  # people in images
    assert report.videos[0].detections == 2 and report.videos[0].tracks == 1  # video: detections vs tracks
    recs = [json.loads(line) for line in (tmp_path / "street_5frames.jsonl").read_text().splitlines()[1:]]
    assert [len(r["instances"]) for r in recs] == [1, 1]


def test_pipeline_oks_nms_uses_the_backend_result_areas(tmp_path: Path) -> None:
    boxes = tmp_path / "boxes.json"
    dup = {"image_id": 165518, "category_id": 1, "bbox": [240, 160, 200, 320]}
    boxes.write_text(json.dumps([{**dup, "score": 0.9}, {**dup, "score": 0.7}, {**dup, "bbox": [10, 10, 50, 90], "score": 0.8}]))
    image = [str(SAMPLES / "000000165518.jpg")]
    plain = Pipeline(PipelineConfig(out_dir=tmp_path / "a", boxes=str(boxes), progress=False), backend=_Centre())
    assert plain.run(image).people == 3
    nms = Pipeline(PipelineConfig(out_dir=tmp_path / "b", boxes=str(boxes), oks_nms=0.9, progress=False),
                   backend=_Centre())  # fmt: skip
    assert nms.run(image).people == 2
    rows = json.loads((tmp_path / "b" / "results.json").read_text())
    assert sorted(r["score"] for r in rows) == pytest.approx([0.8, 0.9])


def test_confident_follow_poses_only_detections_above_its_box_score() -> None:
    from pyramidpose.inference.backends.movenet import ConfidentFollow

    boxes = [[0, 0, 20, 40], [30, 0, 20, 40], [60, 0, 20, 40], [90, 0, 20, 40]]
    scores = [0.34, 0.9, 0.35, 0.31]
    frame = np.zeros((100, 160, 3), np.uint8)
    backend = _Recording()
    session = ConfidentFollow(backend, _Boxes(boxes, scores), SessionOptions(), min_score=0.2, min_box_score=0.35)
    first = session.step(frame, detect=True)
    # the 0.34 and 0.31 detections cost no crop; 0.35 (equal) and 0.9 are posed
    np.testing.assert_array_equal(backend.seen[-1][:, 0], [30, 60])
    assert len(first) == 2
    # a higher session threshold (--det-thr) wins over the backend's
    strict = ConfidentFollow(_Recording(), _Boxes(boxes, scores), SessionOptions(min_box_score=0.5), 0.2, 0.35)
    assert len(strict.step(frame, detect=True)) == 1
    # 0: every detection is posed (what the pipeline did before the gate)
    ungated = _Recording()
    ConfidentFollow(ungated, _Boxes(boxes, scores), SessionOptions(), 0.2, 0.0).step(frame, detect=True)
    assert len(ungated.seen[-1]) == 4


def test_movenet_video_session_gates_detections_by_default() -> None:
    from pyramidpose.inference.backends.movenet import ConfidentFollow, MoveNetBackend

    backend = MoveNetBackend("lightning", num_threads=1)
    session = backend.video_session(_Boxes(np.zeros((0, 4)), np.zeros(0)), SessionOptions(min_box_score=0.1))
    assert isinstance(session, ConfidentFollow)
    assert session.options.min_box_score == backend.min_video_box_score == 0.35
    assert backend.video_session(None, SessionOptions(min_box_score=0.6)).options.min_box_score == 0.6
