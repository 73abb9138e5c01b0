"""BlazePose landmark model run directly through a TFLite interpreter.

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

Only numpy, OpenCV and ``ai-edge-litert`` are needed (all in the ``default`` extra); mediapipe is
only located on disk for its model files, never imported.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyramidpose.errors import DataError, MissingDependencyError
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
        raise MissingDependencyError("ai-edge-litert", "default", "The embedded BlazePose model") from None
    return Interpreter


def _require_cv2():
    try:
        import cv2
    except ImportError:
        raise MissingDependencyError(
            "mediapipe (with opencv-contrib-python)", "default", "The embedded BlazePose model"
        ) from None
    return cv2


def mediapipe_model_path(relative: str) -> Path:
    """Path of a model file inside the installed ``mediapipe`` wheel, without importing mediapipe.

    Raises :class:`MissingDependencyError` (extra ``default``) when mediapipe is not installed and
    :class:`DataError` when the wheel lacks the file.
    """
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("mediapipe", "default", "The embedded BlazePose model")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / relative
    if not path.is_file():
        raise DataError(
            f"the installed mediapipe ({root}) has no model file {relative}; the mediapipe 0.10.14 wheel "
            "ships pose_landmark_full.tflite and pose_detection.tflite (lite/heavy are downloaded by "
            "mediapipe at run time, which pyramidpose never does): use the 'full' variant, pass a "
            "model_path, or reinstall with: pip install 'pyramidpose[default]'"
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

    def predict_roi(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Landmarks (39, 2) in image pixels, visibility (39,), presence (39,), pose flag."""
        lm, flag = self._run_with_flip(self.crop(image, roi))
        m = roi.crop_to_image()
        xy = lm[:, :2] @ m[:, :2].T + m[:, 2]
        return xy, sigmoid(lm[:, 3]), sigmoid(lm[:, 4]), flag

    # -- boxes --------------------------------------------------------------------------------
    def _predict_box(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        xy, vis, pres, flag = self.predict_roi(image, roi)
        for _ in range(self.align_passes):
            if flag < 0.05:
                break
            roi2 = roi_from_alignment(xy[HIP_CENTER], xy[ABOVE_HEAD], self.align_scale)
            if not np.isfinite([roi2.cx, roi2.cy, roi2.size]).all() or roi2.size < 4:
                break
            xy, vis, pres, flag = self.predict_roi(image, roi2)
        return xy, vis, pres, flag

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
                    cand = self._predict_box(image, roi_from_box(box, scale, np.deg2rad(rot)))
                    if best is None or cand[3] > best[3]:
                        best = cand
            out.landmarks[i], out.visibility[i], out.presence[i], out.pose_flag[i] = best
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
