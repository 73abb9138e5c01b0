"""ViTPose (and any heatmap checkpoint :func:`pyramidpose.load_model` reads) as a pipeline backend.

Crops become keypoints in :class:`~pyramidpose.inference.topdown.TopDownPredictor`; crops of
consecutive images share forward passes (:meth:`ViTPoseBackend.predict_many`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from pyramidpose.codecs.heatmap import HeatmapCodec
from pyramidpose.inference.backends.base import (
    DetectAndFollow,
    Item,
    PersonDetector,
    SessionOptions,
    VideoSession,
)
from pyramidpose.inference.results import PoseResult
from pyramidpose.inference.topdown import TopDownPredictor
from pyramidpose.models.checkpoints import load_model


class ViTPoseBackend:
    """A heatmap checkpoint through the top-down predictor.

    ``decode`` names the heatmap decoding (:data:`pyramidpose.codecs.heatmap.DECODE_METHODS`; default
    the model's codec with DARK); ``heatmap_sr`` is a heatmap super-resolution model file
    (:func:`pyramidpose.models.heatmap_sr.load_heatmap_sr`) run as the predictor's decoder stage;
    ``predictor_kwargs`` go to :class:`TopDownPredictor` (``flip_test``, ``batch_size``, ``precision``...).
    """

    needs_boxes = True

    def __init__(
        self,
        weights: str | os.PathLike[str],
        device: str | None = None,
        dataset: int | str = 0,
        decode: str | None = None,
        heatmap_sr: str | os.PathLike[str] | None = None,
        **predictor_kwargs: Any,
    ) -> None:
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_model(weights, device=device, dataset=dataset)
        codec = HeatmapCodec.from_config(model.config, method=decode)
        if heatmap_sr is not None:
            from pyramidpose.models.heatmap_sr import load_heatmap_sr

            predictor_kwargs["heatmap_sr"] = load_heatmap_sr(heatmap_sr)
        self.predictor = TopDownPredictor(model, codec=codec, device=device, **predictor_kwargs)
        ks = self.predictor.keypoint_set
        self.keypoint_set = ks.name if ks is not None else "custom"
        self.name = f"vitpose:{os.path.basename(str(weights).rstrip('/'))}"

    def predict(self, image: np.ndarray, boxes: np.ndarray | None, box_scores: np.ndarray | None = None) -> PoseResult:
        boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
        return self.predictor.predict(image, boxes, box_scores)

    def predict_many(self, items: Iterable[Item]) -> Iterator[tuple[Any, PoseResult]]:
        return self.predictor.predict_tagged(items)

    def video_session(self, detector: PersonDetector | None, options: SessionOptions) -> VideoSession:
        return DetectAndFollow(self, detector, options)


def load(weights: str | os.PathLike[str], device: str | None = None, **options: Any) -> ViTPoseBackend:
    """The backend of a checkpoint (``options``: ``dataset``, ``decode`` and the predictor's)."""
    return ViTPoseBackend(weights, device=device, **options)
