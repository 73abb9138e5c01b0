"""One-Euro smoothing: less jitter at rest, little lag when moving, one filter per track."""

from __future__ import annotations

import numpy as np
import pytest

from pyramidpose.inference.smoothing import OneEuroConfig, OneEuroFilter, TrackSmoother


def test_first_value_passes_through_and_constant_stays_constant():
    f = OneEuroFilter()
    x = np.array([[3.0, 4.0]])
    assert np.array_equal(f(x, 0.0), x)
    for i in range(1, 10):
        assert np.allclose(f(x, i / 30), x)


def test_jitter_is_reduced_at_rest():
    rng = np.random.default_rng(0)
    noisy = 100 + rng.normal(0, 2.0, (120, 17, 2))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.stack([f(x, i / 30) for i, x in enumerate(noisy)])
    assert out[30:].std() < 0.5 * noisy[30:].std()


def test_beta_reduces_lag_on_fast_motion():
    t = np.arange(60) / 30
    x = (t * 300.0)[:, None]  # 300 px/s ramp

    def lag(beta):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        out = np.array([f(v, ti) for v, ti in zip(x, t)])
        return float(np.abs(out[-1] - x[-1]).item())

    assert lag(0.5) < 0.5 * lag(0.0)


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


def test_track_smoother_keeps_separate_state_per_id_and_forgets_old_ids():
    sm = TrackSmoother(OneEuroConfig(min_cutoff=0.5, beta=0.0), max_gap_s=0.5)
    a = np.zeros((1, 17, 2))
    b = np.full((1, 17, 2), 500.0)
    sm(np.array([1]), a, 0.0)
    sm(np.array([2]), b, 0.0)
    out = sm(np.array([1, 2]), np.concatenate([a + 10, b + 10]), 1 / 30)
    assert 0 < out[0, 0, 0] < 10 and 500 < out[1, 0, 0] < 510  # each pulled toward its own past
    later = sm(np.array([1]), a + 100, 2.0)  # id 1 unseen for > max_gap_s: restarts unsmoothed
    assert np.allclose(later, a + 100)
