"""Pose non-maximum suppression over arrays of instances: OKS-NMS, soft-OKS-NMS, parametric pose NMS.

All functions take the instances of *one* image as arrays and return indices into them (highest
score first). Keypoints are ``(N, K, 2)`` or ``(N, K, 3)`` (x, y[, confidence]); numpy only.

* :func:`oks_nms` - greedy OKS-NMS as in HRNet / MMPose (``oks_nms``): keep the best-scoring pose,
  drop every remaining pose whose OKS with it exceeds ``thr``, repeat.
* :func:`soft_oks_nms` - soft-NMS with OKS as overlap: instead of dropping, scores decay
  (Gaussian ``s * exp(-oks^2 / sigma)`` or linear ``s * (1 - oks)`` where ``oks >= thr``).
* :func:`parametric_pose_nms` - AlphaPose's parametric pose NMS (Fang et al., RMPE, ICCV 2017), as
  in ``alphapose/utils/pPose_nms.py`` (``pose_nms_body``): a pose is eliminated by the current
  reference pose when their *pose similarity* exceeds ``gamma`` or when at least ``match_thr`` of
  their keypoints lie within ``min(alpha * max(box_w, box_h), 7)`` pixels of each other.

OKS between two detections uses the mean of their areas as scale (HRNet / MMPose convention):
``oks = mean_k exp(-d_k^2 / (2 * ((a_i + a_j) / 2 + eps) * (2 sigma_k)^2))`` over the keypoints
both detections see (confidence > ``vis_thr``; all keypoints when ``vis_thr`` is None).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pyramidpose.evaluation.oks import EPS, default_sigmas, oks


def _as_instances(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if kp.ndim != 3 or kp.shape[2] not in (2, 3):
        raise ValueError(f"keypoints must have shape (N, K, 2) or (N, K, 3), got {kp.shape}")
    if len(sc) != len(kp):
        raise ValueError(f"{len(sc)} scores for {len(kp)} instances")
    return kp, sc


def pairwise_oks(
    keypoints: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray | None = None,
    vis_thr: float | None = None,
) -> np.ndarray:
    """Symmetric (N, N) OKS between all pairs of detections of one image (scale: mean of both areas
    plus ``np.spacing(1)``; :func:`pyramidpose.evaluation.oks.oks`).

    With ``vis_thr`` set (keypoints must then carry a confidence), only keypoints whose confidence
    exceeds it in *both* detections count; a pair without such keypoints has OKS 0.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    a = np.asarray(areas, dtype=np.float64).reshape(-1)
    sig = default_sigmas() if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    both = None
    if vis_thr is not None:
        if kp.shape[2] < 3:
            raise ValueError("vis_thr needs keypoints with a confidence column (N, K, 3)")
        vis = kp[:, :, 2] > vis_thr
        both = vis[:, None, :] & vis[None, :, :]
    return oks(kp[:, None], kp[None, :], sig, (a[:, None] + a[None, :]) / 2, visible=both, eps=EPS)


def _score_order(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")  # highest first, ties by index


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thr: float = 0.9,
    sigmas: np.ndarray | None = None,
    vis_thr: float | None = None,
) -> np.ndarray:
    """Greedy OKS-NMS; returns the kept indices, highest score first.

    Args:
        keypoints: (N, K, 2|3) poses of one image.
        scores: (N,) instance scores.
        areas: (N,) instance areas (e.g. box w*h) used as OKS scale.
        thr: a pose is dropped when its OKS with an already kept pose is greater than ``thr``.
        sigmas: per-keypoint OKS sigmas (default COCO's).
        vis_thr: only keypoints with confidence above this in both poses count (None: all).
    """
    kp, sc = _as_instances(keypoints, scores)
    if len(kp) == 0:
        return np.zeros(0, dtype=np.int64)
    ovr = pairwise_oks(kp, areas, sigmas, vis_thr)
    suppressed = np.zeros(len(kp), dtype=bool)
    keep = []
    for i in _score_order(sc):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ovr[i] > thr
    return np.asarray(keep, dtype=np.int64)


