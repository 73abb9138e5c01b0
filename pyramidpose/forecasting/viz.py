"""Pictures of a forecast: observed, predicted and (when known) true future poses.

:func:`plot_forecast` draws a strip of panels (the last observed pose, then the prediction at several
horizons over the true pose) and, when the truth is known, the error per future frame of the model
and the baselines. :func:`animate_forecast` renders every frame (observed, then predicted over true)
into a GIF or MP4. 3D poses are drawn Y-up (CMU world frame), 2D poses with y pointing down.
Files are written atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from pyramidpose.data.video import write_animation
from pyramidpose.skeletons import H36M, KeypointSet
from pyramidpose.utils.io import write_bytes_atomic

TRUE_COLOR = "0.55"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rgb(c: tuple[int, int, int]) -> tuple[float, float, float]:
    return (c[0] / 255, c[1] / 255, c[2] / 255)


def _limits(*arrays: np.ndarray | None) -> tuple[np.ndarray, float]:
    pts = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays if a is not None])
    center = 0.5 * (pts.min(0) + pts.max(0))
    half = 0.5 * float((pts.max(0) - pts.min(0)).max()) * 1.1 + 1e-6
    return center, half


def _draw(ax, pose: np.ndarray, kset: KeypointSet, color=None, style: str = "-", lw: float = 2.0) -> None:
    for (a, b), c in zip(kset.limbs, kset.limb_colors):
        col = color if color is not None else _rgb(c)
        if pose.shape[-1] == 3:  # Y up: plot (x, z) on the ground and y as height
            ax.plot([pose[a, 0], pose[b, 0]], [pose[a, 2], pose[b, 2]], [pose[a, 1], pose[b, 1]],
                    style, color=col, lw=lw)  # fmt: skip
        else:
            ax.plot([pose[a, 0], pose[b, 0]], [pose[a, 1], pose[b, 1]], style, color=col, lw=lw)


def _setup(ax, center: np.ndarray, half: float, dims: int) -> None:
    if dims == 3:
        ax.set_xlim(center[0] - half, center[0] + half)
        ax.set_ylim(center[2] - half, center[2] + half)
        ax.set_zlim(center[1] - half, center[1] + half)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=12, azim=-70)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
    else:
        ax.set_xlim(center[0] - half, center[0] + half)
        ax.set_ylim(center[1] + half, center[1] - half)  # image y points down
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])


def _new_ax(fig, rows: int, cols: int, i: int, dims: int):
    return fig.add_subplot(rows, cols, i, projection="3d" if dims == 3 else None)


def plot_forecast(
    observed: np.ndarray,
    predicted: np.ndarray,
    path: str | os.PathLike[str],
    fps: float,
    future: np.ndarray | None = None,
    kset: KeypointSet = H36M,
    horizons_ms: Sequence[int] = (160, 400, 1000),
    errors_mm: dict[str, np.ndarray] | None = None,
    title: str = "",
) -> None:
    """PNG: last observed pose, predicted (coloured) over true (grey, dashed) poses at horizons.

    ``errors_mm``: optional ``{method: per-future-frame error [T_out] in mm}`` drawn as curves.
    """
    plt = _plt()
    dims = observed.shape[-1]
    t_out = predicted.shape[0]
    frames = [min(t_out, max(1, round(ms * fps / 1000))) for ms in horizons_ms]
    center, half = _limits(observed[-1:], predicted, future)
    cols = 1 + len(frames) + (1 if errors_mm else 0)
    fig = plt.figure(figsize=(3.2 * cols, 3.6))
    ax = _new_ax(fig, 1, cols, 1, dims)
    _draw(ax, observed[-1], kset)
    _setup(ax, center, half, dims)
    ax.set_title(f"last observed (t=0)\n{len(observed)} frames seen", fontsize=9)
    for i, f in enumerate(frames):
        ax = _new_ax(fig, 1, cols, i + 2, dims)
        if future is not None:
            _draw(ax, future[f - 1], kset, color=TRUE_COLOR, style="--", lw=1.5)
        _draw(ax, predicted[f - 1], kset)
        _setup(ax, center, half, dims)
        ax.set_title(
            f"+{1000 * f / fps:.0f} ms" + (" (grey: true)" if future is not None else ""), fontsize=9
        )
    if errors_mm:
        ax = fig.add_subplot(1, cols, cols)
        t_ms = 1000 * np.arange(1, t_out + 1) / fps
        for name, e in errors_mm.items():
            ax.plot(t_ms, e, label=name)
        ax.set_xlabel("horizon (ms)")
        ax.set_ylabel("MPJPE (mm)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def render_frames(
    observed: np.ndarray,
    predicted: np.ndarray,
    fps: float,
    future: np.ndarray | None = None,
    kset: KeypointSet = H36M,
    size: tuple[float, float] = (4.0, 4.0),
    dpi: int = 80,
) -> list[np.ndarray]:
    """RGB frames ``[H, W, 3]`` uint8: each observed frame, then each predicted frame over the truth."""
    plt = _plt()
    dims = observed.shape[-1]
    center, half = _limits(observed, predicted, future)
    fig = plt.figure(figsize=size, dpi=dpi)
    frames = []
    n_obs = len(observed)
    for i in range(n_obs + len(predicted)):
        fig.clf()
        ax = _new_ax(fig, 1, 1, 1, dims)
        if i < n_obs:
            _draw(ax, observed[i], kset, lw=2.0)
            label = f"observed  t={1000 * (i - n_obs + 1) / fps:+.0f} ms"
        else:
            j = i - n_obs
            if future is not None:
                _draw(ax, future[j], kset, color=TRUE_COLOR, style="--", lw=1.5)
            _draw(ax, predicted[j], kset, lw=2.0)
            label = f"predicted t=+{1000 * (j + 1) / fps:.0f} ms" + (
                "  (grey: true)" if future is not None else ""
            )
        _setup(ax, center, half, dims)
        ax.set_title(label, fontsize=9)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return frames


def animate_forecast(
    observed: np.ndarray,
    predicted: np.ndarray,
    path: str | os.PathLike[str],
    fps: float,
    future: np.ndarray | None = None,
    kset: KeypointSet = H36M,
) -> None:
    """GIF or MP4 (by suffix) of the observed frames followed by predicted (and true) future frames."""
    write_animation(render_frames(observed, predicted, fps, future, kset), path, fps)
