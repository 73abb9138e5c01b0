"""Metric logging shared by the trainers: ``metrics.csv`` (one row per epoch) and a curves PNG.

Both files are rewritten whole and atomically after every epoch, so a run killed at any moment
leaves complete files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.utils.io import atomic_path, write_text_atomic


def write_metrics_csv(path: str | Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] | None = None) -> None:
    """Write ``rows`` as CSV; ``fields`` fixes the columns (default: every key, in first-seen order).
    Missing and ``None`` values are empty cells."""
    if fields is None:
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r if k not in keys)
        fields = keys
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    write_text_atomic(path, buf.getvalue())


def plot_curves(
    path: str | Path,
    step_losses: Sequence[tuple[int, float]],
    rows: Sequence[dict[str, Any]],
    metrics: Sequence[str],
    *,
    epoch_loss: str | None = None,
    smooth: bool = False,
    loss_label: str = "train loss",
    metric_label: str | None = None,
) -> None:
    """Loss per logged step (left, log scale; ``smooth`` adds a moving mean, ``epoch_loss`` the
    per-epoch mean from ``rows``) and the per-epoch ``metrics`` of ``rows`` (right), as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if step_losses:
        steps, losses = (list(v) for v in zip(*step_losses))
        ax1.plot(steps, losses, lw=0.8, alpha=0.4 if smooth else 0.6, label="logged steps")
        if smooth:
            k = max(1, len(losses) // 50)
            ax1.plot(steps[k - 1 :], np.convolve(losses, np.ones(k) / k, mode="valid"), lw=1.5, label=f"mean of {k}")
    if epoch_loss is not None and rows:
        ax1.plot([r["step"] for r in rows], [r[epoch_loss] for r in rows], "o-", label="epoch mean")
    ax1.set_xlabel("optimiser step")
    ax1.set_ylabel(loss_label)
    ax1.set_yscale("log")
    if step_losses or rows:
        ax1.legend()
    ax1.set_title("training loss")
    plotted = False
    for name, marker in zip(metrics, ("o-", "s--", "^:", "d-.")):
        pts = [(r["epoch"], r[name]) for r in rows if r.get(name) is not None]
        if pts:
            e, v = zip(*pts)
            ax2.plot(e, v, marker, label=name)
            plotted = True
    if plotted:
        ax2.legend()
    else:
        ax2.text(0.5, 0.5, "no validation run", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(metric_label or ", ".join(metrics))
    ax2.set_title("validation")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
