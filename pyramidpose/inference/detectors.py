"""Person detectors: embedded offline ones with real weights, a results-file loader, and plug-ins.

A detector is any callable ``image (H, W, 3) RGB uint8 -> (boxes (N, 4) xywh float, scores (N,))``
(:class:`PersonDetector` is that protocol). Provided:

* :class:`BlazePoseDetector` (the default): MediaPipe's BlazePose detector
  (``pose_detection.tflite`` from the mediapipe wheel) run through a TFLite interpreter with SSD
  anchor decoding and weighted NMS, on the whole image and on overlapping tiles (it sees only
  224x224 inputs, so small people need tiles). It returns a face box plus alignment points (hip
  centre, full-body radius); each detection's full-body ROI is then run through the BlazePose
  landmark model and the person box is taken from the landmarks, which gives a tight box.
* :class:`HogDetector`: OpenCV's built-in HOG + linear SVM pedestrian detector (no downloads).
* :class:`CocoDetections`: boxes read from a COCO detection-results JSON file.
* :func:`as_detector`: wrap any callable, validating and normalising what it returns.

Very large images are downscaled for detection (``max_side``) and boxes are mapped back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.inference.blazepose import (
    ABOVE_HEAD,
    BLAZEPOSE_TO_COCO,
    HIP_CENTER,
    BlazePoseLandmarker,
    Roi,
    _require_cv2,
    _require_litert,
    mediapipe_model_path,
    roi_from_alignment,
    sigmoid,
)


class PersonDetector(Protocol):
    """Anything that maps an RGB uint8 image to person boxes (N, 4) xywh and scores (N,)."""

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float64), np.zeros((0,), np.float64)


def as_detector(fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> PersonDetector:
    """Wrap a user callable so its output is checked: (N, 4) finite xywh boxes and (N,) scores."""

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = fn(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if len(boxes) != len(scores):
            raise DataError(f"detector returned {len(boxes)} boxes but {len(scores)} scores")
        keep = np.isfinite(boxes).all(1) & np.isfinite(scores) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        return boxes[keep], scores[keep]

    return detect


# -- box utilities ------------------------------------------------------------------------------


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU (len(a), len(b)) of xywh boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0:1], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1:2], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-np.asarray(scores))
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        if len(order) == 1:
            break
        ious = iou_xywh(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    cv2 = _require_cv2()
    s = max_side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return small, s


# -- BlazePose detector ---------------------------------------------------------------------------


def ssd_anchors(
    input_size: int = 224,
    strides: tuple[int, ...] = (8, 16, 32, 32, 32),
) -> np.ndarray:
    """Anchor centres (A, 2) in [0, 1] of MediaPipe's SsdAnchorsCalculator for the pose detector.

    Layers with the same stride share one grid; every layer puts two anchors per cell (the aspect
    ratio 1 anchor and the interpolated-scale one; with fixed anchor size both are 1x1).
    """
    centres = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        fm = int(np.ceil(input_size / strides[i]))
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], 1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(centres, 0)


def weighted_nms(
    boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each cluster of overlapping detections is replaced by the
    score-weighted mean of its boxes and keypoints, keeping the top score."""
    order = np.argsort(-scores)
    out_b, out_p, out_s = [], [], []
    remaining = order
    while len(remaining):
        top = remaining[0]
        ious = iou_xywh(boxes[top : top + 1], boxes[remaining])[0]
        cluster = remaining[ious > iou_threshold]
        w = scores[cluster][:, None]
        out_b.append((boxes[cluster] * w).sum(0) / w.sum())
        out_p.append((points[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[top])
        remaining = remaining[ious <= iou_threshold]
    if not out_b:
        return np.zeros((0, 4)), np.zeros((0, 4, 2)), np.zeros(0)
    return np.array(out_b), np.array(out_p), np.array(out_s)


class BlazePoseDetector:
    """Multi-person detector from BlazePose's detector + landmark models (weights in mediapipe).

    Args:
        score_threshold: minimum detector confidence (MediaPipe uses 0.5).
        tiles: grid sizes to run besides the whole image: the default ``(2, 3)`` adds about 2x2
            and 3x3 grids of overlapping tiles so that smaller people are found (coco-mini val
            person-box AP 0.135 against 0.103 with ``(2,)`` and 0.076 with none).
        tile_overlap: overlap of neighbouring tiles (fraction of the tile side).
        max_side: images larger than this are downscaled for detection.
        refine: turn detections into person boxes with the landmark model (else: the raw
            full-body squares, which match COCO boxes poorly: AP 0.000).
        landmarker: the landmark model used for refinement; ``None`` makes a fast one (no flip).
        min_pose_flag: refined detections whose pose flag is below this are dropped.
    """

    def __init__(
        self,
        score_threshold: float = 0.5,
        tiles: tuple[int, ...] = (2, 3),
        tile_overlap: float = 0.25,
        max_side: int = 1920,
        refine: bool = True,
        landmarker: BlazePoseLandmarker | None = None,
        min_pose_flag: float = 0.5,
        nms_iou: float = 0.5,
        num_threads: int = 2,
    ) -> None:
        interpreter_cls = _require_litert()
        self._cv2 = _require_cv2()
        path = mediapipe_model_path("modules/pose_detection/pose_detection.tflite")
        self._interp = interpreter_cls(model_path=str(path), num_threads=num_threads)
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        self._input = inp["index"]
        self.input_size = int(inp["shape"][1])
        outs = sorted(self._interp.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        self._out_reg, self._out_cls = outs[0]["index"], outs[1]["index"]
        self.anchors = ssd_anchors(self.input_size)
        n_anchor = int(outs[0]["shape"][1])
        if len(self.anchors) != n_anchor:
            raise DataError(f"{path}: expected {len(self.anchors)} anchors, model has {n_anchor}")
        self.score_threshold = score_threshold
        self.tiles = tuple(tiles)
        self.tile_overlap = tile_overlap
        self.max_side = max_side
        self.refine = refine
        self.min_pose_flag = min_pose_flag
        self.nms_iou = nms_iou
        if refine and landmarker is None:
            landmarker = BlazePoseLandmarker(flip_test=False, align_passes=1, num_threads=num_threads)
        self.landmarker = landmarker

    def _detect_window(self, image: np.ndarray, x0: float, y0: float, side: float):
        """Raw detections (boxes xywh, 4 keypoints, scores) on the square window at (x0, y0)."""
        cv2 = self._cv2
        n = self.input_size
        s = side / n
        m = np.array([[s, 0, x0], [0, s, y0]], np.float64)
        patch = cv2.warpAffine(
            image, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
        )  # fmt: skip
        x = patch.astype(np.float32) * (2.0 / 255.0) - 1.0
        self._interp.set_tensor(self._input, x[None])
        self._interp.invoke()
        reg = self._interp.get_tensor(self._out_reg)[0]
        cls = self._interp.get_tensor(self._out_cls)[0, :, 0]
        scores = sigmoid(np.clip(cls, -100, 100))
        keep = scores >= self.score_threshold
        if not keep.any():
            return np.zeros((0, 4)), np.zeros((0, 4, 2)), np.zeros(0)
        reg, scores, anc = reg[keep], scores[keep], self.anchors[keep]
        cx = reg[:, 0] / n + anc[:, 0]
        cy = reg[:, 1] / n + anc[:, 1]
        w, h = reg[:, 2] / n, reg[:, 3] / n
        boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1) * side
        boxes[:, 0] += x0
        boxes[:, 1] += y0
        pts = reg[:, 4:12].reshape(-1, 4, 2) / n + anc[:, None, :]
        pts = pts * side + np.array([x0, y0])
        return weighted_nms(boxes, pts, scores, 0.3)

    def _windows(self, h: int, w: int, tiles: tuple[int, ...] | None = None) -> list[tuple[float, float, float]]:
        """Square windows (x0, y0, side): the whole image (letterboxed) plus, per grid size g,
        overlapping tiles of side max(h, w) / g x (1 + overlap), at most min(h, w)."""
        side = float(max(h, w))
        wins = [((w - side) / 2.0, (h - side) / 2.0, side)]
        for g in self.tiles if tiles is None else tiles:
            if g <= 1:
                continue
            t = min(float(min(h, w)), side / g * (1.0 + self.tile_overlap))
            step = t * (1.0 - self.tile_overlap)
            nx = int(np.ceil(max(w - t, 0.0) / step)) + 1
            ny = int(np.ceil(max(h - t, 0.0) / step)) + 1
            xs = np.linspace(0.0, max(w - t, 0.0), nx)
            ys = np.linspace(0.0, max(h - t, 0.0), ny)
            wins.extend((float(x0), float(y0), t) for y0 in ys for x0 in xs)
        return wins

    def detect_raw(
        self, image: np.ndarray, tiles: tuple[int, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detector output on the whole image and tiles, merged: face boxes, 4 alignment points
        (hip centre, full-body radius point, shoulder centre, upper-body radius point), scores."""
        h, w = image.shape[:2]
        all_b, all_p, all_s = [], [], []
        for x0, y0, side in self._windows(h, w, tiles):
            b, p, s = self._detect_window(image, x0, y0, side)
            all_b.append(b)
            all_p.append(p)
            all_s.append(s)
        b, p, s = np.concatenate(all_b), np.concatenate(all_p), np.concatenate(all_s)
        if not len(s):
            return b, p, s
        return weighted_nms(b, p, s, 0.3)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (N, 4) xywh and scores (N,). With ``refine`` the BlazePose landmarks behind
        each box are kept in :attr:`last_landmarks` (image coordinates), so a BlazePose pose
        backend can reuse them instead of running the landmark model again."""
        return self.detect(image)

    def detect(
        self, image: np.ndarray, skip_boxes: np.ndarray | None = None, tiles: tuple[int, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`__call__` with options: detections whose hip centre lies inside one of
        ``skip_boxes`` (people already known, e.g. tracked) are dropped before the landmark
        refinement; ``tiles`` overrides the tile grids for this call."""
        self.last_landmarks: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            return _empty()
        small, scale = _downscale(image, self.max_side)
        _, pts, scores = self.detect_raw(small, tiles)
        if len(scores) and skip_boxes is not None and len(skip_boxes):
            sb = np.asarray(skip_boxes, np.float64).reshape(-1, 4) * scale
            hip = pts[:, 0]
            inside = (
                (hip[:, None, 0] >= sb[None, :, 0]) & (hip[:, None, 0] <= sb[None, :, 0] + sb[None, :, 2])
                & (hip[:, None, 1] >= sb[None, :, 1]) & (hip[:, None, 1] <= sb[None, :, 1] + sb[None, :, 3])
            ).any(1)  # fmt: skip
            pts, scores = pts[~inside], scores[~inside]
        if not len(scores):
            return _empty()
        boxes = []
        keep_scores = []
        landmarks = []
        for p, s in zip(pts, scores):
            roi = roi_from_alignment(p[0], p[1], 1.25)
            if self.refine:
                xy, vis, pres, flag = self.landmarker._predict_box(small, roi)
                if flag < self.min_pose_flag:
                    continue
                box = _box_from_landmarks(xy, vis, small.shape)
                if box is None:
                    continue
                boxes.append(box)
                keep_scores.append(float(s) * flag)
                landmarks.append((xy / scale, vis, pres, flag))
            else:
                r = roi.size / 2.0 / 1.25
                boxes.append([roi.cx - r, roi.cy - r, 2 * r, 2 * r])
                keep_scores.append(float(s))
        if not boxes:
            return _empty()
        boxes_a = np.asarray(boxes, np.float64)
        scores_a = np.asarray(keep_scores, np.float64)
        keep = nms(boxes_a, scores_a, self.nms_iou)
        if landmarks:
            self.last_landmarks = [landmarks[i] for i in keep]
        return boxes_a[keep] / scale, scores_a[keep]


def _box_from_landmarks(
    xy: np.ndarray, vis: np.ndarray, shape: tuple[int, ...], pad: float = 0.1
) -> list[float] | None:
    """Person box around the 33 body landmarks (clipped to the image), padded by ``pad``; the head
    top is extended above the eyes/nose as COCO boxes include the whole head."""
    h, w = shape[:2]
    body = xy[:33]
    x1, y1 = body.min(0)
    x2, y2 = body.max(0)
    # the top of the head is above the eyes by about the eye-to-mouth distance
    head = xy[[0, 2, 5, 9, 10]]
    head_h = max(float(np.ptp(head[:, 1])), float(np.linalg.norm(xy[7] - xy[8])) * 0.5)
    y1 = min(y1, float(head[:, 1].min()) - 1.2 * head_h)
    bw, bh = x2 - x1, y2 - y1
    x1, x2 = x1 - pad * bw / 2, x2 + pad * bw / 2
    y1, y2 = y1 - pad * bh / 2, y2 + pad * bh / 2
    x1, y1 = max(0.0, float(x1)), max(0.0, float(y1))
    x2, y2 = min(float(w), float(x2)), min(float(h), float(y2))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return [x1, y1, x2 - x1, y2 - y1]


# -- OpenCV HOG ---------------------------------------------------------------------------------


class HogDetector:
    """OpenCV's HOG + linear SVM pedestrian detector (Dalal-Triggs), built into OpenCV."""

    def __init__(self, max_side: int = 800, hit_threshold: float = 0.0, scale: float = 1.05) -> None:
        cv2 = _require_cv2()
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.max_side = max_side
        self.hit_threshold = hit_threshold
        self.scale = scale

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = np.asarray(image)
        if image.ndim != 3 or min(image.shape[:2]) < 16:
            return _empty()
        small, s = _downscale(image, self.max_side)
        rects, weights = self._hog.detectMultiScale(
            small, hitThreshold=self.hit_threshold, winStride=(8, 8), padding=(8, 8), scale=self.scale
        )
        if len(rects) == 0:
            return _empty()
        boxes = np.asarray(rects, np.float64).reshape(-1, 4) / s
        scores = np.asarray(weights, np.float64).reshape(-1)
        keep = nms(boxes, scores, 0.5)
        return boxes[keep], scores[keep]


# -- results files ------------------------------------------------------------------------------


class CocoDetections:
    """Person boxes from a COCO detection-results JSON file (list of
    ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``), looked up by image id or file
    name. Only ``category_id == 1`` (person) rows with ``score >= min_score`` are used."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        min_score: float = 0.0,
        file_names: dict[str, int] | None = None,
    ) -> None:
        path = Path(path)
        try:
            rows = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(f"detections file not found: {path}") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read detections file {path}: {exc}") from None
        if isinstance(rows, dict) and "annotations" in rows:
            rows = rows["annotations"]
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of detections, got {type(rows).__name__}")
        self.path = path
        self.by_image: dict[object, list[tuple[list[float], float]]] = {}
        for i, r in enumerate(rows):
            try:
                if int(r.get("category_id", 1)) != 1 or r.get("iscrowd", 0):
                    continue
                box = [float(v) for v in r["bbox"]]
                score = float(r.get("score", 1.0))
                key = r["image_id"]
            except (KeyError, TypeError, ValueError, AttributeError):
                raise DataError(
                    f"{path}: detection #{i} is not a COCO result (needs image_id, bbox [x,y,w,h], score)"
                ) from None
            if len(box) != 4:
                raise DataError(f"{path}: detection #{i} has a bbox of {len(box)} numbers, not 4")
            if score >= min_score and box[2] > 0 and box[3] > 0:
                self.by_image.setdefault(key, []).append((box, score))
        self.file_names = dict(file_names or {})

    def get(self, image_key: object) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and scores of one image, by image id (int or str) or by file name."""
        key = self.file_names.get(str(image_key), image_key)
        rows = self.by_image.get(key)
        if rows is None and isinstance(key, str):
            stem = Path(key).stem
            rows = self.by_image.get(int(stem)) if stem.isdigit() else self.by_image.get(stem)
        if not rows:
            return _empty()
        return np.array([b for b, _ in rows], np.float64), np.array([s for _, s in rows], np.float64)


def make_detector(name: str = "blazepose", **kwargs) -> PersonDetector:
    """Build an embedded detector by name: ``blazepose`` (default) or ``hog``."""
    if name == "blazepose":
        return BlazePoseDetector(**kwargs)
    if name == "hog":
        return HogDetector(**kwargs)
    raise DataError(f"unknown detector '{name}'; choose 'blazepose' or 'hog'")


__all__ = [
    "ABOVE_HEAD",
    "BLAZEPOSE_TO_COCO",
    "HIP_CENTER",
    "BlazePoseDetector",
    "CocoDetections",
    "HogDetector",
    "PersonDetector",
    "Roi",
    "as_detector",
    "iou_xywh",
    "make_detector",
    "nms",
    "ssd_anchors",
    "weighted_nms",
]
