"""COCO keypoint evaluation (OKS AP/AR) giving exactly pycocotools' numbers, vectorised in numpy.

:func:`coco_keypoint_eval` reproduces ``pycocotools.cocoeval.COCOeval(gt, dt, 'keypoints')`` followed
by ``evaluate(); accumulate(); summarize()`` stat for stat, including its less obvious rules:

* evaluated images are all image ids of ``gt['images']`` (sorted); categories are ``gt['categories']``;
  annotations whose image or category is not listed are not evaluated (as in pycocotools);
* a ground-truth person is *ignored* when ``iscrowd`` is set or ``num_keypoints == 0``; crowd persons
  can absorb any number of detections. The annotation field ``ignore`` has **no** effect, exactly as
  in pycocotools (its ``_prepare`` overwrites it with the crowd flag);
* per image the detections are ordered by score with a stable sort (ties keep file order) and cut to
  the top ``maxDets = 20``; over the data set they are re-sorted stably, so tied scores are broken by
  image id, then by their order within the image;
* a detection's area (for the medium/large ranges) is ``w * h`` of the extent of *all* its keypoints
  (pycocotools' ``loadRes``), or ``bbox[2] * bbox[3]`` when the *first* result has a non-empty
  ``bbox`` field (``loadRes`` then takes its box branch for every result);
* greedy matching per OKS threshold: each detection, in score order, takes the best-OKS unmatched
  regular person with OKS >= threshold (the *last* one on exact ties), and only if there is none the
  best ignored person;
* a stat is -1 where its area range has no non-ignored person.

Differences from pycocotools, all on input pycocotools cannot handle: bad results raise
:class:`~pyramidpose.errors.DataError` naming the first offending record (pycocotools asserts or
crashes); an empty result list gives the no-detection stats with a warning (pycocotools crashes);
a missing ``iscrowd`` means 0 and a missing ``num_keypoints`` means the count of labelled keypoints
(pycocotools raises ``KeyError``); duplicate ground-truth annotation ids are an error (pycocotools
silently evaluates the last annotation with that id in place of the others).

``use_area=False`` is the CrowdPose-style variant of xtcocotools: the ground-truth scale used in OKS
and in the area ranges is ``bbox_w * bbox_h * 0.53`` instead of the ``area`` field.

Reading the files is :mod:`pyramidpose.evaluation.coco_files`; this module matches and accumulates.
How it is fast: files are memory-mapped and decoded lazily (see there). OKS for all detection/person pairs of the data set is one set of array operations, summed
group by group in pycocotools' order (bit-identical); the sequential greedy matching runs as a loop
over the detection rank inside an image (at most 20 steps), each step handling every image, area
range and threshold at once with segment reductions; accumulation is cumulative sums per area and
threshold. No Python loop runs over pairs, detections or (on the fast path) records.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.evaluation.coco_files import (  # noqa: F401 - load_sigmas re-exported
    MAX_DETS,
    Detections,
    GroundTruth,
    JsonFile,
    load_json,
    load_sigmas,
    simdjson_parser,
)
from pyramidpose.evaluation.oks import EPS as _EPS
from pyramidpose.evaluation.oks import default_sigmas, keypoint_similarity, oks_scale

STAT_KEYS: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
# Same construction as pycocotools' Params.setKpParams (bit-identical thresholds).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES: tuple[tuple[float, float], ...] = ((0**2, 1e5**2), (32**2, 96**2), (96**2, 1e5**2))
AREA_LABELS: tuple[str, ...] = ("all", "medium", "large")
_PAIR_CHUNK = 16_384  # OKS pairs processed per chunk (keeps the temporaries in cache)


def _oks_pairs(
    gt: GroundTruth, dt: Detections, pair_gt: np.ndarray, pair_dt: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """OKS of each (detection, person) pair, computed with pycocotools' exact floating-point operations.

    The per-keypoint terms are elementwise, so they are computed in the natural keypoint order. Only
    the sum depends on the order: pycocotools sums ``np.exp(-e[vg > 0])``, the person's labelled
    keypoints in order, with numpy's summation. Pairs are grouped by that count so that each group
    sums rows of exactly those terms (gathered labelled-first) with the same numpy reduction, and the
    results are identical to the last bit.
    """
    k = len(sigmas)
    var = (sigmas * 2) ** 2
    n = len(pair_gt)
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    vis_all = gt.kpts[:, :, 2] > 0
    k1_all = np.count_nonzero(vis_all, axis=1)
    nov_all = k1_all == 0
    labelled_first = np.argsort(~vis_all, axis=1, kind="stable")  # per person: labelled keypoints, in order
    scale_all = oks_scale(gt.area)
    gx, gy = np.ascontiguousarray(gt.kpts[:, :, 0]), np.ascontiguousarray(gt.kpts[:, :, 1])
    b = gt.bbox
    x0_all, x1_all = b[:, 0] - b[:, 2], b[:, 0] + b[:, 2] * 2
    y0_all, y1_all = b[:, 1] - b[:, 3], b[:, 1] + b[:, 3] * 2
    # Work in the order of the labelled count (persons without labels last), so that each group is a
    # contiguous block: no masks, no gathers of the terms.
    group_of = np.where(nov_all, k + 1, k1_all)
    order = np.argsort(group_of[pair_gt], kind="stable")
    pg, pd = pair_gt[order], pair_dt[order]
    bounds = np.concatenate(([0], np.cumsum(np.bincount(group_of[pg], minlength=k + 2))))
    nov_from = bounds[k + 1]
    ex = np.empty((n, k), dtype=np.float64)
    for s in range(0, n, _PAIR_CHUNK):
        e_ = min(s + _PAIR_CHUNK, n)
        g, d = pg[s:e_], pd[s:e_]
        xd, yd = dt.x[d], dt.y[d]
        m = max(0, min(nov_from, e_) - s)  # rows [0, m) have labelled keypoints, [m, ...) have none
        dx = np.empty_like(xd)
        dy = np.empty_like(yd)
        np.subtract(xd[:m], gx[g[:m]], out=dx[:m])
        np.subtract(yd[:m], gy[g[:m]], out=dy[:m])
        if m < len(g):  # persons without labelled keypoints: distance to the doubled box
            gn, xdn, ydn = g[m:], xd[m:], yd[m:]
            z = np.zeros_like(xdn)
            dx[m:] = np.maximum(z, x0_all[gn][:, None] - xdn) + np.maximum(z, xdn - x1_all[gn][:, None])
            dy[m:] = np.maximum(z, y0_all[gn][:, None] - ydn) + np.maximum(z, ydn - y1_all[gn][:, None])
        # exp(-(dx**2 + dy**2) / vars / (area + eps) / 2), in place, pycocotools' operations and order
        ee = np.square(dx, out=dx)
        ee += np.square(dy, out=dy)
        keypoint_similarity(ee, var, scale_all[g][:, None], out=ex[s:e_])
    # Sum each pair's terms over its person's labelled keypoints (all K without labels), group by group.
    for kk in range(1, k + 2):
        lo, hi = bounds[kk], bounds[kk + 1]
        if lo == hi:
            continue
        if kk >= k:  # every keypoint counts (all labelled, or none): the natural order is pycocotools'
            terms = ex[lo:hi]
        else:
            terms = np.take_along_axis(ex[lo:hi], labelled_first[pg[lo:hi], :kk], axis=1)
        out[order[lo:hi]] = terms.sum(axis=1) / min(kk, k)
    return out


def _oks_upper_bound_keep(
    gt: GroundTruth, dt: Detections, pair_gt: np.ndarray, pair_dt: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """Pairs that may reach OKS 0.5, judged from the gap between boxes around the keypoints.

    Every keypoint distance pycocotools uses is at least the gap ``D`` between the box of the
    detection's keypoints and the box of the person's labelled keypoints (or, for a person without
    labels, its doubled ``bbox``), so ``OKS <= exp(-D^2 / max(vars) / (area + eps) / 2)``. A pair is
    dropped only if that bound is below 0.495 (a 1 % margin over 0.5, far above rounding error):
    ``D^2 > -ln(0.495) * 2 * max(vars) * (area + eps)``. Persons with a non-positive scale are kept.
    """
    vis = gt.kpts[:, :, 2] > 0
    has = vis.any(axis=1)
    big = np.inf
    gx0 = np.where(vis, gt.kpts[:, :, 0], big).min(axis=1)
    gx1 = np.where(vis, gt.kpts[:, :, 0], -big).max(axis=1)
    gy0 = np.where(vis, gt.kpts[:, :, 1], big).min(axis=1)
    gy1 = np.where(vis, gt.kpts[:, :, 1], -big).max(axis=1)
    b = gt.bbox
    gx0 = np.where(has, gx0, b[:, 0] - b[:, 2])
    gx1 = np.where(has, gx1, b[:, 0] + b[:, 2] * 2)
    gy0 = np.where(has, gy0, b[:, 1] - b[:, 3])
    gy1 = np.where(has, gy1, b[:, 1] + b[:, 3] * 2)
    x, y = dt.x, dt.y
    dx0, dx1, dy0, dy1 = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
    var_max = float(((sigmas * 2) ** 2).max())
    scale = gt.area + _EPS
    limit = np.where(scale > 0, -np.log(0.495) * 2 * var_max * scale, np.inf)
    g, d = pair_gt, pair_dt
    gap_x = np.maximum(0.0, np.maximum(gx0[g] - dx1[d], dx0[d] - gx1[g]))
    gap_y = np.maximum(0.0, np.maximum(gy0[g] - dy1[d], dy0[d] - gy1[g]))
    gap_x *= gap_x
    gap_y *= gap_y
    gap_x += gap_y
    return ~(gap_x > limit[g])  # NaN gaps are kept (the exact OKS is then NaN and never matches)


def _evaluate_arrays(gt: GroundTruth, dt: Detections, sigmas: np.ndarray) -> dict[str, float]:
    n_areas, n_thr, n_rec = len(AREA_RANGES), len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    n_units, n_cat = gt.n_units, len(gt.cat_ids)
    n_gt, n_dt = len(gt.unit), len(dt.unit)

    gt_count = np.bincount(gt.unit, minlength=n_units)
    gt_start = np.concatenate(([0], np.cumsum(gt_count)[:-1]))
    # Per-area "_ignore" of each person, and per-area "outside the range" of each detection.
    lo = np.array([a[0] for a in AREA_RANGES])[:, None]
    hi = np.array([a[1] for a in AREA_RANGES])[:, None]
    gt_ig = gt.ignore[None, :] | (gt.area[None, :] < lo) | (gt.area[None, :] > hi)  # (A, G)
    dt_out = (dt.area[None, :] < lo) | (dt.area[None, :] > hi)  # (A, D)

    # All (detection, person) pairs of the same image and category, ordered by (rank, unit, person).
    ng = gt_count[dt.unit]
    pair_dt = np.repeat(np.arange(n_dt), ng)
    pair_gt = np.arange(len(pair_dt)) - np.repeat(np.cumsum(ng) - ng, ng) + np.repeat(gt_start[dt.unit], ng)
    pair_rank = dt.rank[pair_dt]
    porder = np.argsort(pair_rank, kind="stable")  # dets are sorted by (unit, rank): keeps unit order
    pair_dt, pair_gt, pair_rank = pair_dt[porder], pair_gt[porder], pair_rank[porder]
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, :, None]
    # A pair whose OKS is below the lowest threshold can never match: leave it out. First a cheap
    # upper bound from the boxes around the keypoints skips most far-apart pairs, then exact OKS.
    maybe = _oks_upper_bound_keep(gt, dt, pair_gt, pair_dt, sigmas)
    pair_dt, pair_gt, pair_rank = pair_dt[maybe], pair_gt[maybe], pair_rank[maybe]
    oks = _oks_pairs(gt, dt, pair_gt, pair_dt, sigmas)
    useful = oks >= thr.min()
    pair_dt, pair_gt, pair_rank, oks = pair_dt[useful], pair_gt[useful], pair_rank[useful], oks[useful]

    matched_gt = np.zeros((n_areas, n_thr, n_gt), dtype=bool)
    dt_match = np.zeros((n_areas, n_thr, n_dt), dtype=bool)  # matched to a person with a non-zero id
    dt_ig = np.zeros((n_areas, n_thr, n_dt), dtype=bool)
    # One integer key per (area, pair) orders candidates exactly as pycocotools' greedy loop prefers
    # them: any regular person before any ignored one, then by OKS (dense rank: exact ties stay ties).
    n_pairs = len(oks)
    by_oks = np.argsort(oks, kind="stable")
    oks_sorted = oks[by_oks]
    dense = np.empty(n_pairs, dtype=np.int64)
    dense[by_oks] = np.cumsum(np.concatenate(([False], oks_sorted[1:] != oks_sorted[:-1])))
    key_base = dense[None, :] + np.where(gt_ig[:, pair_gt], 0, np.int64(1) << 40)  # (A, P)
    over_thr = oks[None, :] >= thr[0]  # (T, P)
    pair_crowd = gt.crowd[pair_gt]
    # Pairs are ordered by (rank, detection, person): each detection's pairs form one segment.
    new_seg = np.ones(n_pairs, dtype=bool)
    new_seg[1:] = pair_dt[1:] != pair_dt[:-1]
    seg_start_all = np.flatnonzero(new_seg)
    seg_id_all = np.cumsum(new_seg) - 1
    rank_bounds = np.searchsorted(pair_rank, np.arange(MAX_DETS + 1))
    seg_bounds = np.searchsorted(seg_start_all, rank_bounds)
    flat_base = (np.arange(n_areas * n_thr) * n_gt).reshape(n_areas, n_thr, 1)
    matched_flat = matched_gt.reshape(-1)
    a_idx = np.arange(n_areas)[:, None, None]
    for r in range(MAX_DETS):
        lo_r, hi_r = rank_bounds[r], rank_bounds[r + 1]
        if lo_r == hi_r:
            continue
        s_lo, s_hi = seg_bounds[r], seg_bounds[r + 1]
        g = pair_gt[lo_r:hi_r]
        seg_starts = seg_start_all[s_lo:s_hi] - lo_r
        seg_ids = seg_id_all[lo_r:hi_r] - s_lo
        seg_dt = pair_dt[seg_start_all[s_lo:s_hi]]
        taken = matched_gt[:, :, g]  # (A, T, P): person already matched at this area and threshold
        crowd = pair_crowd[lo_r:hi_r]
        if crowd.any():
            taken &= ~crowd  # crowd persons take any number of detections
        cand = over_thr[:, lo_r:hi_r] & ~taken
        key = np.where(cand, key_base[:, None, lo_r:hi_r], -1)
        best = np.maximum.reduceat(key, seg_starts, axis=-1)  # (A, T, S)
        hit = best >= 0
        is_best = key == best[..., seg_ids]
        is_best &= cand
        pos = np.where(is_best, np.arange(hi_r - lo_r), -1)
        last = np.maximum.reduceat(pos, seg_starts, axis=-1)  # the last best on exact ties
        mg = g[np.where(hit, last, 0)]  # (A, T, S) person index
        matched_flat[(flat_base + mg)[hit]] = True
        dt_match[:, :, seg_dt] = hit & gt.id_nonzero[mg]
        dt_ig[:, :, seg_dt] = hit & gt_ig[a_idx, mg]
    dt_ig |= ~dt_match & dt_out[:, None, :]

    precision = -np.ones((n_thr, n_rec, n_cat, n_areas, 1))
    recall = -np.ones((n_thr, n_cat, n_areas, 1))
    unit_cat = np.arange(n_units) // gt.n_img
    has_gt_or_dt = (gt_count > 0) | (np.bincount(dt.unit, minlength=n_units) > 0)
    gt_cat = unit_cat[gt.unit]
    dt_cat = unit_cat[dt.unit]
    for c in range(n_cat):
        if not has_gt_or_dt[unit_cat == c].any():
            continue
        npig = np.count_nonzero(~gt_ig[:, gt_cat == c], axis=1)  # (A,) non-ignored persons per area
        areas = np.flatnonzero(npig > 0)
        if not len(areas):
            continue
        sel = np.flatnonzero(dt_cat == c)
        # Global stable order: score, then image (units are image-ordered within a category), then rank.
        sel = sel[np.lexsort((dt.rank[sel], dt.unit[sel], -dt.score[sel]))]
        nd = len(sel)
        if nd == 0:
            recall[:, c, areas, 0] = 0
            precision[:, :, c, areas, 0] = 0
            continue
        # One area at a time (T, nd): small temporaries that the allocator reuses. The cumulative sums
        # count integers, so they equal pycocotools' integer cumsums cast to float; fp + tp is the
        # running count of non-ignored detections.
        # A detection ignored at every threshold (e.g. outside the area range and unmatched) only
        # repeats the previous recall and precision, so it never changes an interpolated precision
        # (the first position reaching a recall level is never such a repeat) nor the final recall:
        # it is left out. With none left, recall and precision are 0, as pycocotools gives then.
        for a in areas:
            keep = ~dt_ig[a][:, sel]
            live = keep.any(axis=0)
            if not live.all():
                keep = keep[:, live]
                sel_a = sel[live]
            else:
                sel_a = sel
            nd_a = len(sel_a)
            if nd_a == 0:
                recall[:, c, a, 0] = 0
                precision[:, :, c, a, 0] = 0
                continue
            match = dt_match[a][:, sel_a]
            tp = np.cumsum(match & keep, axis=1, dtype=np.int32)
            tp_fp = np.cumsum(keep, axis=1, dtype=np.int32)
            rc = tp / npig[a]
            pr = tp / (tp_fp + _EPS)
            recall[:, c, a, 0] = rc[:, -1]
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # pycocotools' backward max pass
            for t in range(n_thr):
                inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                precision[t, :, c, a, 0] = np.where(inds < nd_a, pr[t][np.minimum(inds, nd_a - 1)], 0.0)
    return _summarize(precision, recall)


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The ten keypoint stats, averaged exactly as pycocotools' ``summarize`` does."""

    def one(ap: bool, iou: float | None = None, area: str = "all") -> float:
        aind = [AREA_LABELS.index(area)]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        s = s[:, :, :, aind, [0]] if ap else s[:, :, aind, [0]]
        valid = s[s > -1]
        return -1.0 if len(valid) == 0 else float(np.mean(valid))

    vals = [
        one(True), one(True, 0.5), one(True, 0.75), one(True, area="medium"), one(True, area="large"),
        one(False), one(False, 0.5), one(False, 0.75), one(False, area="medium"), one(False, area="large"),
    ]  # fmt: skip
    return dict(zip(STAT_KEYS, vals))


