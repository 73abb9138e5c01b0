"""Pose predictions for one image: :class:`PoseResult` and its COCO results-format export."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyramidpose.evaluation.nms import oks_nms as _oks_nms
from pyramidpose.evaluation.nms import parametric_pose_nms, soft_oks_nms

#: Keypoints with a heatmap maximum above this count towards the instance score (ViTPose/MMPose).
RESCORE_THRESHOLD = 0.2


def rescore(box_scores: np.ndarray, keypoint_scores: np.ndarray, threshold: float = RESCORE_THRESHOLD) -> np.ndarray:
    """Instance scores: box score x mean of the keypoint scores above ``threshold`` (0 if none)."""
    ks = np.asarray(keypoint_scores, dtype=np.float64)
    above = ks > threshold
    n = above.sum(axis=-1)
    mean = np.divide((ks * above).sum(axis=-1), n, out=np.zeros(ks.shape[:-1]), where=n > 0)
    return (np.asarray(box_scores, dtype=np.float64) * mean).astype(np.float32)


#: Pose NMS methods of :meth:`PoseResult.pose_nms` (``predict --pose-nms``).
POSE_NMS = ("oks", "soft-oks", "parametric")

@dataclass
class PoseResult:
    """Top-down poses of the people in one image (one row per kept box).

    Attributes:
        keypoints: ``(N, K, 2)`` float32 keypoint coordinates in original image pixels.
        keypoint_scores: ``(N, K)`` float32 heatmap maxima.
        bboxes: ``(N, 4)`` float32 ``xywh`` boxes (clipped to the image).
        box_scores: ``(N,)`` detector scores (1 for ground-truth boxes).
        scores: ``(N,)`` instance scores (:func:`rescore`).
        keypoint_set: name of the keypoint layout (:mod:`pyramidpose.skeletons`).
        box_indices: ``(N,)`` index of each row's box in the boxes given to the predictor.
        num_skipped_boxes: boxes dropped because they had zero area after clipping.
        track_ids: optional ``(N,)`` int track ids (filled by trackers).
        areas: optional ``(N,)`` OKS scale of each pose for pose NMS: the crop area of a top-down
            heatmap model (MMPose's protocol); ``None`` means the box area.
    """

    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    bboxes: np.ndarray
    box_scores: np.ndarray
    scores: np.ndarray
    keypoint_set: str = "coco"
    box_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    num_skipped_boxes: int = 0
    track_ids: np.ndarray | None = None
    areas: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def empty(cls, num_keypoints: int, keypoint_set: str = "coco", num_skipped_boxes: int = 0) -> PoseResult:
        """A result with no people."""
        return cls(
            keypoints=np.zeros((0, num_keypoints, 2), np.float32),
            keypoint_scores=np.zeros((0, num_keypoints), np.float32),
            bboxes=np.zeros((0, 4), np.float32),
            box_scores=np.zeros(0, np.float32),
            scores=np.zeros(0, np.float32),
            keypoint_set=keypoint_set,
            num_skipped_boxes=num_skipped_boxes,
        )

    def select(self, index: np.ndarray | list[int] | slice) -> PoseResult:
        """The rows ``index`` of this result (e.g. a score filter ``r.select(r.scores > 0.3)``)."""
        return PoseResult(
            keypoints=self.keypoints[index],
            keypoint_scores=self.keypoint_scores[index],
            bboxes=self.bboxes[index],
            box_scores=self.box_scores[index],
            scores=self.scores[index],
            keypoint_set=self.keypoint_set,
            box_indices=self.box_indices[index] if len(self.box_indices) == len(self) else self.box_indices,
            num_skipped_boxes=self.num_skipped_boxes,
            track_ids=None if self.track_ids is None else self.track_ids[index],
            areas=None if self.areas is None else self.areas[index],
        )

    def finite_mask(self) -> np.ndarray:
        """``(N,)`` bool: rows whose keypoints, keypoint scores, box and score are all finite."""
        return (
            np.isfinite(self.keypoints).all(axis=(1, 2))
            & np.isfinite(self.keypoint_scores).all(axis=1)
            & np.isfinite(self.bboxes).all(axis=1)
            & np.isfinite(self.scores)
        )

    def finite(self, where: str = "") -> PoseResult:
        """The rows of :meth:`finite_mask`; a warning names how many of ``where`` were dropped (a
        NaN-producing model must not put NaN into results files)."""
        ok = self.finite_mask()
        if ok.all():
            return self
        warnings.warn(f"{where or 'image'}: dropped {int((~ok).sum())} predicted instance(s) with NaN or "
                      "infinite values (is the model's output broken?)", RuntimeWarning, stacklevel=2)  # fmt: skip
        return self.select(np.flatnonzero(ok))

    def oks_nms(self, thr: float, sigmas: np.ndarray) -> PoseResult:
        """Greedy OKS-NMS of these poses (MMPose's evaluation protocol): a pose overlapping a
        higher-scored one with OKS above ``thr`` goes. The OKS scale is :attr:`areas` (the box area
        when unset). Kept rows stay in their original order."""
        if len(self) < 2:
            return self
        areas = self.areas if self.areas is not None else self.bboxes[:, 2] * self.bboxes[:, 3]
        keep = _oks_nms(self.keypoints, self.scores, np.asarray(areas, np.float64), thr=thr, sigmas=sigmas)
        return self.select(np.sort(np.asarray(keep, dtype=np.int64)))

    def pose_nms(self, method: str, thr: float | None = None, sigmas: np.ndarray | None = None) -> PoseResult:
        """Pose NMS of these poses with ``method`` (one of :data:`POSE_NMS`); kept rows stay in order.

        ``oks``: :meth:`oks_nms` at ``thr`` (default 0.9); ``soft-oks``: soft-OKS-NMS, Gaussian decay
        with sigma ``thr`` (default 0.3), the kept poses get their decayed scores; ``parametric``:
        AlphaPose's parametric pose NMS on keypoints, keypoint scores and boxes (``thr`` unused).
        """
        if len(self) < 2:
            return self
        if method == "oks":
            return self.oks_nms(0.9 if thr is None else thr, sigmas)  # type: ignore[arg-type]
        if method == "parametric":
            b = np.asarray(self.bboxes, np.float64)
            keep = parametric_pose_nms(self.keypoints, self.keypoint_scores, np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1))
            return self.select(np.sort(np.asarray(keep, dtype=np.int64)))
        if method != "soft-oks":
            raise ValueError(f"unknown pose NMS {method!r}; choose from {', '.join(POSE_NMS)}")
        areas = self.areas if self.areas is not None else self.bboxes[:, 2] * self.bboxes[:, 3]
        keep, decayed = soft_oks_nms(
            self.keypoints, self.scores, np.asarray(areas, np.float64), thr=0.3 if thr is None else thr, sigmas=sigmas
        )
        order = np.argsort(keep, kind="stable")
        out = self.select(np.asarray(keep, dtype=np.int64)[order])
        out.scores = np.asarray(decayed, dtype=np.float32)[order]
        return out

    def confident(self, min_score: float, oks_thr: float = 0.7) -> PoseResult:
        """The poses scoring >= ``min_score`` without duplicates (OKS-NMS at ``oks_thr``, with the
        layout's sigmas, 0.05 where it has none): what a video frame or an overlay shows. COCO
        results files keep every pose (low scores only rank last there)."""
        if len(self) == 0 or min_score <= 0:
            return self
        from pyramidpose.skeletons import get_keypoint_set

        kept = self.select(np.flatnonzero(self.scores >= min_score))
        try:
            ks = get_keypoint_set(self.keypoint_set)
            sigmas = ks.sigmas_array() if ks.sigmas is not None else np.full(ks.num_keypoints, 0.05)
        except KeyError:
            sigmas = np.full(self.keypoints.shape[1], 0.05)
        return kept.oks_nms(oks_thr, sigmas)

    def to_coco(self, image_id: int | str, category_id: int = 1) -> list[dict[str, Any]]:
        """COCO keypoint results: ``{"image_id", "category_id", "keypoints": [x, y, s] * K, "score"}``.

        No ``bbox`` field: pycocotools would then treat the file as box results and recompute areas.
        Instances with non-finite values are dropped with a warning (:meth:`finite`).
        """
        self = self.finite(f"image {image_id}")
        out = []
        for i in range(len(self)):
            kps = np.concatenate([self.keypoints[i], self.keypoint_scores[i][:, None]], axis=1)
            out.append(
                {
                    "image_id": image_id,
                    "category_id": int(category_id),
                    "keypoints": [round(float(v), 3) for v in kps.ravel()],
                    "score": float(self.scores[i]),
                }
            )
        return out

    # -- conveniences for the Python API ---------------------------------------------------------

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """Names of the K keypoints (``kp0``... when the layout is unknown)."""
        from pyramidpose.skeletons import get_keypoint_set

        k = int(self.keypoints.shape[1]) if self.keypoints.ndim == 3 else 0
        try:
            ks = get_keypoint_set(self.keypoint_set)
        except KeyError:
            ks = None
        return ks.keypoints if ks is not None and ks.num_keypoints == k else tuple(f"kp{i}" for i in range(k))

    def __repr__(self) -> str:
        ids = "" if self.track_ids is None else f", track_ids={[int(t) for t in self.track_ids]}"
        best = f", best score {float(np.max(self.scores)):.2f}" if len(self) else ""
        return f"PoseResult({len(self)} people, {self.keypoints.shape[1]} '{self.keypoint_set}' keypoints{best}{ids})"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python (JSON-ready): layout, keypoint names and one dict per person with ``bbox``
        (``xywh``), ``score``, ``box_score``, ``keypoints`` (``[[x, y], ...]``), ``keypoint_scores``
        and ``track_id`` (``None`` when untracked)."""
        people = []
        for i in range(len(self)):
            people.append(
                {
                    "track_id": None if self.track_ids is None else int(self.track_ids[i]),
                    "bbox": [round(float(v), 2) for v in self.bboxes[i]],
                    "score": round(float(self.scores[i]), 4),
                    "box_score": round(float(self.box_scores[i]), 4),
                    "keypoints": [[round(float(x), 2), round(float(y), 2)] for x, y in self.keypoints[i]],
                    "keypoint_scores": [round(float(s), 4) for s in self.keypoint_scores[i]],
                }
            )
        return {"keypoint_set": self.keypoint_set, "keypoint_names": list(self.keypoint_names), "people": people}

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text (non-finite numbers become ``null``)."""
        import json
        import math

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, list):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return json.dumps(clean(self.to_dict()), indent=indent, allow_nan=False)

    def to_pandas(self) -> Any:
        """One row per (person, keypoint): ``person, track_id, keypoint, x, y, score, person_score``
        (needs the optional ``pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            from pyramidpose.errors import MissingDependencyError

            raise MissingDependencyError("pandas", "pandas", "PoseResult.to_pandas()") from None
        names = self.keypoint_names
        n, k = len(self), len(names)
        return pd.DataFrame(
            {
                "person": np.repeat(np.arange(n), k),
                "track_id": np.repeat(self.track_ids if self.track_ids is not None else np.full(n, -1), k),
                "keypoint": np.tile(np.array(names, dtype=object), n),
                "x": self.keypoints[..., 0].reshape(-1),
                "y": self.keypoints[..., 1].reshape(-1),
                "score": self.keypoint_scores.reshape(-1),
                "person_score": np.repeat(self.scores, k),
            }
        )

    def draw(self, image: Any, style: Any = None) -> np.ndarray:
        """A copy of ``image`` (RGB array, PIL image or path) with this result drawn
        (:class:`pyramidpose.viz.draw.DrawStyle` for thresholds, sizes, score labels)."""
        from pyramidpose.viz.draw import draw_result

        if not isinstance(image, np.ndarray):
            from pyramidpose.data.images import read_image

            image = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else read_image(image)
        return draw_result(image, self, style=style)

    def plot(self, image: Any, style: Any = None, ax: Any = None) -> Any:
        """Show :meth:`draw`'s picture with matplotlib; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        ax.imshow(self.draw(image, style))
        ax.set_axis_off()
        return ax
