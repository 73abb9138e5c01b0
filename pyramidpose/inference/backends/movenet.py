"""MoveNet SinglePose (embedded ONNX, COCO-17) as a top-down backend: Thunder (256 px) or Lightning (192 px).

One square affine crop per person box (side ``crop_scale`` x the longer box side, centred on the
box, :mod:`pyramidpose.geometry.crops`), all crops of an image in ONE onnxruntime batch, decoded by
:func:`pyramidpose.codecs.movenet.decode_singlepose` and mapped back to the image. Crop pixels
farther than ``blank_outside`` x the half box size from the box centre are blacked out: MoveNet
takes the person nearest the crop centre, and a neighbour in the context pulls keypoints away.
Instance score = box score x mean of the keypoint scores above 0.2 (:func:`rescore`).

Choices measured on coco-mini TRAIN with ground-truth boxes (docs/embedded_models.md): blanking at
1.3x (AP 0.381 -> 0.431), crop 1.15x (-> 0.444); flip test (0.427) and a second, re-centred pass
(0.430) did not help and are off by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from pyramidpose.codecs.movenet import decode_singlepose
from pyramidpose.geometry.boxes import clip_boxes
from pyramidpose.geometry.crops import crop_to_image, warp_crop
from pyramidpose.inference.backends.base import (
    DetectAndFollow,
    Item,
    PersonDetector,
    SessionOptions,
    VideoSession,
    predict_each,
)
from pyramidpose.inference.backends.onnx_models import embedded_model_path, onnx_session
from pyramidpose.inference.results import PoseResult, rescore

#: COCO-17 index permutation for a mirrored image (left <-> right).
COCO_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])

#: variant -> (embedded model file, input size)
VARIANTS = {"thunder": ("movenet-thunder", 256), "lightning": ("movenet-lightning", 192)}


class MoveNetBackend:
    """MoveNet SinglePose on person boxes.

    Args:
        variant: ``thunder`` (more accurate) or ``lightning`` (about 3x faster).
        crop_scale: square crop side / longer box side.
        blank_outside: crop pixels farther than this x the half box size from the box centre are
            set to black (0: keep the whole crop).
        flip_test: also run the mirrored crops (same batch) and average.
        refine: a second pass on a crop re-centred on the first pass's confident keypoints (kept
            per person when its mean keypoint score is higher).
        max_batch: crops per onnxruntime call.
        num_threads: onnxruntime intra-op threads.
        min_video_score: video frames keep poses scoring at least this, without OKS duplicates
            (the detector's weak and duplicate boxes would otherwise be followed and tracked).
        min_video_box_score: video frames pose only detections scoring at least this (a pose
            scores box score x mean keypoint score, and detections below 0.35 did not give a kept
            pose on coco-mini train photos nor on the street clip, while they were about 30 % of
            the crops: docs/embedded_models.md, "Video speed").
    """

    keypoint_set = "coco"
    needs_boxes = True

    def __init__(
        self,
        variant: str = "thunder",
        crop_scale: float = 1.15,
        blank_outside: float = 1.3,
        flip_test: bool = False,
        refine: bool = False,
        max_batch: int = 16,
        num_threads: int = 2,
        min_video_score: float = 0.2,
        min_video_box_score: float = 0.35,
    ) -> None:
        from pyramidpose.errors import ConfigError

        if variant not in VARIANTS:
            raise ConfigError(f"unknown MoveNet variant '{variant}'; choose from {', '.join(VARIANTS)}")
        model, self.size = VARIANTS[variant]
        self.name = model
        self.crop_scale = float(crop_scale)
        self.blank_outside = float(blank_outside)
        self.flip_test = bool(flip_test)
        self.refine = bool(refine)
        self.max_batch = max(1, int(max_batch))
        self.min_video_score = float(min_video_score)
        self.min_video_box_score = float(min_video_box_score)
        self.session = onnx_session(embedded_model_path(model), num_threads)
        self._input = self.session.get_inputs()[0].name

    def _crops(self, image: np.ndarray, centres: np.ndarray, sides: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        size = self.size
        crops = np.zeros((len(centres), size, size, 3), np.uint8)
        for i in range(len(centres)):
            crops[i] = warp_crop(image, centres[i], (sides[i], sides[i]), (size, size))
            if self.blank_outside > 0:
                half = boxes[i, 2:] / 2 * self.blank_outside * size / sides[i]
                x0, y0 = np.floor(size / 2 - half).astype(int).clip(0, size)
                x1, y1 = np.ceil(size / 2 + half).astype(int).clip(0, size)
                keep = crops[i][y0:y1, x0:x1].copy()
                crops[i] = 0
                crops[i][y0:y1, x0:x1] = keep
        return crops

    def _run(self, crops: np.ndarray) -> np.ndarray:
        """(N, 17, 3) = (y, x, score), y and x in [0, 1] of each crop; flip test folded in."""
        batch = np.concatenate([crops, crops[:, :, ::-1]]) if self.flip_test else crops
        outs = []
        for i in range(0, len(batch), self.max_batch):
            x = np.ascontiguousarray(batch[i : i + self.max_batch], dtype=np.int32)
            outs.append(decode_singlepose(*self.session.run(["heatmaps", "centres", "regress", "offsets"], {self._input: x})))
        out = np.concatenate(outs)
        if not self.flip_test:
            return out
        n = len(crops)
        mirrored = out[n:][:, COCO_FLIP].copy()
        mirrored[..., 1] = 1.0 - mirrored[..., 1]
        return (out[:n] + mirrored) / 2

    def _pass(self, image: np.ndarray, centres: np.ndarray, sides: np.ndarray, boxes: np.ndarray):
        kp = self._run(self._crops(image, centres, sides, boxes))
        scales = np.stack([sides, sides], 1)
        xy = crop_to_image(kp[..., 1::-1] * self.size, centres, scales, (self.size, self.size), udp=False)
        return xy, kp[..., 2]

    def predict(self, image: np.ndarray, boxes: np.ndarray | None, box_scores: np.ndarray | None = None) -> PoseResult:
        """Keypoints of the person in each ``xywh`` box (image pixels)."""
        boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
        bs = np.ones(len(boxes)) if box_scores is None else np.asarray(box_scores, np.float64).reshape(-1)
        clipped, ok = clip_boxes(boxes, image.shape[1], image.shape[0], min_size=1e-3)
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            return PoseResult.empty(17, "coco", num_skipped_boxes=int((~ok).sum()))
        b = clipped[idx]
        centres = b[:, :2] + b[:, 2:] / 2
        sides = np.maximum(b[:, 2], b[:, 3]) * self.crop_scale
        xy, scores = self._pass(image, centres, sides, b)
        if self.refine:
            good = scores >= 0.3
            for i in range(len(b)):
                if good[i].sum() >= 4:
                    lo, hi = xy[i][good[i]].min(0), xy[i][good[i]].max(0)
                    centres[i] = (lo + hi) / 2
                    sides[i] = max(sides[i] * 0.8, float((hi - lo).max()) * self.crop_scale * 1.1)
            xy2, scores2 = self._pass(image, centres, sides, b)
            better = scores2.mean(1) > scores.mean(1)
            xy[better], scores[better] = xy2[better], scores2[better]
        return PoseResult(
            keypoints=xy.astype(np.float32),
            keypoint_scores=scores.astype(np.float32),
            bboxes=b.astype(np.float32),
            box_scores=bs[idx].astype(np.float32),
            scores=rescore(bs[idx], scores),
            keypoint_set="coco",
            box_indices=idx.astype(np.int64),
            num_skipped_boxes=int((~ok).sum()),
        )

    def predict_many(self, items: Iterable[Item]) -> Iterator[tuple[Any, PoseResult]]:
        return predict_each(self, items)

    def video_session(self, detector: PersonDetector | None, options: SessionOptions) -> VideoSession:
        return ConfidentFollow(self, detector, options, self.min_video_score, self.min_video_box_score)


class ConfidentFollow(DetectAndFollow):
    """:class:`DetectAndFollow` that keeps (and follows) only confident, non-duplicate poses
    (scoring >= ``min_score``) and poses only detections scoring >= ``min_box_score`` (or the
    session's ``min_box_score`` when higher): weaker ones would rarely give a kept pose."""

    def __init__(
        self, backend, detector, options: SessionOptions, min_score: float, min_box_score: float = 0.0
    ) -> None:
        options = replace(options, min_box_score=max(options.min_box_score, min_box_score))
        super().__init__(backend, detector, options)
        self.min_score = min_score

    def kept(self, result: PoseResult) -> PoseResult:
        return super().kept(result.confident(self.min_score))


def load(variant: str = "thunder", **options: Any) -> MoveNetBackend:
    """The MoveNet SinglePose backend (``options``: see :class:`MoveNetBackend`)."""
    return MoveNetBackend(variant, **options)