def soft_oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thr: float = 0.3,
    method: Literal["gaussian", "linear"] = "gaussian",
    max_dets: int = 20,
    min_score: float = 0.0,
    sigmas: np.ndarray | None = None,
    vis_thr: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-OKS-NMS; returns ``(kept indices, their decayed scores)`` in pick order.

    Repeatedly picks the remaining pose with the highest *current* score (ties: lowest index) and
    decays the scores of all remaining poses by their OKS ``o`` with it:
    ``method="gaussian"``: ``s *= exp(-o**2 / thr)`` (``thr`` acts as the Gaussian's sigma);
    ``method="linear"``: ``s *= 1 - o`` where ``o >= thr``.
    Stops after ``max_dets`` picks; poses whose score falls below ``min_score`` are dropped.
    """
    if method not in ("gaussian", "linear"):
        raise ValueError(f"method must be 'gaussian' or 'linear', got {method!r}")
    kp, sc = _as_instances(keypoints, scores)
    if len(kp) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    ovr = pairwise_oks(kp, areas, sigmas, vis_thr)
    cur = sc.copy()
    alive = cur >= min_score
    keep, kept_scores = [], []
    while alive.any() and len(keep) < max_dets:
        i = int(np.flatnonzero(alive)[np.argmax(cur[alive])])
        keep.append(i)
        kept_scores.append(cur[i])
        alive[i] = False
        o = ovr[i]
        if method == "gaussian":
            cur = np.where(alive, cur * np.exp(-(o**2) / thr), cur)
        else:
            cur = np.where(alive & (o >= thr), cur * (1 - o), cur)
        alive &= cur >= min_score
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=np.float64)


def parametric_pose_similarity(
    ref_keypoints: np.ndarray,
    ref_scores: np.ndarray,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    delta1: float = 1.0,
    mu: float = 1.7,
    delta2: float = 2.65,
) -> np.ndarray:
    """AlphaPose's pose similarity of each pose in ``keypoints`` (N, K, 2) to ``ref_keypoints`` (K, 2).

    ``sim = sum_k [d_k <= 1] tanh(c_ref,k / delta1) tanh(c_k / delta1) + mu * sum_k exp(-d_k / delta2)``
    with ``d_k`` the pixel distance of keypoint k and ``c`` the keypoint confidences: a soft count of
    coinciding confident keypoints plus ``mu`` times a spatial closeness term.
    """
    d = np.sqrt(((np.asarray(keypoints, dtype=np.float64)[..., :2] - np.asarray(ref_keypoints)[None, :, :2]) ** 2).sum(-1))
    soft = np.tanh(np.asarray(ref_scores)[None, :] / delta1) * np.tanh(np.asarray(keypoint_scores) / delta1)
    return np.where(d <= 1, soft, 0.0).sum(-1) + mu * np.exp(-d / delta2).sum(-1)


def parametric_pose_nms(
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    boxes: np.ndarray,
    delta1: float = 1.0,
    mu: float = 1.7,
    delta2: float = 2.65,
    gamma: float = 22.48,
    match_thr: int = 5,
    alpha: float = 0.1,
    return_groups: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """AlphaPose's parametric pose NMS; returns kept indices in pick order (and the eliminated groups).

    Args:
        keypoints: (N, K, 2) poses (pixels).
        keypoint_scores: (N, K) keypoint confidences; zeros count as 1e-5 (as AlphaPose).
        boxes: (N, 4) person boxes ``x1, y1, x2, y2``; they set the matching radius.
        delta1: softness of the confidence term ``tanh(c / delta1)``.
        mu: weight (lambda in the paper) of the spatial term.
        delta2: distance scale (pixels) of the spatial term ``exp(-d / delta2)``.
        gamma: similarity above which a pose is eliminated.
        match_thr: a pose with at least this many keypoints within ``min(alpha * max(w, h), 7)``
            pixels of the reference pose (box of the reference) is eliminated.
        alpha: matching radius as a fraction of the reference box's longer side.
        return_groups: also return, per kept pose, the indices it eliminated (itself included), for
            AlphaPose-style pose merging.

    The reference pose at each step is the remaining one with the highest mean keypoint confidence
    (ties: lowest index). AlphaPose's default constants are used; its extra post-filter (dropping
    kept poses whose best keypoint confidence is below 0.3) and the merging are left to the caller.
    """
    kp = np.asarray(keypoints, dtype=np.float64)[..., :2]
    ks = np.asarray(keypoint_scores, dtype=np.float64).copy()
    bx = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if kp.ndim != 3 or ks.shape != kp.shape[:2] or len(bx) != len(kp):
        raise ValueError(f"shapes do not agree: keypoints {kp.shape}, scores {ks.shape}, boxes {bx.shape}")
    ks[ks == 0] = 1e-5
    ref_dists = alpha * np.maximum(bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1])
    human = ks.mean(axis=1)
    alive = np.ones(len(kp), dtype=bool)
    keep: list[int] = []
    groups: list[np.ndarray] = []
    while alive.any():
        idx = np.flatnonzero(alive)
        pick = int(idx[np.argmax(human[idx])])
        sim = parametric_pose_similarity(kp[pick], ks[pick], kp[idx], ks[idx], delta1, mu, delta2)
        ref = min(ref_dists[pick], 7.0)
        dist = np.sqrt(((kp[idx] - kp[pick][None]) ** 2).sum(-1))
        n_match = (dist / ref <= 1).sum(-1) if ref > 0 else (dist <= 0).sum(-1)
        gone = idx[(sim > gamma) | (n_match >= match_thr)]
        if pick not in gone:
            gone = np.append(gone, pick)
        keep.append(pick)
        groups.append(np.sort(gone))
        alive[gone] = False
    keep_arr = np.asarray(keep, dtype=np.int64)
    return (keep_arr, groups) if return_groups else keep_arr
