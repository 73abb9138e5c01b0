"""3D metrics: P-MPJPE invariance (Must show 1), N-MPJPE scale, numpy/torch agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pyramidpose.evaluation.metrics3d import auc3d, mpjpe, mpjve, n_mpjpe, p_mpjpe, pck3d, procrustes_align


def _poses(n=8, j=17, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.normal(0, 0.3, (n, j, 3))
    pred = gt + rng.normal(0, 0.04, (n, j, 3))
    return pred, gt


def test_mpjpe_known_value_and_root_convention():
    gt = np.zeros((1, 3, 3))
    pred = np.zeros((1, 3, 3))
    pred[0, 1] = [0.03, 0.04, 0.0]  # 5 cm on one of three joints
    assert mpjpe(pred, gt) == pytest.approx(0.05 / 3)
    # a global translation is removed by root alignment but not with root=None
    assert mpjpe(pred + 1.0, gt) == pytest.approx(0.05 / 3)
    assert mpjpe(pred + 1.0, gt, root=None) > 1.0


def test_p_mpjpe_invariant_to_random_similarity_transforms():
    """Must show 1."""
    pred, gt = _poses()
    base = p_mpjpe(pred, gt, reduce=False)
    rng = np.random.default_rng(1)
    for _ in range(20):
        R = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
        s = rng.uniform(0.2, 5.0)
        t = rng.normal(0, 3.0, 3)
        moved = s * pred @ R.T + t
        np.testing.assert_allclose(p_mpjpe(moved, gt, reduce=False), base, atol=1e-9)
        assert mpjpe(moved, gt) > mpjpe(pred, gt)  # plain MPJPE is not invariant
    assert p_mpjpe(pred, gt) <= mpjpe(pred, gt)
    # exact similarity copy -> zero error; reflection is NOT a rotation, so it is not removed
    assert p_mpjpe(2 * gt @ Rotation.random(random_state=3).as_matrix().T + 1, gt) < 1e-9
    assert p_mpjpe(gt * np.array([-1.0, 1.0, 1.0]), gt) > 0.01


def test_n_mpjpe_removes_scale_only():
    pred, gt = _poses(seed=2)
    assert n_mpjpe(gt * 1.7 + 0.5, gt) < 1e-12
    assert n_mpjpe(pred * 0.5, gt) == pytest.approx(n_mpjpe(pred, gt), rel=1e-9)
    assert n_mpjpe(pred, gt) <= mpjpe(pred, gt) + 1e-12


def test_pck_auc_mpjve():
    pred, gt = _poses(seed=4)
    assert pck3d(gt, gt) == 1.0
    assert 0.0 < pck3d(pred, gt, threshold=0.05) < 1.0
    assert auc3d(gt, gt) == pytest.approx(1.0)  # zero error passes every threshold, even 0
    assert auc3d(pred, gt) < auc3d(gt, gt)
    seq = np.cumsum(np.random.default_rng(5).normal(0, 0.01, (10, 17, 3)), axis=0)
    assert mpjve(seq + 0.2, seq) == pytest.approx(0.0, abs=1e-12)  # constant offset, zero velocity error
    shaky = seq.copy()
    shaky[::2, 3] += 0.01
    assert mpjve(shaky, seq) > 0


def test_torch_matches_numpy():
    pred, gt = _poses(seed=6)
    tp, tg = torch.tensor(pred), torch.tensor(gt)
    for fn in (mpjpe, p_mpjpe, n_mpjpe):
        assert float(fn(tp, tg)) == pytest.approx(float(fn(pred, gt)), rel=1e-9)
    np.testing.assert_allclose(procrustes_align(tp, tg).numpy(), procrustes_align(pred, gt), atol=1e-9)
    with pytest.raises(ValueError):
        mpjpe(pred[:, :5], gt)
