"""What the pipeline needs from a pose model and a person detector, and a generic video session.

* :class:`PoseBackend`: an image and person boxes (top-down) or no boxes (bottom-up) ->
  :class:`~pyramidpose.inference.results.PoseResult` (the instances of one image, a dataclass);
  :meth:`~PoseBackend.predict_many` streams many images (a backend may batch across them);
  :meth:`~PoseBackend.video_session` gives the per-video state that decides, frame by frame,
  whether to detect people or follow the ones it has.
* :class:`PersonDetector`: an image -> person boxes and scores.
* :class:`VideoSession`: ``step(frame, detect) -> PoseResult``. :class:`DetectAndFollow` is the
  generic one: detect on detection frames, otherwise reuse boxes around the previous poses.
* :class:`Landmarks`: a model's raw landmarks for one person (BlazePose's 39 points, visibility,
  presence, pose flag), for backends whose video sessions follow people by their landmarks.

The pipeline (:mod:`pyramidpose.inference.pipeline`) calls only these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.inference.results import PoseResult
from pyramidpose.skeletons import get_keypoint_set

#: One image of a stream: ``(tag, image, boxes or None, box scores or None)``; the tag comes back.
Item = tuple[Any, np.ndarray, "np.ndarray | None", "np.ndarray | None"]


@dataclass
class SessionOptions:
    """Options of a video session: drop detections below ``min_box_score``; ``detector_tiles``
    overrides the tile grids of detectors that tile the frame (``None``: the detector's default);
    ``max_people`` keeps at most that many people per frame (the best-scoring detections, then the
    best-scoring poses; ``None``: everyone); while that many are followed the detector is skipped,
    as MediaPipe does for its one person, and runs again on the first detection frame after one is lost."""

    min_box_score: float = 0.0
    detector_tiles: tuple[int, ...] | None = None
    max_people: int | None = None


@dataclass
class Landmarks:
    """Raw landmarks of one person in image pixels.

    Attributes:
        xy: ``(L, 2)`` positions.
        visibility: ``(L,)`` probability that each landmark is visible.
        presence: ``(L,)`` probability that each landmark is in the frame.
        pose_flag: probability that the crop holds a person at all.
    """

    xy: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    pose_flag: float


class PersonDetector(Protocol):
    """An RGB uint8 image ``(H, W, 3)`` -> person boxes ``(N, 4)`` xywh and scores ``(N,)``."""

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class VideoSession(Protocol):
    """The state of one video: ``step`` gives the poses of the next frame; on ``detect`` frames it
    looks for people, on the others it may follow the people it has."""

    def step(self, image: np.ndarray, detect: bool) -> PoseResult: ...


class PoseBackend(Protocol):
    """A pose model behind the pipeline.

    Attributes:
        name: shown in reports.
        keypoint_set: layout name of the results (:mod:`pyramidpose.skeletons`).
        needs_boxes: top-down (people boxes from a detector or a boxes file) or bottom-up (``False``:
            ``boxes`` is ignored and may be ``None``).
    """

    name: str
    keypoint_set: str
    needs_boxes: bool

    def predict(self, image: np.ndarray, boxes: np.ndarray | None, box_scores: np.ndarray | None = None) -> PoseResult:
        """The people of one RGB uint8 image (in the given ``xywh`` boxes for a top-down model)."""
        ...

    def predict_many(self, items: Iterable[Item]) -> Iterator[tuple[Any, PoseResult]]:
        """``(tag, result)`` for every ``(tag, image, boxes, scores)`` item, in order, lazily."""
        ...

    def video_session(self, detector: PersonDetector | None, options: SessionOptions) -> VideoSession:
        """A fresh session for one video (``detector`` is ``None`` for bottom-up models)."""
        ...


def num_keypoints(keypoint_set: str) -> int:
    """Number of keypoints of a layout name (0 when unknown)."""
    try:
        return get_keypoint_set(keypoint_set).num_keypoints
    except KeyError:
        return 0


def predict_each(backend: PoseBackend, items: Iterable[Item]) -> Iterator[tuple[Any, PoseResult]]:
    """:meth:`PoseBackend.predict_many` for a backend without cross-image batching: one
    :meth:`~PoseBackend.predict` per item (an empty result when a top-down item has no boxes)."""
    for tag, image, boxes, scores in items:
        if backend.needs_boxes and (boxes is None or len(boxes) == 0):
            yield tag, PoseResult.empty(num_keypoints(backend.keypoint_set), backend.keypoint_set)
        else:
            yield tag, backend.predict(image, boxes, scores)


class CallableDetector:
    """A plug-in detector: any callable ``image -> (boxes, scores)``, with its output checked
    (``(N, 4)`` finite boxes of positive size and ``(N,)`` finite scores; others dropped)."""

    def __init__(self, fn: Callable[[np.ndarray], tuple[Any, Any]]) -> None:
        self.fn = fn

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.fn(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if len(boxes) != len(scores):
            raise DataError(f"detector returned {len(boxes)} boxes but {len(scores)} scores")
        keep = np.isfinite(boxes).all(1) & np.isfinite(scores) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        return boxes[keep], scores[keep]


def boxes_around_poses(result: PoseResult, shape: tuple[int, ...], min_score: float = 0.3) -> np.ndarray:
    """Boxes around the confident keypoints of each pose (expanded 20 %), for frames without
    detection; a pose with fewer than 3 confident keypoints keeps its box."""
    out = []
    h, w = shape[:2]
    for kp, ks, box in zip(result.keypoints, result.keypoint_scores, result.bboxes):
        good = kp[ks >= min_score]
        if len(good) < 3:
            out.append(box)
            continue
        x1, y1 = good.min(0)
        x2, y2 = good.max(0)
        bw, bh = (x2 - x1) * 1.2 + 4, (y2 - y1) * 1.2 + 4
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x1, y1 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2 - 0.05 * bh)
        out.append([x1, y1, min(w - x1, bw), min(h - y1, bh * 1.05)])
    return np.asarray(out, np.float64).reshape(-1, 4)


class DetectAndFollow:
    """The generic video session: detect people on detection frames; on the others, predict in
    boxes around the previous frame's poses (:func:`boxes_around_poses`, computed from the returned
    result as the caller left it, i.e. after tracking and smoothing) with their box scores.
    A bottom-up backend (``detector`` ``None``) just predicts every frame."""

    def __init__(self, backend: PoseBackend, detector: PersonDetector | None, options: SessionOptions) -> None:
        self.backend = backend
        self.detector = detector
        self.options = options
        self._last: PoseResult | None = None

    def step(self, image: np.ndarray, detect: bool) -> PoseResult:
        if self.detector is None:
            return self.kept(self.backend.predict(image, None))
        boxes = np.zeros((0, 4))
        if self._last is not None:
            boxes, scores = boxes_around_poses(self._last, image.shape), self._last.box_scores
        # with max_people followed already, nobody could be added: detect only when someone is lost
        full = self.options.max_people is not None and len(boxes) >= self.options.max_people
        if (detect and not full) or len(boxes) == 0:
            boxes, scores = self.detector.detect(image)
            keep = scores >= self.options.min_box_score
            if self.options.max_people is not None:  # the best detections only: fewer crops to pose
                keep = np.flatnonzero(keep)
                keep = keep[np.argsort(-scores[keep], kind="stable")[: self.options.max_people]]
            boxes, scores = boxes[keep], scores[keep]
        if len(boxes):
            result = self.backend.predict(image, boxes, scores)
        else:
            result = PoseResult.empty(num_keypoints(self.backend.keypoint_set), self.backend.keypoint_set)
        self._last = result = self.kept(result)
        return result

    def kept(self, result: PoseResult) -> PoseResult:
        """The poses a frame keeps (and the next frame follows): at most ``max_people``, best first."""
        return best_people(result, self.options.max_people)


def best_people(result: PoseResult, max_people: int | None) -> PoseResult:
    """The ``max_people`` best-scoring poses of ``result`` (in their original order); all when ``None``."""
    if max_people is None or len(result) <= max_people:
        return result
    top = np.sort(np.argsort(-result.scores, kind="stable")[:max_people])
    return result.select(top)


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so that its longer side is at most ``max_side`` (area interpolation), and the
    factor applied (1 when it already fits); detectors run on it and divide their boxes by the factor."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    s = max_side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return small, s
