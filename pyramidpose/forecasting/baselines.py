"""Non-learned forecasting baselines.

Zero-velocity (repeat the last observed pose) is a strong baseline at every horizon; constant
velocity (extrapolate the last frame-to-frame motion) wins at the shortest horizons and drifts at the
longest. Both work on any ``[..., T_in, K, D]`` array (numpy or torch), 2D or 3D.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BASELINES = ("zero_velocity", "constant_velocity")


def zero_velocity(observed: Any, t_out: int) -> Any:
    """Predict ``t_out`` frames equal to the last observed pose: ``[..., t_out, K, D]``."""
    last = observed[..., -1:, :, :]
    reps = [1] * (observed.ndim - 3) + [t_out, 1, 1]
    return np.tile(last, reps) if isinstance(observed, np.ndarray) else last.repeat(*reps)


def constant_velocity(observed: Any, t_out: int) -> Any:
    """Extrapolate the last velocity: ``pred[k] = last + (k + 1) * (last - previous)``, k = 0..t_out-1."""
    if observed.shape[-3] < 2:
        raise ValueError("constant velocity needs at least 2 observed frames")
    last = observed[..., -1:, :, :]
    vel = last - observed[..., -2:-1, :, :]
    if isinstance(observed, np.ndarray):
        steps = np.arange(1, t_out + 1, dtype=observed.dtype).reshape(t_out, 1, 1)
    else:
        import torch

        steps = torch.arange(1, t_out + 1, dtype=observed.dtype, device=observed.device).reshape(t_out, 1, 1)
    return last + steps * vel


def run_baseline(name: str, observed: Any, t_out: int) -> Any:
    """Run the baseline called ``name`` (one of :data:`BASELINES`)."""
    if name == "zero_velocity":
        return zero_velocity(observed, t_out)
    if name == "constant_velocity":
        return constant_velocity(observed, t_out)
    raise ValueError(f"unknown baseline '{name}'; known: {', '.join(BASELINES)}")
