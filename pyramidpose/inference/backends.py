"""Pose backends behind one interface: ``predict(image, boxes, box_scores) -> PoseResult``.

* :class:`BlazePoseBackend` - the embedded default: BlazePose-full (weights inside the mediapipe
  wheel) run by :mod:`pyramidpose.inference.blazepose`, mapped to COCO-17.
* :class:`ViTPoseBackend` - any checkpoint :func:`pyramidpose.load_model` accepts, through
  :class:`pyramidpose.inference.topdown.TopDownPredictor`.

:func:`load_backend` picks one from a ``--weights`` value (``None`` -> the embedded default).
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from pyramidpose.inference.results import PoseResult

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


class PoseBackend(Protocol):
    """Image + person boxes -> keypoints with scores in image coordinates."""

    keypoint_set: str
    name: str

    def predict(
        self, image: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray | None = None
    ) -> PoseResult: ...


def _clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the image and the mask of those with positive area."""
    h, w = shape[:2]
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    x1 = np.clip(b[:, 0], 0, w)
    y1 = np.clip(b[:, 1], 0, h)
    x2 = np.clip(b[:, 0] + b[:, 2], 0, w)
    y2 = np.clip(b[:, 1] + b[:, 3], 0, h)
    out = np.stack([x1, y1, x2 - x1, y2 - y1], 1)
    ok = np.isfinite(b).all(1) & (out[:, 2] > 1e-3) & (out[:, 3] > 1e-3)
    return out, ok


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

    def __init__(self, preset: str = "accurate", num_threads: int = 2, **overrides) -> None:
        from pyramidpose.errors import ConfigError
        from pyramidpose.inference.blazepose import BlazePoseLandmarker

        if preset not in BLAZEPOSE_PRESETS:
            raise ConfigError(f"unknown BlazePose preset '{preset}'; choose from {sorted(BLAZEPOSE_PRESETS)}")
        kwargs = {**BLAZEPOSE_PRESETS[preset], **overrides}
        self.detector_guided = bool(kwargs.pop("detector_guided", False))
        self.undetected_factor = float(kwargs.pop("undetected_factor", 0.5))
        self.preset = preset
        self.landmarker = BlazePoseLandmarker(num_threads=num_threads, **kwargs)
        self._detector = None
        if self.detector_guided:
            from pyramidpose.inference.detectors import BlazePoseDetector

            self._detector = BlazePoseDetector(refine=False, num_threads=num_threads)

    def _guided(self, image: np.ndarray, box: np.ndarray):
        """Landmarks from the detector's alignment ROI inside ``box``, or None if it finds nobody."""
        from pyramidpose.inference.blazepose import roi_from_alignment

        x, y, w, h = (float(v) for v in box)
        side = max(w, h) * 1.25
        _, pts, scores = self._detector._detect_window(image, x + w / 2 - side / 2, y + h / 2 - side / 2, side)
        if not len(scores):
            return None
        best = pts[int(np.argmax(scores))]
        return self.landmarker._predict_box(image, roi_from_alignment(best[0], best[1], 1.25))

    def predict(
        self, image: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray | None = None
    ) -> PoseResult:
        from pyramidpose.inference.blazepose import to_coco17

        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        bs = np.ones(len(boxes)) if box_scores is None else np.asarray(box_scores, np.float64).reshape(-1)
        clipped, ok = _clip_boxes(boxes, image.shape)
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            return PoseResult.empty(17, "coco", num_skipped_boxes=int((~ok).sum()))
        out = self.landmarker.predict_boxes(image, clipped[idx])
        factor = np.ones(len(idx))
        if self.detector_guided:
            for i, box in enumerate(clipped[idx]):
                cand = self._guided(image, box)
                if cand is None:
                    factor[i] = self.undetected_factor
                elif cand[3] > out.pose_flag[i]:
                    out.landmarks[i], out.visibility[i], out.presence[i], out.pose_flag[i] = cand
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

    # -- video: reuse the detector's landmarks and follow people MediaPipe-style -----------------
    def result_from_landmarks(
        self, landmarks: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]], boxes: np.ndarray,
        box_scores: np.ndarray, shape: tuple[int, ...],
    ) -> PoseResult:
        """A PoseResult from raw BlazePose outputs (one (xy39, vis, pres, flag) per box)."""
        from pyramidpose.inference.blazepose import BLAZEPOSE_TO_COCO

        if not landmarks:
            return PoseResult.empty(17, "coco")
        xy = np.stack([lm[0] for lm in landmarks])
        vis = np.stack([lm[1] for lm in landmarks])
        flag = np.array([lm[3] for lm in landmarks], np.float64)
        clipped, _ = _clip_boxes(boxes, shape)
        bs = np.asarray(box_scores, np.float64).reshape(-1)
        return PoseResult(
            keypoints=xy[:, BLAZEPOSE_TO_COCO].astype(np.float32),
            keypoint_scores=vis[:, BLAZEPOSE_TO_COCO].astype(np.float32),
            bboxes=clipped.astype(np.float32),
            box_scores=bs.astype(np.float32),
            scores=(flag * vis[:, BLAZEPOSE_TO_COCO].mean(1) * (np.minimum(bs, 1.0) if len(bs) == len(flag) else 1.0)).astype(np.float32),
            keypoint_set="coco",
            box_indices=np.arange(len(landmarks), dtype=np.int64),
        )

    def follow(
        self, image: np.ndarray, landmarks: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]],
        min_flag: float = 0.5,
    ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray, float]], np.ndarray]:
        """MediaPipe's tracking step: each person's next crop is the alignment ROI of its previous
        landmarks (one network pass per person, no detector). Returns the new raw landmarks of the
        people still found (pose flag >= ``min_flag``) and their boxes."""
        from pyramidpose.inference.blazepose import ABOVE_HEAD, HIP_CENTER, roi_from_alignment
        from pyramidpose.inference.detectors import _box_from_landmarks

        lm = self.landmarker
        out, boxes = [], []
        for xy, *_ in landmarks:
            roi = roi_from_alignment(xy[HIP_CENTER], xy[ABOVE_HEAD], lm.align_scale)
            if not np.isfinite([roi.cx, roi.cy, roi.size]).all() or roi.size < 4:
                continue
            new = lm.predict_roi(image, roi)
            if new[3] < min_flag:
                continue
            box = _box_from_landmarks(new[0], new[1], image.shape)
            if box is None:
                continue
            out.append(new)
            boxes.append(box)
        return out, np.asarray(boxes, np.float64).reshape(-1, 4)


