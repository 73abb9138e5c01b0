"""Single-person metrics (PCK, PCKh, AUC, EPE, NME) against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyramidpose.evaluation.metrics import (
    box_size,
    epe,
    head_size,
    keypoint_distances,
    nme,
    pck,
    pck_auc,
    pckh,
    torso_size,
)

# Two persons, three keypoints. Errors (pixels): person 0: 3-4-5 triangle -> 5, 0, 10;
# person 1: 1, 2, 20.
GT = np.zeros((2, 3, 2))
PRED = np.array(
    [
        [[3.0, 4.0], [0.0, 0.0], [0.0, 10.0]],
        [[1.0, 0.0], [0.0, -2.0], [20.0, 0.0]],
    ]
)
DIST = np.array([[5.0, 0.0, 10.0], [1.0, 2.0, 20.0]])


def test_distances_and_epe():
    assert keypoint_distances(PRED, GT) == pytest.approx(DIST)
    assert epe(PRED, GT) == pytest.approx((5 + 0 + 10 + 1 + 2 + 20) / 6)
    mask = np.array([[True, True, False], [True, False, False]])
    assert epe(PRED, GT, mask) == pytest.approx((5 + 0 + 1) / 3)
    assert math.isnan(epe(PRED, GT, np.zeros((2, 3), bool)))


def test_pck_hand_worked():
    # norm 100 for both, alpha 0.05 -> radius 5: correct = [5<=5, 0, 10>5 no], [1, 2, 20 no] -> 4 of 6
    r = pck(PRED, GT, norm=100.0, alpha=0.05)
    assert r.mean == pytest.approx(4 / 6)
    assert r.per_keypoint == pytest.approx([1.0, 1.0, 0.0])
    assert r.keypoint_mean == pytest.approx(2 / 3)
    assert r.count == 6
    # per-person norms: person 1's radius 0.05 * 20 = 1 -> only its first keypoint (1 px) is correct
    r = pck(PRED, GT, norm=np.array([100.0, 20.0]), alpha=0.05)
    assert r.mean == pytest.approx(3 / 6)
    assert r.per_keypoint == pytest.approx([1.0, 0.5, 0.0])


def test_pck_mask_and_invalid_norm():
    mask = np.array([[True, False, False], [True, True, True]])
    r = pck(PRED, GT, norm=np.array([100.0, 0.0]), alpha=0.05, mask=mask)  # person 1 has no valid norm
    assert r.count == 1 and r.mean == 1.0
    assert r.per_keypoint[0] == 1.0 and np.isnan(r.per_keypoint[1:]).all()
    nan_pred = PRED.copy()
    nan_pred[0, 0] = np.nan  # a NaN prediction of a labelled keypoint counts as wrong
    assert pck(nan_pred, GT, norm=100.0, alpha=0.05).mean == pytest.approx(3 / 6)


def test_normalisers():
    assert box_size([[0, 0, 30, 40], [5, 5, 10, 2]]) == pytest.approx([40, 10])
    assert box_size([[10, 10, 40, 50]], fmt="xyxy") == pytest.approx([40])
    g = np.zeros((1, 13, 2))
    g[0, 5] = [0, 0]
    g[0, 12] = [30, 40]
    assert torso_size(g) == pytest.approx([50.0])
    mask = np.ones((1, 13), bool)
    mask[0, 12] = False
    assert np.isnan(torso_size(g, mask=mask)[0])
    # MPII head size: 0.6 * diagonal of a 30 x 40 head box = 0.6 * 50 = 30
    assert head_size([[10, 10, 40, 50]]) == pytest.approx([30.0])


def test_pckh_at_half_head_size():
    # head size 30 -> radius 0.5 * 30 = 15: correct are 5, 0, 10, 1, 2 (not 20) -> 5 of 6
    heads = np.array([[10, 10, 40, 50], [0, 0, 30, 40]], dtype=float)
    r = pckh(PRED, GT, heads, alpha=0.5)
    assert r.mean == pytest.approx(5 / 6)
    assert r.per_keypoint == pytest.approx([1.0, 1.0, 0.5])


def test_auc_hand_worked():
    # norm 20, 4 thresholds alpha = 0, .25, .5, .75 -> radii 0, 5, 10, 15:
    # radius 0: only the 0 px keypoint -> 1/6; 5: {5,0,1,2} -> 4/6; 10: +10 -> 5/6; 15: 5/6
    auc = pck_auc(PRED, GT, norm=20.0, max_alpha=1.0, num_thresholds=4)
    assert auc == pytest.approx((1 + 4 + 5 + 5) / 6 / 4)
    with pytest.raises(ValueError):
        pck_auc(PRED, GT, norm=20.0, num_thresholds=0)


def test_nme_hand_worked():
    # person 0: mean 5 / norm 10 = 0.5; person 1: mean (1+2+20)/3 / norm 23 = 1/3 -> (0.5 + 1/3) / 2
    assert nme(PRED, GT, norm=np.array([10.0, 23.0])) == pytest.approx((0.5 + 1 / 3) / 2)
    mask = np.array([[True, False, False], [False, False, False]])  # person 1 has nothing valid
    assert nme(PRED, GT, norm=np.array([10.0, 23.0]), mask=mask) == pytest.approx(0.5)


def test_shape_errors():
    with pytest.raises(ValueError):
        pck(PRED, GT[:, :2], norm=1.0)
    with pytest.raises(ValueError):
        epe(PRED, GT, mask=np.ones((2, 2), bool))
