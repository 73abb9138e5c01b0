"""Part-guided proposal generation (AlphaPose's PGPG, Fang et al. RMPE ICCV 2017 / TPAMI 2022).

A single-person model trained only on ground-truth boxes meets detector boxes at test time, which are
shifted, too large or too small in ways that depend on what part of the person is visible. PGPG
learns that error: the offsets of detected boxes relative to their ground-truth boxes,
``(dx, dy) = (detected centre - true centre) / true size`` and ``(dw, dh) = log(detected size /
true size)``, fitted as one Gaussian per part group (which body parts the person shows, see
:func:`part_group`), and samples training boxes from it as augmentation.

:func:`collect_offsets` matches a detector's boxes to the ground truth (IoU >= 0.5, greedy by score);
:func:`fit_proposals` fits the per-group Gaussians (groups with too few samples use the pooled fit);
:class:`ProposalModel` is JSON-serialisable and samples jittered boxes for a person.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.utils.io import write_text_atomic

#: Part groups, from what a person shows (COCO-17 visibility).
GROUPS = ("full", "upper", "lower")
_LEGS = (13, 14, 15, 16)  # knees, ankles
_HEAD_ARMS = (0, 1, 2, 3, 4, 5, 6)  # face and shoulders


def part_group(keypoints: np.ndarray) -> str:
    """``full`` (head/shoulders and knees/ankles labelled), ``upper`` (no knee or ankle) or ``lower``
    (no face or shoulder) for one COCO person ``(17, 3)``."""
    vis = np.asarray(keypoints)[:, 2] > 0
    legs, top = vis[list(_LEGS)].any(), vis[list(_HEAD_ARMS)].any()
    if legs and top:
        return "full"
    return "upper" if top else "lower"


def box_offsets(detected: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Offsets ``(N, 4)`` = ``dx, dy, log dw, log dh`` of xywh boxes ``detected`` relative to ``truth``."""
    d, t = np.asarray(detected, np.float64).reshape(-1, 4), np.asarray(truth, np.float64).reshape(-1, 4)
    dc = (d[:, :2] + d[:, 2:] / 2 - t[:, :2] - t[:, 2:] / 2) / t[:, 2:]
    return np.concatenate([dc, np.log(d[:, 2:] / t[:, 2:])], axis=1)


def apply_offsets(truth: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse of :func:`box_offsets`: xywh boxes from ground-truth boxes and offsets."""
    t, o = np.asarray(truth, np.float64).reshape(-1, 4), np.asarray(offsets, np.float64).reshape(-1, 4)
    wh = t[:, 2:] * np.exp(o[:, 2:])
    c = t[:, :2] + t[:, 2:] / 2 + o[:, :2] * t[:, 2:]
    return np.concatenate([c - wh / 2, wh], axis=1)


@dataclass
class ProposalModel:
    """Per-group Gaussian of box offsets: ``mean (4,)`` and ``cov (4, 4)`` per group name, with counts."""

    mean: dict[str, list[float]] = field(default_factory=dict)
    cov: dict[str, list[list[float]]] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def sample(self, truth: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One proposal box (xywh) for a person with ground-truth box ``truth`` and ``keypoints``."""
        g = part_group(keypoints)
        g = g if g in self.mean else "all"
        off = rng.multivariate_normal(np.asarray(self.mean[g]), np.asarray(self.cov[g]))
        return apply_offsets(truth, off)[0]

    def to_json(self) -> str:
        return json.dumps(
            {"mean": self.mean, "cov": self.cov, "count": self.count, "source": self.source}, indent=1
        )

    def save(self, path: str | Path) -> Path:
        write_text_atomic(Path(path), self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ProposalModel:
        """Read a saved model; :class:`DataError` naming the file and field when it is malformed."""
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: not a readable proposal model ({exc})") from None
        if not isinstance(d, dict) or "all" not in d.get("mean", {}):
            raise DataError(f"{p}: a proposal model needs 'mean' and 'cov' with an 'all' group; refit it")
        for g, m in d["mean"].items():
            c = np.asarray(d.get("cov", {}).get(g), dtype=np.float64)
            if np.asarray(m, np.float64).shape != (4,) or c.shape != (4, 4) or not np.isfinite(c).all():
                raise DataError(f"{p}: group '{g}': mean must be 4 numbers and cov 4x4 finite numbers")
        return cls(d["mean"], d["cov"], d.get("count", {}), d.get("source", ""))


def collect_offsets(
    people: Iterable[tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]],
    detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
) -> list[tuple[str, np.ndarray]]:
    """``(group, offset)`` per ground-truth person a detection matches.

    ``people`` yields ``(image, gt boxes, gt keypoints)`` per image; detections are matched greedily
    by score to the unmatched ground-truth box of highest IoU, when at least ``iou_threshold``.
    """
    from pyramidpose.geometry.boxes import iou_xywh

    out = []
    for image, boxes, kps in people:
        det, scores = detector(image)
        if len(det) == 0 or len(boxes) == 0:
            continue
        gt = np.asarray(boxes, np.float64).reshape(-1, 4)
        iou = iou_xywh(np.asarray(det, np.float64), gt)
        free = np.ones(len(gt), bool)
        for i in np.argsort(-np.asarray(scores)):
            cand = np.where(free, iou[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= iou_threshold:
                free[j] = False
                out.append((part_group(kps[j]), box_offsets(det[i], gt[j])[0]))
    return out


def fit_proposals(
    samples: list[tuple[str, np.ndarray]], min_samples: int = 8, source: str = ""
) -> ProposalModel:
    """Gaussians of the offsets per part group (and ``all``); a group with fewer than
    ``min_samples`` offsets is left out (sampling then uses ``all``). Covariances get 1e-6 on the
    diagonal so they stay positive definite."""
    if len(samples) < 2:
        raise DataError(f"fitting proposals needs at least 2 matched detections, got {len(samples)}")
    model = ProposalModel(source=source)
    by: dict[str, list[np.ndarray]] = {"all": [o for _, o in samples]}
    for g, o in samples:
        by.setdefault(g, []).append(o)
    for g, rows in by.items():
        if g != "all" and len(rows) < min_samples:
            continue
        x = np.stack(rows)
        model.mean[g] = x.mean(0).tolist()
        model.cov[g] = (np.cov(x, rowvar=False) + 1e-6 * np.eye(4)).tolist()
        model.count[g] = len(rows)
    return model
