"""A small generic supervised trainer (used for 2D-to-3D lifting and for forecasting).

Nothing in here knows about poses: you plug in the model, a batch source, a loss and an
optional evaluation function.

API::

    cfg = load_yaml_config("configs/lift_cmu_temporal.yaml", MyExperimentConfig)  # typed dataclass
    result = fit(
        model,                       # any torch.nn.Module
        batches,                     # callable(epoch: int) -> iterable of batches for that epoch
        loss_fn,                     # callable(model, batch, device) -> (loss tensor, {name: float})
        TrainerConfig(epochs=10, lr=1e-3),
        work_dir="runs/x",
        evaluate=eval_fn,            # optional callable(model, device) -> {metric: float}
        monitor="mpjpe_mm",          # metric to select the best checkpoint (lower is better
        monitor_mode="min",          # unless "max"); falls back to the mean train loss
        save_config={"model": {...}},  # JSON-serialisable, written beside each checkpoint
    )

``fit`` moves nothing to the device by itself except the model: ``loss_fn`` receives the device
and moves its batch. It uses AdamW, linear warm-up then cosine (or constant / step) LR decay,
gradient clipping, optional bf16 autocast (CPU with AMX and CUDA), a seeded RNG, a tqdm bar, and
writes atomically into ``work_dir``:

- ``metrics.csv``: one row per epoch (epoch, step, lr, train_loss, seconds, extra loss terms,
  evaluation metrics);
- ``best.safetensors`` + ``best.json`` (``save_config`` plus ``epoch``/``metrics``/``trainer``)
  for the best monitored epoch, ``last.safetensors`` + ``last.json`` for the final one;
- ``loss_curve.png``: train loss per step (smoothed) and the monitored metric per epoch.

:func:`save_checkpoint` / :func:`load_checkpoint` read and write those files (a key or shape
mismatch raises :class:`~pyramidpose.errors.CheckpointError` naming the keys).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.training.config import dataclass_from_dict, load_yaml_config  # re-exported (shared loaders)
from pyramidpose.utils.io import atomic_path, write_json_atomic, write_text_atomic

__all__ = [
    "TrainerConfig",
    "TrainResult",
    "fit",
    "make_lr_lambda",
    "resolve_device",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
    "dataclass_from_dict",
    "load_yaml_config",
]


@dataclass
class TrainerConfig:
    """Optimisation settings shared by every task using :func:`fit`."""

    epochs: int = 10
    steps_per_epoch: int = 200  # batches per epoch (the batch source may end earlier)
    lr: float = 1e-3
    min_lr_ratio: float = 0.01  # final LR = lr * min_lr_ratio (cosine)
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    schedule: str = "cosine"  # "cosine" | "constant" | "step" (x0.1 at 2/3 of training)
    grad_clip: float = 1.0  # max gradient norm; 0 disables
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    bf16: bool = True  # bf16 autocast (CPU AMX / CUDA); fp32 master weights
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    progress: bool = True  # tqdm bar
    num_threads: int = 0  # torch CPU threads (0 = torch default; 1 is fastest on a busy shared CPU)


@dataclass
class TrainResult:
    best_metric: float
    best_epoch: int
    history: list[dict[str, float]]
    work_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - legacy global RNG used by some user code
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_lr_lambda(cfg: TrainerConfig, total_steps: int) -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up, then the chosen schedule."""
    warm = max(0, min(cfg.warmup_steps, total_steps // 2))

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return 1.0 if step < 2 * total_steps // 3 else 0.1
        if cfg.schedule != "cosine":
            raise ConfigError(f"unknown schedule {cfg.schedule!r}; use cosine, constant or step")
        p = min(1.0, (step - warm) / max(1, total_steps - warm))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return f


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str], config: dict | None = None) -> None:
    """Write ``model``'s state dict as safetensors at ``path`` and ``config`` as JSON beside it
    (same name, ``.json``), both atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    if config is not None:
        write_json_atomic(path.with_suffix(".json"), config, indent=2)


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> dict:
    """Load safetensors weights into ``model`` strictly; returns the JSON config beside it (or {}).

    Raises :class:`CheckpointError` naming missing/unexpected keys and shape mismatches.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found.")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}).") from None
    from pyramidpose.models.checkpoints import load_state_dict_strict

    load_state_dict_strict(model, state, source=str(path), hint="Was it trained with a different config?")
    cfg_path = path.with_suffix(".json")
    if cfg_path.is_file():
        try:
            return json.loads(cfg_path.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{cfg_path}: invalid JSON ({e}).") from None
    return {}


def _plot_curves(path: Path, steps: list[int], losses: list[float], history: list[dict], monitor: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if losses:
        k = max(1, len(losses) // 50)
        sm = np.convolve(losses, np.ones(k) / k, mode="valid")
        axes[0].plot(steps, losses, alpha=0.3, lw=0.8, label="step")
        axes[0].plot(steps[k - 1 :], sm, lw=1.5, label=f"mean of {k}")
        axes[0].set_yscale("log")
        axes[0].legend()
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("train loss")
    ep = [h["epoch"] for h in history if monitor in h]
    val = [h[monitor] for h in history if monitor in h]
    axes[1].plot(ep, val, "o-")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel(monitor)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    from pyramidpose.utils.io import write_bytes_atomic

    write_bytes_atomic(path, buf.getvalue())


def fit(
    model: nn.Module,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[nn.Module, Any, torch.device], tuple[torch.Tensor, dict[str, float]]],
    cfg: TrainerConfig,
    work_dir: str | os.PathLike[str],
    *,
    evaluate: Callable[[nn.Module, torch.device], dict[str, float]] | None = None,
    monitor: str = "train_loss",
    monitor_mode: str = "min",
    save_config: dict | None = None,
) -> TrainResult:
    """Train ``model`` (see module doc); returns the best metric/epoch and the per-epoch history."""
    from tqdm import tqdm

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    model.to(device)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or n.endswith(".bias") else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    total = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, make_lr_lambda(cfg, total))
    use_bf16 = cfg.bf16 and device.type in ("cpu", "cuda")
    history: list[dict[str, float]] = []
    step_ids: list[int] = []
    step_losses: list[float] = []
    best = math.inf if monitor_mode == "min" else -math.inf
    best_epoch = -1
    step = 0
    base_cfg = dict(save_config or {})
    base_cfg["trainer"] = dataclasses.asdict(cfg)
    bar = tqdm(total=total, desc=work_dir.name, disable=not cfg.progress, dynamic_ncols=True)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.time()
        sums: dict[str, float] = {}
        n = 0
        for i, batch in enumerate(batches(epoch)):
            if i >= cfg.steps_per_epoch:
                break
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, parts = loss_fn(model, batch, device)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch} step {step}: {parts}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            n += 1
            lv = float(loss.detach())
            step_ids.append(step)
            step_losses.append(lv)
            sums["train_loss"] = sums.get("train_loss", 0.0) + lv
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{lv:.4g}")
        row: dict[str, float] = {"epoch": epoch, "step": step, "lr": opt.param_groups[0]["lr"]}
        row.update({k: v / max(1, n) for k, v in sums.items()})
        if evaluate is not None and (epoch % max(1, cfg.eval_every) == 0 or epoch == cfg.epochs):
            model.eval()
            with torch.no_grad():
                row.update({k: float(v) for k, v in evaluate(model, device).items()})
            model.train()
        row["seconds"] = time.time() - t0
        history.append(row)
        if monitor in row:
            val = row[monitor]
            if (val < best) if monitor_mode == "min" else (val > best):
                best, best_epoch = val, epoch
                save_checkpoint(model, work_dir / "best.safetensors",
                                {**base_cfg, "epoch": epoch, "metrics": row})  # fmt: skip
        _write_csv(work_dir / "metrics.csv", history)
        _plot_curves(work_dir / "loss_curve.png", step_ids, step_losses, history, monitor)
    bar.close()
    save_checkpoint(model, work_dir / "last.safetensors", {**base_cfg, "epoch": cfg.epochs, "metrics": history[-1]})
    if best_epoch < 0:  # monitor never reported: the last epoch is the best we know
        save_checkpoint(model, work_dir / "best.safetensors", {**base_cfg, "epoch": cfg.epochs, "metrics": history[-1]})
        best_epoch, best = cfg.epochs, float("nan")
    return TrainResult(best, best_epoch, history, work_dir, work_dir / "best.safetensors", work_dir / "last.safetensors")


def _write_csv(path: Path, history: list[dict[str, float]]) -> None:
    keys: list[str] = []
    for h in history:
        keys.extend(k for k in h if k not in keys)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for h in history:
        w.writerow(h)
    write_text_atomic(path, buf.getvalue())
