"""PCK (percentage of correct keypoints) of COCO-format keypoint results against ground truth.

A labelled ground-truth keypoint counts as correct when the predicted one lies within ``thr`` of the
person's box size: ``|| (pred - gt) / (box_w, box_h) || < thr`` (per-axis box normalisation, as
MMPose's ``PCKAccuracy`` with ``norm_item='bbox'``). Each ground-truth person (non-crowd, with at
least one labelled keypoint) is matched to the prediction of its image with the highest OKS, each
prediction used once; unmatched persons count all their keypoints as wrong.

This is deliberately *not* :func:`pyramidpose.evaluation.metrics.pck` with
:func:`~pyramidpose.evaluation.metrics.box_size`: that one scales the threshold by the longer box side
(``||pred - gt|| <= alpha * max(w, h)``, isotropic, boundary counted correct, persons with an empty
box left out), whereas here each axis is divided by its own box side, the comparison is strict, box
sides are clamped to at least 1 pixel and every labelled keypoint counts (unmatched persons too). The
two give different numbers on the same data; this one matches MMPose's bbox-normalised PCKAccuracy
and the figures already reported by ``pyramidpose ablate``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


def _oks(pred: np.ndarray, gt: np.ndarray, vis: np.ndarray, area: float, sigmas: np.ndarray) -> float:
    if not vis.any():
        return 0.0
    d2 = ((pred - gt) ** 2).sum(-1)
    var = (2 * sigmas) ** 2
    e = d2 / var / (max(area, 1e-6) + np.spacing(1)) / 2
    return float(np.exp(-e[vis]).mean())


def pck_from_results(
    gt: dict[str, Any], results: list[dict[str, Any]], thr: float = 0.2, sigmas: np.ndarray | None = None
) -> dict[str, float]:
    """PCK@``thr`` of ``results`` (COCO keypoint results list) against the COCO ground-truth dict ``gt``.

    Returns ``{"pck": fraction, "correct": n, "total": n}``; ``pck`` is NaN when nothing is labelled.
    """
    from pyramidpose.skeletons import COCO

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
                (_oks(p[:, :2], kp[:, :2], vis, float(a.get("area", 0.0)), sig), i)
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
