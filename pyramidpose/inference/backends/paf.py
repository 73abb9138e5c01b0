"""Bottom-up pose backend: a PAF model on the whole image, people grouped by the PAF codec.

:class:`PafBackend` follows the pose-backend interface (``predict(image, boxes, box_scores)``) but
ignores boxes (``needs_boxes = False``): the image is scaled so its longer side fills the model's
square input, the last stage's heatmaps and fields are decoded and grouped
(:meth:`pyramidpose.codecs.paf.PafCodec.decode`) and keypoints mapped back through the inverse of
the resize. Each person's box is its keypoints' extent, its score the codec's person score.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np
import torch

from pyramidpose.data.bottomup import fit_matrix
from pyramidpose.data.transforms import normalize_crops
from pyramidpose.inference.backends.base import (
    DetectAndFollow,
    Item,
    PersonDetector,
    SessionOptions,
    VideoSession,
    predict_each,
)
from pyramidpose.inference.results import PoseResult


class PafBackend:
    """A :class:`~pyramidpose.models.paf_model.PafModel` (or its weights file) as a pose backend.

    Args:
        model: a model or the path of :func:`~pyramidpose.models.paf_model.save_paf_model`'s file.
        max_people: keep the best-scoring people per image (COCO evaluates 20).
    """

    needs_boxes = False

    def __init__(self, model: torch.nn.Module | str | os.PathLike[str], device: str | None = None,
                 max_people: int = 20) -> None:  # fmt: skip
        from pyramidpose.models.paf_model import load_paf_model

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        name = "model"
        if not isinstance(model, torch.nn.Module):
            name = os.path.basename(str(model))
            model = load_paf_model(model, self.device)
        self.model = model.to(self.device)
        self.codec = model.config.codec()
        self.size = model.config.input_size[0]
        self.keypoint_set = model.config.keypoint_set
        self.max_people = max_people
        self.name = f"paf:{name}"

    @torch.no_grad()
    def predict(
        self, image: np.ndarray, boxes: np.ndarray | None = None, box_scores: np.ndarray | None = None
    ) -> PoseResult:
        """People of an RGB uint8 image (boxes, if given, are ignored)."""
        h, w = image.shape[:2]
        m = fit_matrix(w, h, self.size)
        crop = cv2.warpAffine(np.ascontiguousarray(image), m, (self.size, self.size), flags=cv2.INTER_LINEAR)
        was_training = self.model.training
        self.model.eval()
        out = self.model(torch.from_numpy(normalize_crops(crop)).to(self.device)).float()[0].cpu().numpy()
        self.model.train(was_training)
        k = self.codec.num_keypoints
        people, scores = self.codec.decode(out[:k], out[k:])
        people, scores = people[: self.max_people], scores[: self.max_people]
        if len(people) == 0:
            return PoseResult.empty(k, self.keypoint_set)
        inv = cv2.invertAffineTransform(m)
        xy = people[..., :2] @ inv[:, :2].T + inv[:, 2]
        found = people[..., 2] > 0
        # a missing keypoint sits at its person's centre, with score 0
        centre = (xy * found[..., None]).sum(1) / np.maximum(found.sum(1), 1)[:, None]
        xy = np.where(found[..., None], xy, centre[:, None, :])
        lo = np.where(found[..., None], xy, np.inf).min(1)
        hi = np.where(found[..., None], xy, -np.inf).max(1)
        bboxes = np.concatenate([lo, hi - lo], axis=1)
        return PoseResult(
            keypoints=xy.astype(np.float32), keypoint_scores=people[..., 2].astype(np.float32),
            bboxes=bboxes.astype(np.float32), box_scores=np.ones(len(people), np.float32),
            scores=np.asarray(scores, np.float32), keypoint_set=self.keypoint_set,
            box_indices=np.arange(len(people)),
        )  # fmt: skip

    def predict_many(self, items: Iterable[Item]) -> Iterator[tuple[Any, PoseResult]]:
        return predict_each(self, items)

    def video_session(self, detector: PersonDetector | None, options: SessionOptions) -> VideoSession:
        return DetectAndFollow(self, None, options)  # bottom-up: every frame on its own


#: Options of top-down checkpoints that a bottom-up model has no use for (ignored).
_TOP_DOWN_ONLY = ("dataset", "decode", "flip_test", "batch_size", "precision", "heatmap_sr")


def load(weights: str | os.PathLike[str], device: str | None = None, **options: Any) -> PafBackend:
    """The backend of a PAF weights file (``options``: ``max_people``; top-down options are ignored)."""
    return PafBackend(weights, device=device, **{k: v for k, v in options.items() if k not in _TOP_DOWN_ONLY})
