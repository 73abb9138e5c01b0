"""One-Euro filtering of keypoints per track (Casiez, Roussel and Vogel, CHI 2012).

A low-pass filter whose cut-off rises with speed: still keypoints are smoothed strongly (less
jitter), fast ones lightly (less lag). ``min_cutoff`` sets the smoothing at rest (Hz), ``beta``
how fast the cut-off grows with speed, ``d_cutoff`` the cut-off used for the speed estimate.
Used for videos only; single images are never smoothed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroConfig:
    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0


class OneEuroFilter:
    """One-Euro filter over arrays of any fixed shape (e.g. (K, 2) keypoints)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro: min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filtered value of ``x`` observed at time ``t`` (seconds, increasing)."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        dx_hat = a_d * dx + (1.0 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = a * x + (1.0 - a) * self._x
        self._x, self._dx, self._t = x_hat, dx_hat, t
        return x_hat.copy()


class TrackSmoother:
    """One One-Euro filter per track id, applied to that track's keypoints frame by frame.

    Filters of ids not seen for ``max_gap_s`` seconds are dropped (a re-appearing track restarts
    unsmoothed rather than being pulled from a stale position).
    """

    def __init__(self, config: OneEuroConfig | None = None, max_gap_s: float = 1.0) -> None:
        self.config = config or OneEuroConfig()
        self.max_gap_s = max_gap_s
        self._filters: dict[int, OneEuroFilter] = {}
        self._last_seen: dict[int, float] = {}

    def __call__(self, track_ids: np.ndarray, keypoints: np.ndarray, t: float) -> np.ndarray:
        """Smoothed copy of ``keypoints`` (N, K, 2) for the given ids at time ``t``."""
        out = np.array(keypoints, np.float64, copy=True)
        for tid in [k for k, last in self._last_seen.items() if t - last > self.max_gap_s]:
            self._filters.pop(tid, None)
            self._last_seen.pop(tid, None)
        for i, tid in enumerate(np.asarray(track_ids).tolist()):
            f = self._filters.get(tid)
            if f is None:
                c = self.config
                f = self._filters[tid] = OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff)
            out[i] = f(out[i], t)
            self._last_seen[tid] = t
        return out