def coco_keypoint_eval(
    gt: dict[str, Any] | str | os.PathLike[str],
    results: list[dict[str, Any]] | str | os.PathLike[str],
    sigmas: Sequence[float] | np.ndarray | None = None,
    use_area: bool = True,
) -> dict[str, float]:
    """COCO keypoint AP/AR of ``results`` against ``gt``, identical to pycocotools' ``COCOeval``.

    Args:
        gt: COCO keypoint annotations (dict, path to the JSON file, or a pycocotools ``COCO``).
        results: COCO keypoint results, a list of ``{"image_id", "category_id", "keypoints": [x, y, s]*K,
            "score"}`` (or a path to such a JSON list); keypoints may also be numpy arrays.
        sigmas: per-keypoint OKS sigmas (K of them); default COCO's 17.
        use_area: scale OKS by the annotation ``area`` (COCO); ``False`` uses ``bbox_w * bbox_h * 0.53``
            for the scale and the area ranges (CrowdPose / xtcocotools ``use_area=False``).

    Returns:
        ``{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"}`` as floats; -1 where
        pycocotools reports -1 (no non-ignored person in that area range).

    Raises:
        DataError: unreadable files or malformed records (the first bad result is named with its index).
    """
    sig = default_sigmas() if sigmas is None else np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise DataError("OKS sigmas must be positive finite numbers, one per keypoint")
    if hasattr(gt, "dataset") and isinstance(getattr(gt, "dataset", None), dict):
        gt = gt.dataset  # a pycocotools COCO object
    gt_src = load_json(gt, "ground-truth annotation")
    res_src = load_json(results, "results")
    # Fast path first (files through pysimdjson); the careful path on decoded objects names any problem.
    # The ground truth first, then the results in pieces of whole records, all with one parser, whose
    # buffers are thus allocated once.
    parser = simdjson_parser()
    g = None
    if isinstance(gt_src, JsonFile):
        g = GroundTruth.from_document(gt_src.document(parser), sig, use_area)
        if g is None:
            gt_src = gt_src.decode()
    if g is None:
        g = GroundTruth(gt_src, sig, use_area)
    d = None
    if isinstance(res_src, JsonFile):
        res_cols = Detections.columns_from_file(res_src, parser, len(sig))
        d = None if res_cols is None else Detections.from_columns(res_cols, g)
        if d is None:
            res_src = res_src.decode()
    if d is None:
        if isinstance(res_src, list) and len(res_src) == 0:
            warnings.warn(
                "the result list is empty: reporting the stats of no detections (pycocotools would crash)",
                stacklevel=2,
            )
        d = Detections.from_records(res_src, g, len(sig))
    return _evaluate_arrays(g, d, sig)


def format_stats(stats: dict[str, float]) -> str:
    """The ten-line summary table in pycocotools' format."""
    rows = [
        ("Average Precision", "(AP)", None, "all"), ("Average Precision", "(AP)", 0.5, "all"),
        ("Average Precision", "(AP)", 0.75, "all"), ("Average Precision", "(AP)", None, "medium"),
        ("Average Precision", "(AP)", None, "large"), ("Average Recall", "(AR)", None, "all"),
        ("Average Recall", "(AR)", 0.5, "all"), ("Average Recall", "(AR)", 0.75, "all"),
        ("Average Recall", "(AR)", None, "medium"), ("Average Recall", "(AR)", None, "large"),
    ]  # fmt: skip
    lines = []
    for key, (title, typ, iou, area) in zip(STAT_KEYS, rows):
        iou_s = f"{IOU_THRESHOLDS[0]:0.2f}:{IOU_THRESHOLDS[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
        lines.append(
            f" {title:<18} {typ} @[ IoU={iou_s:<9} | area={area:>6s} | maxDets={MAX_DETS:>3d} ] = {stats[key]:0.3f}"
        )
    return "\n".join(lines)
