"""Pose NMS against hand-worked examples.

Set-up used throughout: K = 2 keypoints with sigma 0.1 and areas 100, so for a pose whose two
keypoints are both shifted by d pixels OKS = exp(-d^2 / (0.2^2 * 100 * 2)) = exp(-d^2 / 8):
d = 2 gives exp(-0.5) = 0.6065, d = 0 gives 1, far away gives 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyramidpose.evaluation.nms import (
    oks_nms,
    pairwise_oks,
    parametric_pose_nms,
    parametric_pose_similarity,
    soft_oks_nms,
)

SIG = np.array([0.1, 0.1])
A = np.array([[10.0, 10.0], [20.0, 30.0]])
POSES = np.stack([A, A + [2.0, 0.0], A + 500.0])  # B: both keypoints 2 px right of A; C: far away
AREAS = np.array([100.0, 100.0, 100.0])
OKS_AB = math.exp(-0.5)


def test_pairwise_oks_hand_worked():
    ovr = pairwise_oks(POSES, AREAS, SIG)
    assert ovr[0, 1] == pytest.approx(OKS_AB, rel=1e-12)
    assert ovr[1, 0] == pytest.approx(OKS_AB, rel=1e-12)
    assert np.diag(ovr) == pytest.approx(1.0)
    assert ovr[0, 2] == pytest.approx(0.0, abs=1e-12)
    # mean area as scale: areas 100 and 300 -> scale 200 -> exp(-4 / (0.04 * 200 * 2)) = exp(-0.25)
    assert pairwise_oks(POSES[:2], [100.0, 300.0], SIG)[0, 1] == pytest.approx(math.exp(-0.25), rel=1e-12)


def test_pairwise_oks_visibility_threshold_uses_keypoints_both_see():
    p = np.zeros((2, 2, 3))
    p[0, :, :2] = A
    p[1, :, :2] = A + [[2.0, 0.0], [100.0, 0.0]]  # keypoint 0 at 2 px, keypoint 1 far
    p[:, :, 2] = [[0.9, 0.9], [0.9, 0.1]]  # keypoint 1 not seen by pose 1
    assert pairwise_oks(p, [100, 100], SIG, vis_thr=0.5)[0, 1] == pytest.approx(OKS_AB, rel=1e-12)
    assert pairwise_oks(p, [100, 100], SIG)[0, 1] == pytest.approx(OKS_AB / 2, rel=1e-9)  # far keypoint adds 0
    p[:, :, 2] = 0.0
    assert pairwise_oks(p, [100, 100], SIG, vis_thr=0.5)[0, 1] == 0.0


@pytest.mark.parametrize(("thr", "expected"), [(0.5, [0, 2]), (0.7, [0, 1, 2])])
def test_oks_nms_hand_worked(thr, expected):
    keep = oks_nms(POSES, [0.9, 0.8, 0.7], AREAS, thr=thr, sigmas=SIG)
    assert keep.tolist() == expected


def test_oks_nms_order_follows_scores_and_ties_keep_lower_index():
    keep = oks_nms(POSES, [0.5, 0.9, 0.5], AREAS, thr=0.5, sigmas=SIG)
    assert keep.tolist() == [1, 2]  # B wins and suppresses A; C survives
    same = oks_nms(np.stack([A, A]), [0.5, 0.5], [100, 100], thr=0.5, sigmas=SIG)
    assert same.tolist() == [0]
    assert oks_nms(np.zeros((0, 2, 2)), [], [], sigmas=SIG).tolist() == []


def test_soft_oks_nms_gaussian_hand_worked():
    keep, scores = soft_oks_nms(POSES, [0.9, 0.8, 0.7], AREAS, thr=0.3, method="gaussian", sigmas=SIG)
    decayed_b = 0.8 * math.exp(-(OKS_AB**2) / 0.3)  # = 0.8 * exp(-1.2263) = 0.2347
    assert keep.tolist() == [0, 2, 1]
    assert scores == pytest.approx([0.9, 0.7, decayed_b], rel=1e-9)
    assert decayed_b == pytest.approx(0.2347, abs=1e-4)


def test_soft_oks_nms_linear_hand_worked():
    keep, scores = soft_oks_nms(POSES, [0.9, 0.8, 0.7], AREAS, thr=0.5, method="linear", sigmas=SIG)
    assert keep.tolist() == [0, 2, 1]
    assert scores == pytest.approx([0.9, 0.7, 0.8 * (1 - OKS_AB)], rel=1e-9)
    # below the threshold the score is untouched
    keep, scores = soft_oks_nms(POSES, [0.9, 0.8, 0.7], AREAS, thr=0.7, method="linear", sigmas=SIG)
    assert keep.tolist() == [0, 1, 2] and scores == pytest.approx([0.9, 0.8, 0.7])


def test_soft_oks_nms_limits_and_min_score():
    keep, _ = soft_oks_nms(POSES, [0.9, 0.8, 0.7], AREAS, thr=0.3, max_dets=2, sigmas=SIG)
    assert keep.tolist() == [0, 2]
    keep, scores = soft_oks_nms(POSES, [0.9, 0.8, 0.7], AREAS, thr=0.3, min_score=0.3, sigmas=SIG)
    assert keep.tolist() == [0, 2]  # B decayed to 0.235 < 0.3
    with pytest.raises(ValueError):
        soft_oks_nms(POSES, [0.9, 0.8, 0.7], AREAS, method="cubic", sigmas=SIG)


def _pose17(offset: float = 0.0) -> np.ndarray:
    grid = np.stack([np.arange(17) * 20.0, np.arange(17) * 10.0], axis=1)
    return grid + offset


def test_parametric_similarity_hand_worked():
    ref = _pose17()
    ones = np.ones(17)
    # identical pose, all confidences 1: 17 * tanh(1)^2 + 1.7 * 17 * exp(0) = 9.8603 + 28.9
    sim = parametric_pose_similarity(ref, ones, ref[None], ones[None])
    assert sim[0] == pytest.approx(17 * math.tanh(1.0) ** 2 + 1.7 * 17, rel=1e-12)
    # every keypoint 3 px away: no confidence term (d > 1), spatial term 1.7 * 17 * exp(-3 / 2.65)
    sim = parametric_pose_similarity(ref, ones, (ref + [3.0, 0.0])[None], ones[None])
    assert sim[0] == pytest.approx(1.7 * 17 * math.exp(-3 / 2.65), rel=1e-12)


def test_parametric_pose_nms_hand_worked():
    boxes = np.array([[0, 0, 400, 200]] * 4, dtype=float)  # ref distance min(0.1 * 400, 7) = 7 px
    a = _pose17()
    dup = a + 0.5  # d = 0.71 px: 17 tanh(.9) tanh(.8) + 1.7 * 17 exp(-0.71 / 2.65) = 30.2 > 22.48 -> eliminated
    part = a.copy()
    part[5:] += 1000.0  # 5 keypoints coincide (d = 0 <= 7 px) -> 5 matches >= match_thr
    part[:5] += [3.0, 0.0]  # 3 px: outside the 1 px confidence term; sim = 1.7 * 5 * exp(-3/2.65) = 2.74
    far = a + 3000.0
    kps = np.stack([a, dup, part, far])
    scores = np.array([[0.9] * 17, [0.8] * 17, [0.7] * 17, [0.6] * 17])
    keep, groups = parametric_pose_nms(kps, scores, boxes, return_groups=True)
    assert keep.tolist() == [0, 3]
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3]]
    # with match_thr=6 the partly overlapping pose survives (its similarity 2.74 < gamma)
    keep = parametric_pose_nms(kps, scores, boxes, match_thr=6)
    assert keep.tolist() == [0, 2, 3]


def test_parametric_pose_nms_picks_highest_mean_keypoint_confidence():
    boxes = np.array([[0, 0, 400, 200]] * 2, dtype=float)
    kps = np.stack([_pose17(), _pose17(0.2)])
    scores = np.array([[0.2] * 17, [0.9] * 17])
    assert parametric_pose_nms(kps, scores, boxes).tolist() == [1]
