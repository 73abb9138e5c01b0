"""COCO keypoint AP and PCK per test image, for bootstrap confidence intervals and subset splits.

COCO AP is not a mean over images, but its matching is per image: :func:`match_images` runs
pycocotools' per-image matching (``evaluateImg``: detections by score, greedy best-OKS match at each
of the ten OKS thresholds, ignored people and area ranges) once and keeps, for every detection, its
score, image and true/false-positive flags. :func:`ap_from_table` then accumulates those flags like
``COCOeval.accumulate`` with a weight per image, so a bootstrap resample of the test images (an image
drawn k times weighs k) costs one cumulative sum instead of a new evaluation. With unit weights the
result equals :func:`pyramidpose.evaluation.coco_eval.coco_keypoint_eval` (tested).

``gt_keep`` restricts a table to a subset of people (a person-size bin, an overlap bin): the others
are ignored like people outside an area range, and an unmatched detection made from an ignored
person's box (``dt_source``) is ignored too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MatchTable", "match_images", "ap_from_table", "pck_per_image", "bootstrap", "percentile_ci"]

OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {"all": (0.0, 1e10), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
_EPS = np.spacing(1)  # pycocotools' epsilon in the precision


@dataclass
class MatchTable:
    """The per-detection outcome of the matching (detections in global score order)."""

    image_ids: list[Any]  # the test images, in the order of the weights
    dt_image: np.ndarray  # [D] index into image_ids
    tp: np.ndarray  # [T, D] bool
    fp: np.ndarray  # [T, D] bool
    npig: np.ndarray  # [I] not-ignored people per image


def _oks_matrix(dts: np.ndarray, gts: np.ndarray, areas: np.ndarray, boxes: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """OKS [D, G] as pycocotools' ``computeOks``: the project's kernel (:func:`pyramidpose.evaluation.oks.oks`)
    over the labelled keypoints; people without labels: the distance to their doubled box."""
    from pyramidpose.evaluation.oks import keypoint_similarity, oks, oks_scale

    out = np.zeros((len(dts), len(gts)))
    for j, (g, area, b) in enumerate(zip(gts, areas, boxes)):
        vis = g[:, 2] > 0
        if vis.any():
            out[:, j] = oks(dts, g[None], sigmas, area, visible=vis[None])
            continue
        x0, x1, y0, y1 = b[0] - b[2], b[0] + b[2] * 2, b[1] - b[3], b[1] + b[3] * 2
        dx = np.maximum(0, x0 - dts[:, :, 0]) + np.maximum(0, dts[:, :, 0] - x1)
        dy = np.maximum(0, y0 - dts[:, :, 1]) + np.maximum(0, dts[:, :, 1] - y1)
        out[:, j] = keypoint_similarity(dx**2 + dy**2, (2 * sigmas) ** 2, oks_scale(area)).mean(-1)
    return out


def match_images(
    gt: dict[str, Any],
    results: Sequence[dict[str, Any]],
    sigmas: np.ndarray | None = None,
    area: str = "all",
    gt_keep: Callable[[dict[str, Any]], bool] | None = None,
    dt_source: Sequence[int | None] | None = None,
    max_dets: int = 20,
) -> MatchTable:
    """pycocotools' per-image keypoint matching of ``results`` against the COCO dict ``gt``.

    ``area``: ``all``, ``medium`` or ``large`` (COCO's ranges). ``gt_keep(annotation)``: people for
    which it is false are ignored. ``dt_source[i]``: the annotation id whose box produced result
    ``i`` (top-down with ground-truth boxes), used to ignore unmatched detections of ignored people.
    """
    from pyramidpose.skeletons import COCO

    sig = np.asarray(sigmas if sigmas is not None else COCO.sigmas, np.float64)
    lo, hi = AREA_RANGES[area]
    images = [int(im["id"]) for im in gt["images"]]
    index = {i: k for k, i in enumerate(images)}
    gts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in gt.get("annotations", []):
        gts[int(a["image_id"])].append(a)
    ignored_ann: set[int] = set()
    dts: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for i, r in enumerate(results):
        dts[int(r["image_id"])].append((i, r))
    T = len(OKS_THRESHOLDS)
    rows_score, rows_img, rows_tp, rows_fp = [], [], [], []
    npig = np.zeros(len(images))
    for img in images:
        g_list = gts.get(img, [])
        g_ign = np.array([
            bool(a.get("iscrowd", 0)) or a.get("num_keypoints", 0) == 0
            or not (lo <= float(a["area"]) <= hi) or (gt_keep is not None and not gt_keep(a))
            for a in g_list
        ], bool)  # fmt: skip
        ignored_ann.update(int(a["id"]) for a, ig in zip(g_list, g_ign) if ig)
        g_order = np.argsort(g_ign, kind="mergesort")
        g_list = [g_list[k] for k in g_order]
        g_ign = g_ign[g_order]
        npig[index[img]] = float((~g_ign).sum())
        d_list = dts.get(img, [])
        d_order = np.argsort([-float(r["score"]) for _, r in d_list], kind="mergesort")[:max_dets]
        d_list = [d_list[k] for k in d_order]
        if not d_list:
            continue
        dk = np.array([np.asarray(r["keypoints"], np.float64).reshape(-1, 3) for _, r in d_list])
        if g_list:
            gk = np.array([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in g_list])
            ious = _oks_matrix(dk, gk, np.array([float(a["area"]) for a in g_list]),
                               np.array([a["bbox"] for a in g_list], np.float64), sig)  # fmt: skip
        else:
            ious = np.zeros((len(d_list), 0))
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in g_list], bool)
        d_area = np.array([_kp_area(x) for x in dk])
        d_src = [dt_source[i] if dt_source is not None else None for i, _ in d_list]
        tp = np.zeros((T, len(d_list)), bool)
        fp = np.zeros((T, len(d_list)), bool)
        for t, thr in enumerate(OKS_THRESHOLDS):
            gtm = np.zeros(len(g_list), bool)
            for d in range(len(d_list)):
                best, m = min(thr, 1 - 1e-10), -1
                for g in range(len(g_list)):
                    if gtm[g] and not crowd[g]:
                        continue
                    if m > -1 and not g_ign[m] and g_ign[g]:
                        break
                    if ious[d, g] < best:
                        continue
                    best, m = ious[d, g], g
                if m == -1:
                    ign = not (lo <= d_area[d] <= hi) or (d_src[d] is not None and d_src[d] in ignored_ann)
                    fp[t, d] = not ign
                    continue
                gtm[m] = True
                if not g_ign[m]:
                    tp[t, d] = True
        rows_score += [float(r["score"]) for _, r in d_list]
        rows_img += [index[img]] * len(d_list)
        rows_tp.append(tp)
        rows_fp.append(fp)
    if rows_score:
        order = np.argsort(-np.asarray(rows_score), kind="mergesort")
        tp_all, fp_all = np.concatenate(rows_tp, 1)[:, order], np.concatenate(rows_fp, 1)[:, order]
        dt_image = np.asarray(rows_img)[order]
    else:
        tp_all = fp_all = np.zeros((T, 0), bool)
        dt_image = np.zeros(0, int)
    return MatchTable(images, dt_image, tp_all, fp_all, npig)


def _kp_area(kp: np.ndarray) -> float:
    """pycocotools' area of a keypoint result: the extent of all its keypoints."""
    x, y = kp[:, 0], kp[:, 1]
    return float((x.max() - x.min()) * (y.max() - y.min()))


def ap_from_table(table: MatchTable, weights: np.ndarray | None = None, thresholds: slice | int | None = None) -> float:
    """COCO AP (mean over OKS thresholds, or one threshold index) with a weight per image.

    Returns NaN when no person counts (pycocotools reports -1).
    """
    w = np.ones(len(table.image_ids)) if weights is None else np.asarray(weights, np.float64)
    npig = float((table.npig * w).sum())
    if npig <= 0:
        return float("nan")
    dw = w[table.dt_image]
    rows = range(len(OKS_THRESHOLDS)) if thresholds is None else [thresholds] if isinstance(thresholds, int) else range(len(OKS_THRESHOLDS))[thresholds]
    aps = []
    for t in rows:
        keep = (table.tp[t] | table.fp[t]) & (dw > 0)
        tps = np.cumsum(np.where(table.tp[t], dw, 0.0)[keep])
        fps = np.cumsum(np.where(table.fp[t], dw, 0.0)[keep])
        if len(tps) == 0:
            aps.append(0.0)
            continue
        rc = tps / npig
        pr = tps / (fps + tps + _EPS)
        pr = np.maximum.accumulate(pr[::-1])[::-1]
        inds = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        q = np.where(inds < len(pr), pr[np.minimum(inds, len(pr) - 1)], 0.0)
        aps.append(float(q.mean()))
    return float(np.mean(aps))


def pck_per_image(gt: dict[str, Any], results: Sequence[dict[str, Any]], thr: float = 0.2,
                  sigmas: np.ndarray | None = None) -> tuple[list[Any], np.ndarray, np.ndarray]:  # fmt: skip
    """Per-image ``(image_ids, correct, total)`` of :func:`pyramidpose.evaluation.metrics.pck_bbox_per_axis`."""
    from pyramidpose.evaluation.metrics import pck_bbox_per_axis

    by_img_gt: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in gt.get("annotations", []):
        by_img_gt[int(a["image_id"])].append(a)
    by_img_dt: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_img_dt[int(r["image_id"])].append(r)
    ids = [int(im["id"]) for im in gt["images"]]
    correct, total = np.zeros(len(ids)), np.zeros(len(ids))
    for k, i in enumerate(ids):
        p = pck_bbox_per_axis({"annotations": by_img_gt.get(i, [])}, by_img_dt.get(i, []), thr, sigmas)
        correct[k], total[k] = p["correct"], p["total"]
    return ids, correct, total


def bootstrap(
    n_images: int, statistic: Callable[[np.ndarray], float], n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """``statistic(weights)`` for ``n_boot`` resamples of the images with replacement (weights = counts)."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for b in range(n_boot):
        w = np.bincount(rng.integers(0, n_images, n_images), minlength=n_images).astype(np.float64)
        out[b] = statistic(w)
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap ``samples`` (NaNs dropped)."""
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))
