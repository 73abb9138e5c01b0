"""BlazePose (the embedded default): landmark model, person detector, pose backend and video session.

Everything BlazePose is here: :class:`BlazePoseLandmarker` (the landmark network on our crops),
:class:`BlazePoseDetector` (MediaPipe's person detector, refined by the landmark network),
:class:`BlazePoseBackend` (the pipeline's pose backend, COCO-17 output) and
:class:`BlazePoseSession` (MediaPipe-style video: follow people by their landmarks, detect only new
ones). ``ai_edge_litert`` and the mediapipe wheel (for its model files) are needed only when a model
is built, never at import.

The landmark model is run directly through a TFLite interpreter.

The ``mediapipe`` wheel ships the BlazePose weights (``pose_landmark_full.tflite``), but its legacy
``solutions.pose`` API only accepts whole images, picks at most one person and hides the crop. Here
the model is run on our own crops of each person box, the way MediaPipe's graph
``pose_landmark_by_roi`` does it:

* input: a 256x256 RGB crop, float32 in [0, 1], cut out of the image by an affine warp of a square,
  possibly rotated region of interest (ROI);
* outputs: 39 landmarks x (x, y, z, visibility, presence) in crop pixels (visibility/presence are
  logits -> sigmoid), a pose-presence flag, a 64x64x39 heatmap used to refine the landmark
  positions (weighted mean of sigmoid(heatmap) in a 7x7 window where it is confident), world
  landmarks and a segmentation mask (unused here).

Landmarks 33 and 34 are MediaPipe's auxiliary "alignment" points (hip centre and a point above the
head): a second pass on the ROI they define (centre at 33, side 2.5x|34-33|, rotated so 33->34
points up) gives an upright, well-framed crop, which is MediaPipe's own tracking ROI.
We add a horizontal flip test and map the 33 BlazePose landmarks onto COCO-17.

Only numpy, OpenCV and ``ai-edge-litert`` are needed (all in the ``blazepose`` extra); mediapipe is
only located on disk for its model files, never imported.

The detector (:class:`BlazePoseDetector`) runs ``pose_detection.tflite`` from the mediapipe wheel with
SSD anchor decoding and weighted NMS, on the whole image and on overlapping tiles (it sees only
224x224 inputs, so small people need tiles). It returns a face box plus alignment points (hip centre,
full-body radius); each detection's full-body ROI is then run through the landmark model and the
person box is taken from the landmarks, which gives a tight box. Very large images are downscaled for
detection (``max_side``) and boxes are mapped back.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.errors import ConfigError, DataError, MissingDependencyError
from pyramidpose.geometry.boxes import box_nms, clip_boxes, iou_xywh
from pyramidpose.inference.backends.base import (
    DetectAndFollow,
    Item,
    Landmarks,
    PersonDetector,
    SessionOptions,
    VideoSession,
    downscale,
    predict_each,
)
from pyramidpose.inference.results import PoseResult
from pyramidpose.skeletons import BLAZEPOSE, COCO

INPUT_SIZE = 256
NUM_LANDMARKS = 39  # 33 body landmarks + 6 auxiliary
HIP_CENTER, ABOVE_HEAD = 33, 34

# BlazePose-33 index of each COCO-17 keypoint (same names; BlazePose's "left" is the person's left,
# as in COCO), and the left/right permutation of the 39 outputs (auxiliary points 33-38 unchanged).
BLAZEPOSE_TO_COCO = np.array([BLAZEPOSE.index(name) for name in COCO.keypoints])


def _flip_perm() -> np.ndarray:
    perm = np.arange(NUM_LANDMARKS)
    perm[: BLAZEPOSE.num_keypoints] = BLAZEPOSE.flip_index()
    return perm


FLIP_PERM = _flip_perm()


def _require_litert():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise MissingDependencyError("ai-edge-litert", "blazepose", "The BlazePose model") from None
    return Interpreter


def _require_cv2():
    try:
        import cv2
    except ImportError:
        raise MissingDependencyError(
            "mediapipe (with opencv-contrib-python)", "blazepose", "The BlazePose model"
        ) from None
    return cv2


def mediapipe_model_path(relative: str) -> Path:
    """Path of a model file inside the installed ``mediapipe`` wheel, without importing mediapipe.

    Raises :class:`MissingDependencyError` (extra ``blazepose``) when mediapipe is not installed and
    :class:`DataError` when the wheel lacks the file.
    """
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("mediapipe", "blazepose", "The BlazePose model")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / relative
    if not path.is_file():
        raise DataError(
            f"the installed mediapipe ({root}) has no model file {relative}; the mediapipe 0.10.14 wheel "
            "ships pose_landmark_full.tflite and pose_detection.tflite (lite/heavy are downloaded by "
            "mediapipe at run time, which pyramidpose never does): use the 'full' variant, pass a "
            "model_path, or reinstall with: pip install 'pyramidpose[blazepose]'"
        )
    return path


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


@dataclass
class Roi:
    """A square region of interest: centre (x, y), side length and rotation (radians, CCW in
    image coordinates: the crop's "up" points along (sin r, -cos r))."""

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def crop_to_image(self) -> np.ndarray:
        """2x3 affine matrix mapping crop pixels (u, v) of the 256x256 input to image pixels."""
        s = self.size / INPUT_SIZE
        c, n = np.cos(self.rotation), np.sin(self.rotation)
        x_axis = np.array([c, n]) * s  # crop +u in image
        y_axis = np.array([-n, c]) * s  # crop +v (down) in image
        centre = np.array([self.cx, self.cy])
        origin = centre - (x_axis + y_axis) * INPUT_SIZE / 2.0
        return np.stack([x_axis, y_axis, origin], axis=1)


def roi_from_box(box_xywh: np.ndarray, scale: float = 1.25, rotation: float = 0.0) -> Roi:
    """Square ROI around a person box, side = longer box side x ``scale``, optionally rotated."""
    x, y, w, h = (float(v) for v in box_xywh)
    return Roi(x + w / 2.0, y + h / 2.0, max(w, h, 1.0) * scale, rotation)


def roi_from_alignment(hip: np.ndarray, above_head: np.ndarray, scale: float = 1.25) -> Roi:
    """MediaPipe's alignment ROI: centre at the hip centre, side 2 x |hip->head| x ``scale``,
    rotated so that hip->head points up in the crop."""
    d = np.asarray(above_head, float) - np.asarray(hip, float)
    radius = float(np.hypot(d[0], d[1]))
    # "up" in the crop is (0, -1); rotation r maps it to (sin r, -cos r) in the image.
    rotation = float(np.arctan2(d[0], -d[1]))
    return Roi(float(hip[0]), float(hip[1]), max(2.0 * radius * scale, 1.0), rotation)


@dataclass
class LandmarkOutput:
    """Raw BlazePose output for N ROIs, in image coordinates."""

    landmarks: np.ndarray  # (N, 39, 2)
    visibility: np.ndarray  # (N, 39) after sigmoid
    presence: np.ndarray  # (N, 39) after sigmoid
    pose_flag: np.ndarray  # (N,)

    def set(self, i: int, lm: Landmarks) -> None:
        """Row ``i`` := one person's landmarks."""
        self.landmarks[i], self.visibility[i], self.presence[i], self.pose_flag[i] = (
            lm.xy, lm.visibility, lm.presence, lm.pose_flag
        )


class BlazePoseLandmarker:
    """The BlazePose-full landmark network on square ROIs of an image.

    Args:
        model_path: a pose_landmark_*.tflite file; default: the one inside the mediapipe wheel.
        num_threads: interpreter threads.
        flip_test: also run the horizontally mirrored crop and average.
        refine_heatmap: MediaPipe's heatmap refinement of landmark positions.
        align_passes: number of extra passes on the alignment ROI from the previous pass's
            auxiliary landmarks (0 = box crop only).
        box_scales: side of the first square crop as multiples of the longer box side; with
            several, each is tried and the result with the highest pose flag is kept (helps with
            truncated people, whose box is not the full-body frame BlazePose was trained on).
        align_scale: MediaPipe's enlargement of the alignment ROI.
        rotations: first-pass crop rotations to try (degrees); the alignment pass only fixes a
            rotation the first pass roughly got, so lying or upside-down people need these.
        variant: ``full`` (ships in the mediapipe wheel), ``lite`` or ``heavy`` (used when their
            files are present beside it; mediapipe downloads those at run time, so they
            usually are not).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        num_threads: int = 2,
        flip_test: bool = True,
        refine_heatmap: bool = True,
        align_passes: int = 1,
        box_scales: tuple[float, ...] = (1.65,),
        align_scale: float = 1.25,
        rotations: tuple[float, ...] = (0.0,),
        variant: str = "full",
    ) -> None:
        interpreter_cls = _require_litert()
        self._cv2 = _require_cv2()
        if variant not in ("lite", "full", "heavy"):
            raise DataError(f"unknown BlazePose variant '{variant}'; choose lite, full or heavy")
        path = Path(model_path) if model_path else mediapipe_model_path(
            f"modules/pose_landmark/pose_landmark_{variant}.tflite"
        )
        if not path.is_file():
            raise DataError(f"BlazePose model file not found: {path}")
        self.model_path = path
        self._interp = interpreter_cls(model_path=str(path), num_threads=num_threads)
        self._interp.allocate_tensors()
        self._input = self._interp.get_input_details()[0]["index"]
        outs = {tuple(d["shape"][1:]): d["index"] for d in self._interp.get_output_details()}
        self._out_landmarks = outs[(NUM_LANDMARKS * 5,)]
        self._out_flag = outs[(1,)]
        self._out_heatmap = next(i for s, i in outs.items() if len(s) == 3 and s[2] == NUM_LANDMARKS)
        self._lock = threading.Lock()
        self.flip_test = flip_test
        self.refine_heatmap = refine_heatmap
        self.align_passes = align_passes
        self.box_scales = tuple(box_scales)
        self.rotations = tuple(rotations)
        self.align_scale = align_scale

    # -- one crop -----------------------------------------------------------------------------
    def crop(self, image: np.ndarray, roi: Roi) -> np.ndarray:
        """The 256x256 float32 [0, 1] network input for ``roi`` (zero outside the image)."""
        cv2 = self._cv2
        m = roi.crop_to_image()
        patch = cv2.warpAffine(
            image,
            m,
            (INPUT_SIZE, INPUT_SIZE),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        return patch.astype(np.float32) * (1.0 / 255.0)

    def _run(self, patch: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Landmarks (39, 5) in crop pixels (refined), visibility/presence logits kept raw."""
        with self._lock:
            self._interp.set_tensor(self._input, patch[None])
            self._interp.invoke()
            lm = self._interp.get_tensor(self._out_landmarks).reshape(NUM_LANDMARKS, 5).copy()
            flag = float(self._interp.get_tensor(self._out_flag).reshape(-1)[0])
            heat = self._interp.get_tensor(self._out_heatmap)[0].copy() if self.refine_heatmap else None
        if heat is not None:
            lm[:, :2] = refine_from_heatmap(lm[:, :2] / INPUT_SIZE, heat) * INPUT_SIZE
        return lm, heat, flag

    def _run_with_flip(self, patch: np.ndarray) -> tuple[np.ndarray, float]:
        lm, _, flag = self._run(patch)
        if not self.flip_test:
            return lm, flag
        lm_f, _, flag_f = self._run(np.ascontiguousarray(patch[:, ::-1]))
        lm_f = lm_f[FLIP_PERM]
        lm_f[:, 0] = INPUT_SIZE - lm_f[:, 0]
        return (lm + lm_f) / 2.0, (flag + flag_f) / 2.0

    def predict_roi(self, image: np.ndarray, roi: Roi) -> Landmarks:
        """The 39 landmarks in image pixels, their visibility and presence, and the pose flag."""
        lm, flag = self._run_with_flip(self.crop(image, roi))
        m = roi.crop_to_image()
        xy = lm[:, :2] @ m[:, :2].T + m[:, 2]
        return Landmarks(xy, sigmoid(lm[:, 3]), sigmoid(lm[:, 4]), flag)

    # -- boxes --------------------------------------------------------------------------------
    def predict_box(self, image: np.ndarray, roi: Roi) -> Landmarks:
        """:meth:`predict_roi` followed by ``align_passes`` passes on the alignment ROI."""
        lm = self.predict_roi(image, roi)
        for _ in range(self.align_passes):
            if lm.pose_flag < 0.05:
                break
            roi2 = roi_from_alignment(lm.xy[HIP_CENTER], lm.xy[ABOVE_HEAD], self.align_scale)
            if not np.isfinite([roi2.cx, roi2.cy, roi2.size]).all() or roi2.size < 4:
                break
            lm = self.predict_roi(image, roi2)
        return lm

    def predict_boxes(self, image: np.ndarray, boxes_xywh: np.ndarray) -> LandmarkOutput:
        """Run on every box of ``image`` (RGB uint8 HxWx3); boxes are (N, 4) x, y, w, h."""
        boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        n = len(boxes)
        out = LandmarkOutput(
            np.zeros((n, NUM_LANDMARKS, 2)), np.zeros((n, NUM_LANDMARKS)), np.zeros((n, NUM_LANDMARKS)),
            np.zeros(n),
        )  # fmt: skip
        for i, box in enumerate(boxes):
            best = None
            for scale in self.box_scales:
                for rot in self.rotations:
                    cand = self.predict_box(image, roi_from_box(box, scale, np.deg2rad(rot)))
                    if best is None or cand.pose_flag > best.pose_flag:
                        best = cand
            assert best is not None
            out.set(i, best)
        return out


def refine_from_heatmap(
    xy_norm: np.ndarray, heatmap: np.ndarray, kernel_size: int = 7, min_confidence: float = 0.5
) -> np.ndarray:
    """MediaPipe's landmark refinement: weighted mean position of sigmoid(heatmap) in a window.

    ``xy_norm`` (L, 2) in [0, 1] crop units; ``heatmap`` (H, W, L) logits. A landmark moves only
    where the window's peak confidence reaches ``min_confidence``.
    """
    hh, ww, nl = heatmap.shape
    out = xy_norm.copy()
    off = (kernel_size - 1) // 2
    for j in range(min(nl, len(xy_norm))):
        col, row = int(xy_norm[j, 0] * ww), int(xy_norm[j, 1] * hh)
        if not (0 <= col < ww and 0 <= row < hh):
            continue
        r0, r1 = max(0, row - off), min(hh, row + off + 1)
        c0, c1 = max(0, col - off), min(ww, col + off + 1)
        conf = sigmoid(heatmap[r0:r1, c0:c1, j])
        total = conf.sum()
        if conf.max() >= min_confidence and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[j, 0] = (cols * conf).sum() / total / ww
            out[j, 1] = (rows * conf).sum() / total / hh
    return out


def to_coco17(out: LandmarkOutput, score_mode: str = "visibility") -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 keypoints (N, 17, 2) and per-keypoint scores (N, 17) from BlazePose output."""
    kpts = out.landmarks[:, BLAZEPOSE_TO_COCO]
    if score_mode == "visibility":
        scores = out.visibility[:, BLAZEPOSE_TO_COCO]
    elif score_mode == "presence":
        scores = out.presence[:, BLAZEPOSE_TO_COCO]
    else:  # "both"
        scores = np.sqrt(out.visibility * out.presence)[:, BLAZEPOSE_TO_COCO]
    return kpts, scores


def instance_scores(
    keypoint_scores: np.ndarray, pose_flag: np.ndarray, box_scores: np.ndarray | None = None,
    threshold: float = 0.2,
) -> np.ndarray:
    """Rescoring: pose flag x mean of the keypoint scores above ``threshold`` (x box score)."""
    ks = np.asarray(keypoint_scores)
    mask = ks > threshold
    mean = np.where(mask.any(1), (ks * mask).sum(1) / np.maximum(mask.sum(1), 1), 0.0)
    s = np.asarray(pose_flag) * mean
    if box_scores is not None:
        s = s * np.asarray(box_scores)
    return s


# -- the BlazePose person detector ------------------------------------------------------------


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


@dataclass
class DetectedPerson:
    """One person found by :class:`BlazePoseDetector`: box ``xywh``, score and the landmarks behind
    the box (``None`` without landmark refinement)."""

    box: np.ndarray
    score: float
    landmarks: Landmarks | None = None


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

    def detect_window(
        self, image: np.ndarray, x0: float, y0: float, side: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        overlapping tiles of side max(h, w) / g x (1 + overlap), at most min(h, w).

        Bounded work: a grid is skipped when its tiles would be smaller than half the detector's
        input (they would only be upsampled) or when it would need more than ``4 g^2`` tiles (an
        extreme aspect ratio: a 2 x 20000 image asked for 13333 tiles per grid), so the count never
        exceeds ``1 + sum(4 g^2)`` whatever the image's shape."""
        side = float(max(h, w))
        wins = [((w - side) / 2.0, (h - side) / 2.0, side)]
        for g in self.tiles if tiles is None else tiles:
            if g <= 1:
                continue
            t = min(float(min(h, w)), side / g * (1.0 + self.tile_overlap))
            step = t * (1.0 - self.tile_overlap)
            if t < self.input_size / 2 or step <= 0:
                continue
            nx = int(np.ceil(max(w - t, 0.0) / step)) + 1
            ny = int(np.ceil(max(h - t, 0.0) / step)) + 1
            if nx * ny > 4 * g * g:
                continue
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
            b, p, s = self.detect_window(image, x0, y0, side)
            all_b.append(b)
            all_p.append(p)
            all_s.append(s)
        b, p, s = np.concatenate(all_b), np.concatenate(all_p), np.concatenate(all_s)
        if not len(s):
            return b, p, s
        return weighted_nms(b, p, s, 0.3)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes ``(N, 4)`` xywh and scores ``(N,)`` (:class:`PersonDetector`)."""
        people = self.detect_people(image)
        if not people:
            return np.zeros((0, 4)), np.zeros(0)
        return np.array([p.box for p in people], np.float64), np.array([p.score for p in people], np.float64)

    def detect_people(
        self, image: np.ndarray, skip_boxes: np.ndarray | None = None, tiles: tuple[int, ...] | None = None
    ) -> list[DetectedPerson]:
        """Detected people with their boxes, scores and (with ``refine``) the landmarks behind each
        box, in image coordinates, so that a BlazePose video session reuses them instead of running
        the landmark model again. Detections whose hip centre lies inside one of ``skip_boxes``
        (people already known, e.g. followed) are dropped before the landmark refinement; ``tiles``
        overrides the tile grids for this call."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            return []
        small, scale = downscale(image, self.max_side)
        _, pts, scores = self.detect_raw(small, tiles)
        if len(scores) and skip_boxes is not None and len(skip_boxes):
            sb = np.asarray(skip_boxes, np.float64).reshape(-1, 4) * scale
            hip = pts[:, 0]
            inside = (
                (hip[:, None, 0] >= sb[None, :, 0]) & (hip[:, None, 0] <= sb[None, :, 0] + sb[None, :, 2])
                & (hip[:, None, 1] >= sb[None, :, 1]) & (hip[:, None, 1] <= sb[None, :, 1] + sb[None, :, 3])
            ).any(1)  # fmt: skip
            pts, scores = pts[~inside], scores[~inside]
        people: list[DetectedPerson] = []
        for p, s in zip(pts, scores):
            roi = roi_from_alignment(p[0], p[1], 1.25)
            if self.refine:
                lm = self.landmarker.predict_box(small, roi)
                if lm.pose_flag < self.min_pose_flag:
                    continue
                box = box_from_landmarks(lm.xy, small.shape)
                if box is None:
                    continue
                lm.xy = lm.xy / scale
                people.append(DetectedPerson(np.asarray(box) / scale, float(s) * lm.pose_flag, lm))
            else:
                r = roi.size / 2.0 / 1.25
                people.append(DetectedPerson(np.array([roi.cx - r, roi.cy - r, 2 * r, 2 * r]) / scale, float(s)))
        if not people:
            return []
        keep = box_nms(np.array([p.box for p in people]), np.array([p.score for p in people]), self.nms_iou)
        return [people[i] for i in keep]


def box_from_landmarks(xy: np.ndarray, shape: tuple[int, ...], pad: float = 0.1) -> list[float] | None:
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



# -- the pose backend and its video session --------------------------------------------------

#: BlazePose presets. "accurate" (default for images): crop 1.65 x box + alignment pass + flip
#: test, plus the detector-guided crop (MediaPipe's path) when BlazePose's detector finds the
#: person in the box; "fast" (video): crop + alignment pass, no flip, no detector; "multiscale":
#: three crop scales, highest pose flag wins (best on coco-mini val, where it was tuned, worst on
#: train: not recommended). Measured by benchmarks/bench_blazepose_ap.py.
BLAZEPOSE_PRESETS: dict[str, dict] = {
    "accurate": {"flip_test": True, "box_scales": (1.65,), "align_passes": 1, "detector_guided": True},
    "fast": {"flip_test": False, "box_scales": (1.65,), "align_passes": 1},
    "multiscale": {"flip_test": True, "box_scales": (1.25, 1.65, 2.0), "align_passes": 1},
}



class BlazePoseBackend:
    """The embedded default pose model (BlazePose-full on affine crops, COCO-17 output).

    Per box: the landmark model on a square crop (1.65 x the longer box side) followed by
    MediaPipe's alignment pass (and a flip test, per preset). With ``detector_guided`` the BlazePose
    detector also looks inside the box (one 224x224 pass); if it finds the person, the landmark
    model runs on the detector's alignment ROI too (MediaPipe's own path) and the result with the
    higher pose flag is kept; if it does not, the instance score is multiplied by
    ``undetected_factor`` (the detector's silence is evidence of a hard, often truncated, person).

    Rescoring: instance score = pose-presence flag x mean visibility of the 17 COCO keypoints x
    box score (x ``undetected_factor``). Keypoint scores are BlazePose's per-landmark visibility.
    """

    keypoint_set = "coco"
    name = "blazepose-full"
    needs_boxes = True

    def __init__(self, preset: str = "accurate", num_threads: int = 2, **overrides: Any) -> None:
        if preset not in BLAZEPOSE_PRESETS:
            raise ConfigError(f"unknown BlazePose preset '{preset}'; choose from {sorted(BLAZEPOSE_PRESETS)}")
        kwargs = {**BLAZEPOSE_PRESETS[preset], **overrides}
        self.detector_guided = bool(kwargs.pop("detector_guided", False))
        self.undetected_factor = float(kwargs.pop("undetected_factor", 0.5))
        self.preset = preset
        self.landmarker = BlazePoseLandmarker(num_threads=num_threads, **kwargs)
        self.guide = BlazePoseDetector(refine=False, num_threads=num_threads) if self.detector_guided else None

    def guided(self, image: np.ndarray, box: np.ndarray) -> Landmarks | None:
        """Landmarks from the detector's alignment ROI inside ``box``, or None if it finds nobody."""
        assert self.guide is not None
        x, y, w, h = (float(v) for v in box)
        side = max(w, h) * 1.25
        _, pts, scores = self.guide.detect_window(image, x + w / 2 - side / 2, y + h / 2 - side / 2, side)
        if not len(scores):
            return None
        best = pts[int(np.argmax(scores))]
        return self.landmarker.predict_box(image, roi_from_alignment(best[0], best[1], 1.25))

    def predict(self, image: np.ndarray, boxes: np.ndarray | None, box_scores: np.ndarray | None = None) -> PoseResult:
        boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
        bs = np.ones(len(boxes)) if box_scores is None else np.asarray(box_scores, np.float64).reshape(-1)
        clipped, ok = clip_boxes(boxes, image.shape[1], image.shape[0], min_size=1e-3)
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            return PoseResult.empty(17, "coco", num_skipped_boxes=int((~ok).sum()))
        out = self.landmarker.predict_boxes(image, clipped[idx])
        factor = np.ones(len(idx))
        if self.detector_guided:
            for i, box in enumerate(clipped[idx]):
                cand = self.guided(image, box)
                if cand is None:
                    factor[i] = self.undetected_factor
                elif cand.pose_flag > out.pose_flag[i]:
                    out.set(i, cand)
        kpts, kscores = to_coco17(out)
        return PoseResult(
            keypoints=kpts.astype(np.float32),
            keypoint_scores=kscores.astype(np.float32),
            bboxes=clipped[idx].astype(np.float32),
            box_scores=bs[idx].astype(np.float32),
            scores=(out.pose_flag * kscores.mean(1) * bs[idx] * factor).astype(np.float32),
            keypoint_set="coco",
            box_indices=idx.astype(np.int64),
            num_skipped_boxes=int((~ok).sum()),
        )

    def predict_many(self, items: Iterable[Item]) -> Iterator[tuple[Any, PoseResult]]:
        return predict_each(self, items)

    def video_session(self, detector: PersonDetector | None, options: SessionOptions) -> VideoSession:
        """With the embedded refining detector: :class:`BlazePoseSession` (MediaPipe-style following);
        with any other detector: the generic :class:`DetectAndFollow`."""
        if isinstance(detector, BlazePoseDetector) and detector.refine:
            return BlazePoseSession(self, detector, options)
        return DetectAndFollow(self, detector, options)

    # -- video: reuse the detector's landmarks and follow people MediaPipe-style -----------------
    def result_from_landmarks(
        self, landmarks: list[Landmarks], boxes: np.ndarray, box_scores: np.ndarray, shape: tuple[int, ...]
    ) -> PoseResult:
        """A PoseResult from raw BlazePose landmarks (one per box)."""
        if not landmarks:
            return PoseResult.empty(17, "coco")
        xy = np.stack([lm.xy for lm in landmarks])
        vis = np.stack([lm.visibility for lm in landmarks])
        flag = np.array([lm.pose_flag for lm in landmarks], np.float64)
        clipped, _ = clip_boxes(boxes, shape[1], shape[0])
        bs = np.asarray(box_scores, np.float64).reshape(-1)
        box_factor = np.minimum(bs, 1.0) if len(bs) == len(flag) else 1.0
        return PoseResult(
            keypoints=xy[:, BLAZEPOSE_TO_COCO].astype(np.float32),
            keypoint_scores=vis[:, BLAZEPOSE_TO_COCO].astype(np.float32),
            bboxes=clipped.astype(np.float32),
            box_scores=bs.astype(np.float32),
            scores=(flag * vis[:, BLAZEPOSE_TO_COCO].mean(1) * box_factor).astype(np.float32),
            keypoint_set="coco",
            box_indices=np.arange(len(landmarks), dtype=np.int64),
        )

    def follow(
        self, image: np.ndarray, landmarks: list[Landmarks], min_flag: float = 0.5
    ) -> tuple[list[Landmarks], np.ndarray]:
        """MediaPipe's tracking step: each person's next crop is the alignment ROI of its previous
        landmarks (one network pass per person, no detector). Returns the new landmarks of the
        people still found (pose flag >= ``min_flag``) and their boxes."""
        lm_model = self.landmarker
        out, boxes = [], []
        for prev in landmarks:
            roi = roi_from_alignment(prev.xy[HIP_CENTER], prev.xy[ABOVE_HEAD], lm_model.align_scale)
            if not np.isfinite([roi.cx, roi.cy, roi.size]).all() or roi.size < 4:
                continue
            new = lm_model.predict_roi(image, roi)
            if new.pose_flag < min_flag:
                continue
            box = box_from_landmarks(new.xy, image.shape)
            if box is None:
                continue
            out.append(new)
            boxes.append(box)
        return out, np.asarray(boxes, np.float64).reshape(-1, 4)


class BlazePoseSession:
    """One video with the embedded models, MediaPipe-style: every known person's crop comes from
    their previous landmarks (one network pass each, no detector); on detection frames the detector
    also looks for new people, and only detections that are not already followed are refined (the
    detector's landmarks are then the poses). People the detector loses (it keys on faces) are kept
    as long as the landmark model still finds them."""

    def __init__(self, backend: BlazePoseBackend, detector: BlazePoseDetector, options: SessionOptions) -> None:
        self.backend = backend
        self.detector = detector
        self.options = options
        self.people: list[Landmarks] = []

    def step(self, image: np.ndarray, detect: bool) -> PoseResult:
        lms: list[Landmarks] = []
        boxes = np.zeros((0, 4))
        scores = np.zeros(0)
        if self.people:  # follow everyone from their previous landmarks (one pass each)
            lms, boxes = self.backend.follow(image, self.people)
            scores = np.array([lm.pose_flag for lm in lms], np.float64)
        if detect or not self.people:  # look for new people; known ones are not refined again
            found = self.detector.detect_people(image, skip_boxes=boxes, tiles=self.options.detector_tiles)
            found = [p for p in found if p.score >= self.options.min_box_score and p.landmarks is not None]
            if found and len(boxes):
                new = iou_xywh(np.array([p.box for p in found]), boxes).max(1) < 0.3
                found = [p for p, k in zip(found, new) if k]
            lms = lms + [p.landmarks for p in found if p.landmarks is not None]
            boxes = np.concatenate([boxes, np.array([p.box for p in found], np.float64).reshape(-1, 4)])
            scores = np.concatenate([scores, np.array([p.score for p in found], np.float64)])
        result = self.backend.result_from_landmarks(lms, boxes, scores, image.shape)
        self.people = lms
        return result


def load(preset: str = "accurate", num_threads: int = 2, **overrides: Any) -> BlazePoseBackend:
    """The BlazePose backend with a preset of :data:`BLAZEPOSE_PRESETS`."""
    return BlazePoseBackend(preset=preset, num_threads=num_threads, **overrides)


def load_detector(**options: Any) -> BlazePoseDetector:
    """The BlazePose person detector (``options``: see :class:`BlazePoseDetector`)."""
    return BlazePoseDetector(**options)
