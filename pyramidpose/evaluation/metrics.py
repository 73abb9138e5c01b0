"""Single-person 2D keypoint metrics: PCK (box / torso / head normalised, PCKh@0.5), AUC, EPE, NME.

Inputs are matched pairs: ``pred`` and ``gt`` of shape (N, K, 2) (N persons, K keypoints) and an
optional boolean ``mask`` (N, K) of the keypoints that are labelled. Conventions:

* a keypoint is *correct* at ``alpha`` when ``||pred - gt|| <= alpha * norm`` (``norm`` per person);
  persons whose ``norm`` is not positive and finite are left out;
* PCK reports the fraction over all valid keypoints (``mean``, as MPII's "Mean"), per keypoint, and
  the unweighted average of the per-keypoint values (``keypoint_mean``, as MMPose's ``avg_acc``);
* PCKh: ``norm`` is the head size ``0.6 * ||head box diagonal||`` (MPII), ``alpha = 0.5``;
* AUC: mean of PCK over ``num_thresholds`` evenly spaced thresholds ``max_alpha * i / n``,
  ``i = 0..n-1`` (MMPose's ``keypoint_auc``);
* EPE: mean Euclidean distance (pixels) over valid keypoints (inf if a prediction is NaN);
* NME: per person mean distance over valid keypoints divided by its ``norm``, averaged over persons.

Two PCKs, clearly different: :func:`pck` with ``norm = box_size(...)`` is *isotropic* (the longer
box side, ``<=``, matched pairs given); :func:`pck_bbox_per_axis` (used by ``pyramidpose ablate``)
divides each axis by its own box side (MMPose ``norm_item='bbox'``), compares with ``<`` and matches
predictions to ground-truth persons by OKS itself. They do not give the same numbers.

Numpy only. 3D metrics (MPJPE and friends) live in :mod:`pyramidpose.evaluation.metrics3d`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyramidpose.evaluation.oks import oks
from pyramidpose.skeletons import COCO


@dataclass(frozen=True)
class PCKResult:
    """PCK at one threshold.

    Attributes:
        mean: correct / valid over all valid keypoints (NaN when none is valid).
        per_keypoint: (K,) fraction correct per keypoint (NaN where a keypoint is never valid).
        keypoint_mean: unweighted mean of ``per_keypoint`` over keypoints with any valid sample.
        count: number of valid keypoints.
    """

    mean: float
    per_keypoint: np.ndarray
    keypoint_mean: float
    count: int


def _prepare(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 3:
        raise ValueError(f"pred and gt must both be (N, K, D); got {p.shape} and {g.shape}")
    m = np.ones(p.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != p.shape[:2]:
        raise ValueError(f"mask must be (N, K) = {p.shape[:2]}, got {m.shape}")
    dist = np.sqrt(((p - g) ** 2).sum(-1))
    m = m & np.isfinite(g).all(-1)  # unlabelled (NaN) ground truth is not evaluated
    dist[~np.isfinite(dist)] = np.inf  # a NaN prediction of a labelled keypoint is simply wrong
    return dist, m


def keypoint_distances(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, K) Euclidean distances between predicted and ground-truth keypoints."""
    dist, _ = _prepare(pred, gt, None)
    return dist


def _norm_array(norm: np.ndarray | float, n: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(norm, dtype=np.float64), (n,)).copy()
    return arr


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    norm: np.ndarray | float,
    alpha: float = 0.05,
    mask: np.ndarray | None = None,
) -> PCKResult:
    """PCK@``alpha``: keypoints within ``alpha * norm`` of the ground truth.

    Args:
        pred, gt: (N, K, 2) keypoints.
        norm: (N,) per-person normaliser (see :func:`box_size`, :func:`torso_size`, :func:`head_size`)
            or one number for all.
        alpha: threshold as a fraction of ``norm``.
        mask: (N, K) labelled keypoints (default: all).
    """
    dist, m = _prepare(pred, gt, mask)
    nrm = _norm_array(norm, len(dist))
    m = m & (np.isfinite(nrm) & (nrm > 0))[:, None]
    correct = (dist <= alpha * nrm[:, None]) & m
    valid_k = m.sum(0)
    per_kp = np.where(valid_k > 0, correct.sum(0) / np.maximum(valid_k, 1), np.nan)
    count = int(m.sum())
    mean = float(correct.sum() / count) if count else float("nan")
    kp_mean = float(np.nanmean(per_kp)) if np.any(valid_k > 0) else float("nan")
    return PCKResult(mean=mean, per_keypoint=per_kp, keypoint_mean=kp_mean, count=count)