class ViTPoseBackend:
    """A ViTPose(-pyramid) checkpoint through the top-down predictor.

    ``decode`` names the heatmap decoding (:data:`pyramidpose.codecs.heatmap.DECODE_METHODS`; default
    the model's codec with DARK); ``predictor_kwargs`` go to
    :class:`~pyramidpose.inference.topdown.TopDownPredictor` (``flip_test``, ``batch_size``, ``precision``...).
    """

    def __init__(
        self,
        weights: str | os.PathLike[str],
        device: str | None = None,
        dataset: int | str = 0,
        decode: str | None = None,
        **predictor_kwargs,
    ) -> None:
        from pyramidpose import load_model
        from pyramidpose.codecs.heatmap import HeatmapCodec
        from pyramidpose.inference.topdown import TopDownPredictor

        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_model(weights, device=device, dataset=dataset)
        codec = HeatmapCodec.from_config(model.config, method=decode)
        self.predictor = TopDownPredictor(model, codec=codec, device=device, **predictor_kwargs)
        ks = self.predictor.keypoint_set
        self.keypoint_set = ks.name if ks is not None else "custom"
        self.name = f"vitpose:{os.path.basename(str(weights).rstrip('/'))}"

    def predict(
        self, image: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray | None = None
    ) -> PoseResult:
        return self.predictor.predict(image, np.asarray(boxes, np.float64).reshape(-1, 4), box_scores)


def load_backend(
    weights: str | os.PathLike[str] | None = None,
    device: str | None = None,
    preset: str = "accurate",
    num_threads: int = 2,
    **vitpose_kwargs,
) -> PoseBackend:
    """The pose backend for ``--weights``: ``None``/``"blazepose"`` -> the embedded default,
    anything else -> a ViTPose checkpoint (any file or folder :func:`pyramidpose.load_model` reads;
    ``vitpose_kwargs``: ``dataset`` and the predictor's options)."""
    if weights is None or str(weights).lower() in ("blazepose", "default", "embedded"):
        return BlazePoseBackend(preset=preset, num_threads=num_threads)
    return ViTPoseBackend(weights, device=device, **vitpose_kwargs)
