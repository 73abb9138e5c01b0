"""Forecasting metrics: MPJPE per future frame and at the standard horizons (80-1000 ms).

At 25 fps the horizons 80, 160, 320, 400, 560 and 1000 ms are future frames 2, 4, 8, 10, 14 and 25
(1-based), i.e. indices 1, 3, 7, 9, 13 and 24 of the predicted ``[T_out, K, D]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HORIZONS_MS: tuple[int, ...] = (80, 160, 320, 400, 560, 1000)


def horizon_frame(ms: float, fps: float) -> int:
    """1-based future frame number of a horizon: ``round(ms * fps / 1000)`` (80 ms at 25 fps -> 2)."""
    frame = int(round(ms * fps / 1000.0))
    if frame < 1:
        raise ValueError(f"horizon {ms} ms is shorter than one frame at {fps} fps")
    return frame


def mpjpe_per_frame(pred: np.ndarray, target: np.ndarray, joints: Sequence[int] | None = None) -> np.ndarray:
    """Mean per-joint position error for each future frame, averaged over windows and joints.

    ``pred`` and ``target`` are ``[N, T, K, D]`` (or ``[T, K, D]``); returns ``[T]`` in the input unit.
    ``joints`` restricts the mean to those joint indices (e.g. all but the root of root-relative poses).
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    err = np.linalg.norm(pred - target, axis=-1)  # [N, T, K]
    if joints is not None:
        err = err[..., list(joints)]
    return err.mean(axis=(0, 2))


def horizon_mpjpe(
    pred: np.ndarray,
    target: np.ndarray,
    fps: float,
    horizons_ms: Sequence[int] = HORIZONS_MS,
    joints: Sequence[int] | None = None,
    scale: float = 1000.0,
) -> dict[int, float]:
    """MPJPE at each horizon (ms -> error times ``scale``; meters -> mm by default).

    Horizons beyond the predicted length are left out.
    """
    per_frame = mpjpe_per_frame(pred, target, joints) * scale
    out: dict[int, float] = {}
    for ms in horizons_ms:
        f = horizon_frame(ms, fps)
        if f <= per_frame.shape[0]:
            out[int(ms)] = float(per_frame[f - 1])
    return out