def box_size(boxes: np.ndarray, fmt: str = "xywh") -> np.ndarray:
    """Longer side ``max(w, h)`` of (N, 4) boxes given as ``xywh`` or ``xyxy``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt == "xywh":
        w, h = b[:, 2], b[:, 3]
    elif fmt == "xyxy":
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    else:
        raise ValueError(f"fmt must be 'xywh' or 'xyxy', got {fmt!r}")
    return np.maximum(w, h)


def torso_size(gt: np.ndarray, a: int = 5, b: int = 12, mask: np.ndarray | None = None) -> np.ndarray:
    """Torso size per person: distance between ground-truth keypoints ``a`` and ``b``.

    Defaults are COCO's left shoulder (5) and right hip (12); for MPII use right shoulder (12) and
    left hip (3) or the layout's own pair. Persons missing either keypoint (``mask``) get NaN.
    """
    g = np.asarray(gt, dtype=np.float64)
    size = np.sqrt(((g[:, a, :2] - g[:, b, :2]) ** 2).sum(-1))
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        size = np.where(m[:, a] & m[:, b], size, np.nan)
    return size


def head_size(head_boxes: np.ndarray, factor: float = 0.6) -> np.ndarray:
    """MPII head size: ``factor * ||(x2 - x1, y2 - y1)||`` of (N, 4) head boxes ``x1, y1, x2, y2``."""
    b = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 4)
    return factor * np.sqrt((b[:, 2] - b[:, 0]) ** 2 + (b[:, 3] - b[:, 1]) ** 2)


def pckh(
    pred: np.ndarray, gt: np.ndarray, head_boxes: np.ndarray, alpha: float = 0.5, mask: np.ndarray | None = None
) -> PCKResult:
    """PCKh@``alpha`` (MPII): PCK normalised by :func:`head_size` of the head boxes."""
    return pck(pred, gt, head_size(head_boxes), alpha=alpha, mask=mask)


def pck_auc(
    pred: np.ndarray,
    gt: np.ndarray,
    norm: np.ndarray | float,
    max_alpha: float = 1.0,
    num_thresholds: int = 20,
    mask: np.ndarray | None = None,
) -> float:
    """Area under the PCK curve: mean PCK over thresholds ``max_alpha * i / n`` for ``i = 0..n-1``.

    With ``norm`` a fixed pixel scale (e.g. 30) and ``max_alpha = 1`` this is MMPose's ``keypoint_auc``.
    """
    if num_thresholds < 1:
        raise ValueError("num_thresholds must be >= 1")
    vals = [pck(pred, gt, norm, alpha=max_alpha * i / num_thresholds, mask=mask).mean for i in range(num_thresholds)]
    return float(np.mean(vals))


def epe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """End-point error: mean Euclidean distance over valid keypoints (NaN when none is valid)."""
    dist, m = _prepare(pred, gt, mask)
    return float(dist[m].mean()) if m.any() else float("nan")


def nme(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray | float, mask: np.ndarray | None = None) -> float:
    """Normalised mean error: per person ``mean_k(d_k) / norm``, averaged over persons with valid keypoints."""
    dist, m = _prepare(pred, gt, mask)
    nrm = _norm_array(norm, len(dist))
    ok = m.any(1) & np.isfinite(nrm) & (nrm > 0)
    if not ok.any():
        return float("nan")
    per = (np.where(m, dist, 0.0).sum(1)[ok] / m.sum(1)[ok]) / nrm[ok]
    return float(per.mean())


def pck_bbox_per_axis(
    gt: dict[str, Any], results: list[dict[str, Any]], thr: float = 0.2, sigmas: np.ndarray | None = None
) -> dict[str, float]:
    """PCK@``thr`` of ``results`` (COCO keypoint results list) against the COCO ground-truth dict ``gt``,
    each axis normalised by its own box side (MMPose ``norm_item='bbox'``), strict ``<``.

    Every labelled person (largest first) is matched to the unused prediction of its image with the
    highest OKS (:func:`pyramidpose.evaluation.oks.oks`, area floored at 1e-6); its labelled keypoints
    count as correct when ``|| (dx / w, dy / h) ||`` is below ``thr`` (box sides clamped to at least
    1 pixel); persons left unmatched count all their labelled keypoints as wrong.

    Returns ``{"pck": fraction, "correct": n, "total": n}``; ``pck`` is NaN when nothing is labelled.
    """
    preds_by_image: dict[int, list[np.ndarray]] = defaultdict(list)
    for r in results:
        preds_by_image[int(r["image_id"])].append(np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3))
    gts_by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in gt.get("annotations", []):
        if a.get("iscrowd", 0) or a.get("num_keypoints", 0) <= 0:
            continue
        gts_by_image[int(a["image_id"])].append(a)
    correct = total = 0
    for image_id, anns in gts_by_image.items():
        preds = preds_by_image.get(image_id, [])
        used: set[int] = set()
        for a in sorted(anns, key=lambda a: -a.get("area", 0.0)):
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            vis = kp[:, 2] > 0
            total += int(vis.sum())
            sig = np.asarray(sigmas if sigmas is not None else COCO.sigmas, dtype=np.float64)
            if sig.shape[0] != kp.shape[0]:
                sig = np.full(kp.shape[0], 0.05)
            scores = [
                (float(oks(p, kp, sig, float(a.get("area", 0.0)), visible=vis, area_floor=1e-6)), i)
                for i, p in enumerate(preds)
                if i not in used and p.shape[0] == kp.shape[0]
            ]
            if not scores:
                continue
            _, best = max(scores)
            used.add(best)
            w, h = float(a["bbox"][2]), float(a["bbox"][3])
            norm = np.array([max(w, 1.0), max(h, 1.0)])
            dist = np.linalg.norm((preds[best][:, :2] - kp[:, :2]) / norm, axis=-1)
            correct += int(((dist < thr) & vis).sum())
    return {"pck": correct / total if total else float("nan"), "correct": correct, "total": total}
