"""MoveNet MultiPose Lightning (embedded ONNX, COCO-17) as a bottom-up backend: up to 6 people, no detector.

The image is scaled so that its longer side is ``input_size`` (a multiple of 32) and padded
(bottom/right, black) to multiples of 32, which the graph requires; keypoints and boxes come back
normalised to the padded input and are mapped to the image. Instance score = the model's person
score x mean of the keypoint scores above 0.2 (:func:`rescore`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from pyramidpose.geometry.boxes import clip_boxes
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


class MultiPoseBackend:
    """MoveNet MultiPose on the whole image (``boxes`` are ignored).

    Args:
        input_size: longer side of the network input, a multiple of 32.
        min_score: people whose person score is below this are dropped.
        num_threads: onnxruntime intra-op threads.
    """

    keypoint_set = "coco"
    name = "movenet-multipose"
    needs_boxes = False

    def __init__(self, input_size: int = 256, min_score: float = 0.1, num_threads: int = 2) -> None:
        from pyramidpose.errors import ConfigError

        if input_size % 32 or input_size < 64:
            raise ConfigError(f"MultiPose input size must be a multiple of 32 and >= 64, got {input_size}")
        self.input_size = int(input_size)
        self.min_score = float(min_score)
        self.session = onnx_session(embedded_model_path("movenet-multipose"), num_threads)
        self._input = self.session.get_inputs()[0].name

    def predict(self, image: np.ndarray, boxes: np.ndarray | None = None, box_scores: np.ndarray | None = None) -> PoseResult:
        """All people of the image scoring >= ``min_score``."""
        h, w = image.shape[:2]
        s = self.input_size / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
        canvas = np.zeros((ph, pw, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        out = self.session.run(None, {self._input: canvas[None].astype(np.int32)})[0][0]  # (6, 56)
        out = out[out[:, 55] >= self.min_score]
        if not len(out):
            return PoseResult.empty(17, "coco")
        kp = out[:, :51].reshape(-1, 17, 3)
        xy = np.stack([kp[..., 1] * pw / s, kp[..., 0] * ph / s], -1)
        y1, x1, y2, x2 = (out[:, 51 + i] for i in range(4))
        b = np.stack([x1 * pw, y1 * ph, (x2 - x1) * pw, (y2 - y1) * ph], 1) / s
        b, _ = clip_boxes(b, w, h)
        return PoseResult(
            keypoints=xy.astype(np.float32),
            keypoint_scores=kp[..., 2].astype(np.float32),
            bboxes=b.astype(np.float32),
            box_scores=out[:, 55].astype(np.float32),
            scores=rescore(out[:, 55], kp[..., 2]),
            keypoint_set="coco",
            box_indices=np.arange(len(out), dtype=np.int64),
        )

    def predict_many(self, items: Iterable[Item]) -> Iterator[tuple[Any, PoseResult]]:
        return predict_each(self, items)

    def video_session(self, detector: PersonDetector | None, options: SessionOptions) -> VideoSession:
        return DetectAndFollow(self, None, options)


def load(**options: Any) -> MultiPoseBackend:
    """The MultiPose backend (``options``: see :class:`MultiPoseBackend`)."""
    return MultiPoseBackend(**options)
