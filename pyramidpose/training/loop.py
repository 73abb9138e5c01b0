"""The generic supervised training loop (2D-to-3D lifting, forecasting, other model families).

Nothing in here knows about poses: you plug in the model, a batch source, a loss and an
optional evaluation function.

API::

    cfg = training.config.load_yaml_config("configs/lift_cmu_temporal.yaml", MyExperimentConfig)
    result = fit(
        model,                       # any torch.nn.Module
        batches,                     # callable(epoch: int) -> iterable of batches for that epoch
        loss_fn,                     # callable(model, batch, device) -> (loss tensor, {name: float})
        TrainerConfig(epochs=10, lr=1e-3),
        work_dir="runs/x",
        evaluate=eval_fn,            # optional callable(model, device) -> {metric: float}
        monitor="mpjpe_mm",          # metric to select the best checkpoint (lower is better
        monitor_mode="min",          # unless "max"); falls back to the mean train loss
        save_config={"model": {...}},  # JSON-serialisable, stored in each weights file
        kind="lifter",               # the weights-file kind (utils.weights_io)
        on_step=None,                # optional callable(step: int) after every optimiser step
    )

``fit`` moves nothing to the device by itself except the model: ``loss_fn`` receives the device
and moves its batch. It uses AdamW, linear warm-up then cosine (or constant / step) LR decay,
gradient clipping, the precision of :func:`pyramidpose.utils.device.choose_precision` (``auto``: bf16
only where native), a seeded RNG, a tqdm bar, and
writes atomically into ``work_dir``:

- ``metrics.csv``: one row per epoch (epoch, step, lr, train_loss, seconds, extra loss terms,
  evaluation metrics);
- ``best.safetensors`` (config: ``save_config`` plus ``epoch``/``metrics``/``trainer``) for the best
  monitored epoch, ``last.safetensors`` for the final one, both in the one weights format of
  :mod:`pyramidpose.utils.weights_io` (config and kind in the file);
- ``loss_curve.png``: train loss per step (smoothed) and the monitored metric per epoch.

Seeding, precision, LR schedule, metric files and weights files are the shared modules the 2D
engine uses too. :func:`save_checkpoint` / :func:`load_checkpoint` write and read weights files
(a key or shape mismatch raises :class:`~pyramidpose.errors.CheckpointError` naming the keys;
files of the old layout, with a JSON file beside the weights, still load).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from pyramidpose.errors import ConfigError
from pyramidpose.models.checkpoints import load_state_dict_strict
from pyramidpose.training.metrics_log import plot_curves, write_metrics_csv
from pyramidpose.training.schedule import LRScheduler, Schedule
from pyramidpose.training.seeding import seed_everything
from pyramidpose.utils.device import (
    PRECISION_CHOICES,
    autocast_context,
    choose_precision,
    machine_summary,
    resolve_device,
)
from pyramidpose.utils.weights_io import read_weights, write_weights

__all__ = [
    "TrainerConfig",
    "TrainResult",
    "fit",
    "make_schedule",
    "save_checkpoint",
    "load_checkpoint",
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
    precision: str = "auto"  # auto (bf16 where native, else fp32; fp16+scaler on CUDA without bf16) | fp32 | bf16 | fp16
    bf16: bool | None = None  # old spelling: true -> precision auto, false -> fp32 (FutureWarning)
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    progress: bool = True  # tqdm bar
    num_threads: int = 0  # torch CPU threads (0 = torch default; 1 is fastest on a busy shared CPU)


    def __post_init__(self) -> None:
        if self.bf16 is not None:
            new = "auto" if self.bf16 else "fp32"
            warnings.warn(
                f"trainer option 'bf16: {str(self.bf16).lower()}' is deprecated; it now reads as "
                f"'precision: {new}' (bf16 only where the hardware has it natively)",
                FutureWarning,
                stacklevel=3,
            )
            self.precision, self.bf16 = new, None
        if self.precision not in PRECISION_CHOICES:
            raise ConfigError(f"precision '{self.precision}' is not one of {', '.join(PRECISION_CHOICES)}")


@dataclass
class TrainResult:
    best_metric: float
    best_epoch: int
    history: list[dict[str, float]]
    work_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path


def make_schedule(cfg: TrainerConfig, total_steps: int) -> Schedule:
    """The loop's schedule: linear warm-up from ``1 / warmup_steps`` (at most half the run), then
    constant, step (x0.1 at 2/3 of the run) or cosine (to ``min_lr_ratio``, after the warm-up)."""
    if cfg.schedule not in ("cosine", "constant", "step"):
        raise ConfigError(f"unknown schedule {cfg.schedule!r}; use cosine, constant or step")
    warm = max(0, min(cfg.warmup_steps, total_steps // 2))
    return Schedule(
        total_steps=total_steps,
        kind=cfg.schedule,
        warmup_steps=max(0, warm - 1),  # (step + 1) / warm: full rate at step warm - 1
        warmup_start=1.0 / warm if warm else 1.0,
        milestones=(2 * total_steps // 3,),
        gamma=0.1,
        min_factor=cfg.min_lr_ratio,
        decay_start=warm,
    )


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], config: dict | None = None, kind: str = "model"
) -> None:
    """Write ``model``'s weights with ``config`` and ``kind`` (:func:`~pyramidpose.utils.weights_io.write_weights`)."""
    write_weights(path, model, kind, dict(config or {}))


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str], kind: str | None = None) -> dict:
    """Load weights into ``model`` strictly; returns the file's config (also from an old file with
    its JSON beside it). Raises :class:`CheckpointError` naming missing/unexpected keys and shape
    mismatches, or when the file holds another ``kind`` of model."""
    w = read_weights(path, kind)
    load_state_dict_strict(model, w.state_dict, source=str(path), hint="Was it trained with a different config?")
    return w.config


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
    kind: str = "model",
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train ``model`` (see module doc); returns the best metric/epoch and the per-epoch history.

    ``kind`` names the model kind in the weights files; ``on_step(step)`` is called after every
    optimiser step (progress hooks; tests use it to interrupt a run)."""
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
    sched = LRScheduler(opt, make_schedule(cfg, total))
    precision = choose_precision(cfg.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)
    if cfg.progress:
        tqdm.write(f"{precision}; machine: {machine_summary()}")
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
            with autocast_context(precision):
                loss, parts = loss_fn(model, batch, device)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch} step {step}: {parts}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            n += 1
            if on_step is not None:
                on_step(step)
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
                                {**base_cfg, "epoch": epoch, "metrics": row}, kind)  # fmt: skip
        write_metrics_csv(work_dir / "metrics.csv", history)
        plot_curves(work_dir / "loss_curve.png", list(zip(step_ids, step_losses)), history, [monitor], smooth=True)
    bar.close()
    last_cfg = {**base_cfg, "epoch": cfg.epochs, "metrics": history[-1]}
    save_checkpoint(model, work_dir / "last.safetensors", last_cfg, kind)
    if best_epoch < 0:  # monitor never reported: the last epoch is the best we know
        save_checkpoint(model, work_dir / "best.safetensors", last_cfg, kind)
        best_epoch, best = cfg.epochs, float("nan")
    return TrainResult(best, best_epoch, history, work_dir, work_dir / "best.safetensors", work_dir / "last.safetensors")
