"""Train and evaluate forecasters on CMU motion capture, through the shared trainer
(:func:`pyramidpose.training.loop.fit`, the same engine as 2D-to-3D lifting).

An experiment config (YAML) has four parts: ``data`` (:class:`ForecastDataConfig`), ``model``
(:class:`ForecasterConfig`; its ``t_in``/``t_out``/``dims``/``num_joints`` are taken from ``data``),
``trainer`` (:class:`TrainerConfig`) and a few loss/augmentation fields. The best epoch is chosen on
the validation tails of the training subjects; the test subject is evaluated once, at the end.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.forecasting.baselines import BASELINES, run_baseline
from pyramidpose.forecasting.data import ROOT_JOINT, UP_AXIS, ForecastDataConfig, build_splits
from pyramidpose.forecasting.metrics import HORIZONS_MS, horizon_mpjpe, mpjpe_per_frame
from pyramidpose.forecasting.windows import MotionWindows
from pyramidpose.models.checkpoints import load_state_dict_strict
from pyramidpose.models.forecasting import ForecasterConfig, build_forecaster
from pyramidpose.training.config import load_yaml_config
from pyramidpose.training.loop import TrainerConfig, fit
from pyramidpose.training.seeding import seed_everything
from pyramidpose.utils.io import write_json_atomic
from pyramidpose.utils.weights_io import read_weights

#: Weights-file kind of a forecaster (pyramidpose.utils.weights_io).
FORECASTER_KIND = "forecaster"

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_WEIGHTS = ASSETS / "forecaster_default.safetensors"  # 3D joints (H36M-17, meters)
DEFAULT_WEIGHTS_2D = ASSETS / "forecaster_default_2d.safetensors"  # 2D keypoints (H36M-17)


@dataclass
class ForecastExperimentConfig:
    """A forecasting experiment (see module docstring).

    Attributes:
        name: label used in result tables.
        batch_size: windows per training step.
        velocity_weight: weight of the velocity loss (siMLPe) beside the position loss.
        yaw_augment: rotate each training window by a random angle about the vertical axis (3D).
        num_threads: torch CPU threads (0 = leave torch's default); 1 is fastest for these small
            models on a busy shared CPU.
        eval_batch_size: windows per evaluation batch.
    """

    name: str = "forecast"
    data: ForecastDataConfig = field(default_factory=ForecastDataConfig)
    model: ForecasterConfig = field(default_factory=ForecasterConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    batch_size: int = 256
    velocity_weight: float = 1.0
    yaw_augment: bool = True
    num_threads: int = 1
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        d, m = self.data, self.model
        self.model = dataclasses.replace(m, t_in=d.t_in, t_out=d.t_out, dims=d.dims, num_joints=17)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


def load_experiment_config(path: str | os.PathLike[str]) -> ForecastExperimentConfig:
    """Read a forecasting experiment YAML (unknown or mistyped fields raise :class:`ConfigError`)."""
    return load_yaml_config(path, ForecastExperimentConfig)


def checkpoint_config(cfg: ForecastExperimentConfig) -> dict[str, Any]:
    """What a checkpoint's JSON needs to rebuild and use the model."""
    return {
        "name": cfg.name,
        "model": cfg.model.to_dict(),
        "data": {
            "fps": cfg.data.fps,
            "t_in": cfg.data.t_in,
            "t_out": cfg.data.t_out,
            "dims": cfg.data.dims,
            "layout": "h36m",
            "root_joint": ROOT_JOINT,
            "representation": "root-relative joints (pelvis subtracted per frame)",
            "units": "meters" if cfg.data.dims == 3 else "meters (orthographic x right, y down)",
            "train_subjects": list(cfg.data.train_subjects),
            "test_subjects": list(cfg.data.test_subjects),
        },
    }


def load_forecaster(path: str | os.PathLike[str] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a forecaster weights file; ``None`` = the embedded default. Old files (config in a JSON
    file beside the weights) load too.

    Returns the model in eval mode and its config (``model``, ``data`` sections).
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{path}: forecaster checkpoint not found.")
    w = read_weights(path, FORECASTER_KIND)
    meta, where = w.config, (path.with_suffix(".json") if w.legacy else path)
    if "model" not in meta or not isinstance(meta.get("data"), dict):
        raise CheckpointError(f"{where}: not a forecaster config (needs 'model' and 'data' sections).")
    missing = [k for k in ("fps", "t_in", "t_out", "dims") if k not in meta["data"]]
    if missing:
        raise CheckpointError(f"{where}: the 'data' section lacks {missing}; is this a forecaster checkpoint?")
    try:
        mcfg = ForecasterConfig.from_dict(meta["model"])
    except ConfigError as e:
        raise CheckpointError(f"{where}: {e}") from None
    model = build_forecaster(mcfg)
    load_state_dict_strict(model, w.state_dict, source=str(path), hint="Was it trained with a different config?")
    return model.eval(), meta


# ----------------------------------------------------------------------------- training pieces
def random_yaw(x: torch.Tensor, angles: torch.Tensor, up_axis: int = UP_AXIS) -> torch.Tensor:
    """Rotate ``[B, T, K, 3]`` poses about the vertical axis by ``angles`` [B] radians."""
    a, b = [i for i in range(3) if i != up_axis]
    c, s = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    out = x.clone()
    out[..., a] = c * x[..., a] - s * x[..., b]
    out[..., b] = s * x[..., a] + c * x[..., b]
    return out


def forecast_loss(
    pred: torch.Tensor, target: torch.Tensor, last: torch.Tensor, velocity_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean joint distance over future frames + ``velocity_weight`` x mean distance of velocities.

    Velocities include the step from the last observed pose to the first predicted one.
    """
    pred, target = pred.float(), target.float()
    pos = (pred - target).norm(dim=-1).mean()
    vp = torch.diff(torch.cat([last, pred], dim=1), dim=1)
    vt = torch.diff(torch.cat([last, target], dim=1), dim=1)
    vel = (vp - vt).norm(dim=-1).mean()
    return pos + velocity_weight * vel, {"pos_loss": float(pos.detach()), "vel_loss": float(vel.detach())}


def epoch_batches(
    windows: MotionWindows, batch_size: int, steps: int, seed: int, epoch: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` random batches (a seeded reshuffle of all windows per epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(windows))
    for i in range(steps):
        idx = order[(np.arange(batch_size) + i * batch_size) % len(order)]
        obs, fut = windows.batch(idx)
        yield torch.from_numpy(obs), torch.from_numpy(fut)


@torch.no_grad()
def predict_windows(
    model: nn.Module, observed: np.ndarray, device: torch.device | str = "cpu", batch_size: int = 1024
) -> np.ndarray:
    """Run ``model`` over ``[N, t_in, K, D]`` observed windows; returns ``[N, t_out, K, D]`` float32."""
    model.eval()
    device = torch.device(device)
    outs = []
    for i in range(0, len(observed), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(observed[i : i + batch_size], dtype=np.float32)).to(device)
        outs.append(model(x).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def error_joints(num_joints: int) -> list[int]:
    """Joints counted in MPJPE: all but the root (always exactly 0 in root-relative poses)."""
    return [j for j in range(num_joints) if j != ROOT_JOINT]


def evaluate_windows(
    windows: MotionWindows,
    model: nn.Module | None,
    fps: float,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
) -> dict[str, float]:
    """Per-horizon MPJPE (mm) of the model (when given) and of each baseline over all ``windows``.

    Keys: ``model_mm_80`` ... ``model_mm_1000``, ``zero_velocity_mm_80`` ...,
    ``constant_velocity_mm_80`` ..., plus ``*_mm_mean`` (mean over every predicted frame) and
    ``num_windows``.
    """
    obs, fut = windows.arrays()
    joints = error_joints(obs.shape[2])
    preds: dict[str, np.ndarray] = {}
    if model is not None:
        preds["model"] = predict_windows(model, obs, device, batch_size)
    for b in BASELINES:
        preds[b] = run_baseline(b, obs, fut.shape[1])
    out: dict[str, float] = {"num_windows": float(len(obs))}
    for name, p in preds.items():
        for ms, v in horizon_mpjpe(p, fut, fps, HORIZONS_MS, joints).items():
            out[f"{name}_mm_{ms}"] = round(v, 2)
        out[f"{name}_mm_mean"] = round(float(mpjpe_per_frame(p, fut, joints).mean() * 1000.0), 2)
    return out


def train_experiment(
    cfg: ForecastExperimentConfig, work_dir: str | os.PathLike[str], progress: bool = True
) -> dict[str, Any]:
    """Train one experiment into ``work_dir`` and evaluate its best checkpoint on the test subjects.

    Writes the trainer's files (``best.safetensors``/``.json``, ``metrics.csv``, ``loss_curve.png``)
    and ``test_metrics.json``; returns the test metrics (see :func:`evaluate_windows`).
    """
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    work_dir = Path(work_dir)
    splits = build_splits(cfg.data, progress=progress)
    d = cfg.data
    train = MotionWindows(splits["train"], d.t_in, d.t_out, d.train_stride)
    val = MotionWindows(splits["val"], d.t_in, d.t_out, d.eval_stride)
    test = MotionWindows(splits["test"], d.t_in, d.t_out, d.eval_stride)
    for name, w in (("training", train), ("validation", val), ("test", test)):
        if len(w) == 0:
            raise ConfigError(f"no {name} windows of {d.t_in}+{d.t_out} frames; shorten t_in/t_out")
    seed_everything(cfg.trainer.seed)  # model initialisation too, so a config reproduces its run
    model = build_forecaster(cfg.model)
    joints = error_joints(17)
    val_obs, val_fut = val.arrays()
    use_yaw = cfg.yaw_augment and d.dims == 3

    def loss_fn(m: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        obs, fut = (t.to(device) for t in batch)
        if use_yaw:
            ang = torch.rand(obs.shape[0], device=device) * (2 * math.pi)
            obs, fut = random_yaw(obs, ang), random_yaw(fut, ang)
        return forecast_loss(m(obs), fut, obs[:, -1:], cfg.velocity_weight)

    def evaluate(m: nn.Module, device: torch.device) -> dict[str, float]:
        p = predict_windows(m, val_obs, device, cfg.eval_batch_size)
        per_frame = mpjpe_per_frame(p, val_fut, joints) * 1000.0
        return {"val_mm_mean": float(per_frame.mean()), "val_mm_last": float(per_frame[-1])}

    meta = checkpoint_config(cfg)
    meta["windows"] = {"train": len(train), "val": len(val), "test": len(test)}
    fit(
        model,
        lambda epoch: epoch_batches(
            train, cfg.batch_size, cfg.trainer.steps_per_epoch, cfg.trainer.seed, epoch
        ),
        loss_fn,
        dataclasses.replace(cfg.trainer, progress=cfg.trainer.progress and progress),
        work_dir,
        evaluate=evaluate,
        monitor="val_mm_mean",
        monitor_mode="min",
        save_config=meta,
        kind=FORECASTER_KIND,
    )
    best, _ = load_forecaster(work_dir / "best.safetensors")
    metrics = evaluate_windows(test, best, d.fps, "cpu", cfg.eval_batch_size)
    metrics = {"name": cfg.name, "subjects": list(d.test_subjects), **metrics}
    write_json_atomic(work_dir / "test_metrics.json", metrics, indent=2)
    return metrics


def results_table(results: list[dict[str, Any]]) -> str:
    """Markdown table: one row per model and per baseline, one column per horizon (mm)."""

    def cell(r: dict[str, Any], key: str) -> str:
        return f"{r[key]:.1f}" if key in r else "-"

    head = "| method | " + " | ".join(f"{ms} ms" for ms in HORIZONS_MS) + " |"
    sep = "|---|" + "---:|" * len(HORIZONS_MS)
    rows = [head, sep]
    for r in results:
        rows.append(f"| {r['name']} | " + " | ".join(cell(r, f"model_mm_{ms}") for ms in HORIZONS_MS) + " |")
    if results:
        for b in BASELINES:
            cells = " | ".join(cell(results[0], f"{b}_mm_{ms}") for ms in HORIZONS_MS)
            rows.append(f"| {b.replace('_', '-')} | {cells} |")
    return "\n".join(rows) + "\n"
