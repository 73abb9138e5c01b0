"""Lifting experiments on CMU mocap: config, training (supervised or multi-view weak), evaluation,
baselines and the comparison table.

Protocol (fixed): train on CMU subjects 01 and 02 (trial ``val_trials`` held out for model
selection), test on subject 03; all at ``fps`` (30) with virtual cameras
(:mod:`pyramidpose.lifting.data`); the test set uses ``eval_seed`` and ``eval_cameras_per_seq``
static cameras per trial. Metrics are root-relative (pelvis) H36M-17 in the camera frame, in mm.

Entry points: :func:`train_lifter` (one config -> checkpoint dir), :func:`evaluate_model`,
:func:`baseline_metrics` (mean training pose, nearest neighbour by normalised 2D),
:func:`load_lifter` (checkpoint -> model).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyramidpose.errors import CheckpointError, ConfigError, DataError
from pyramidpose.evaluation.metrics3d import mpjpe, n_mpjpe, p_mpjpe, pck3d
from pyramidpose.lifting.data import (
    EvalSequence,
    MocapSequence,
    VirtualCameraConfig,
    load_cmu_subjects,
    make_eval_set,
    sample_multiview,
    sample_pairs,
)
from pyramidpose.lifting.multiview import multiview_consistency_loss
from pyramidpose.models.checkpoints import load_state_dict_strict
from pyramidpose.models.lifting import LifterConfig, TemporalLifter, build_lifter
from pyramidpose.paths import cmu_mocap_root
from pyramidpose.training.loop import TrainerConfig, TrainResult, fit
from pyramidpose.utils.weights_io import read_weights

__all__ = [
    "LiftDataConfig",
    "MultiviewConfig",
    "LiftExperimentConfig",
    "default_cmu_root",
    "LiftData",
    "load_lift_data",
    "train_lifter",
    "evaluate_model",
    "predict_sequences",
    "baseline_metrics",
    "load_lifter",
]


#: Weights-file kind of a lifter (pyramidpose.utils.weights_io).
LIFTER_KIND = "lifter"


def default_cmu_root() -> str:
    """The CMU mocap directory under the data root (:func:`pyramidpose.paths.cmu_mocap_root`)."""
    return str(cmu_mocap_root())


@dataclass
class LiftDataConfig:
    root: str = ""  # empty -> default_cmu_root()
    train_subjects: list[str] = field(default_factory=lambda: ["01", "02"])
    test_subjects: list[str] = field(default_factory=lambda: ["03"])
    val_trials: list[str] = field(default_factory=lambda: ["01_14"])
    fps: float = 30.0
    batch_size: int = 256
    eval_seed: int = 0
    eval_cameras_per_seq: int = 4
    train_camera: VirtualCameraConfig = field(default_factory=lambda: VirtualCameraConfig(noise_px=3.0))
    eval_camera: VirtualCameraConfig = field(default_factory=VirtualCameraConfig)


@dataclass
class MultiviewConfig:
    num_views: int = 2
    self_weight: float = 1.0
    scale_weight: float = 0.1
    ref_bone: list[int] = field(default_factory=lambda: [0, 8])  # pelvis -> thorax


@dataclass
class LiftExperimentConfig:
    """One lifting run. ``mode``: ``supervised`` (3D labels) or ``multiview`` (2D views only)."""

    name: str = "lift"
    mode: str = "supervised"
    model: LifterConfig = field(default_factory=LifterConfig)
    data: LiftDataConfig = field(default_factory=LiftDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    multiview: MultiviewConfig = field(default_factory=MultiviewConfig)


@dataclass
class LiftData:
    train: list[MocapSequence]
    val: list[MocapSequence]
    test: list[MocapSequence]


_DATA_CACHE: dict[tuple, LiftData] = {}


def load_lift_data(cfg: LiftDataConfig, progress: bool = True) -> LiftData:
    """Parse the CMU trials for the split (cached per process)."""
    root = cfg.root or default_cmu_root()
    key = (root, tuple(cfg.train_subjects), tuple(cfg.test_subjects), tuple(cfg.val_trials), cfg.fps)
    if key not in _DATA_CACHE:
        if not Path(root).is_dir():
            raise DataError(
                f"CMU mocap not found at {root}. Set data.root in the config to the cmu-mocap directory "
                "(subjects/01/01.asf ...) or PYRAMIDPOSE_DATA to the directory holding it."
            )
        seqs = load_cmu_subjects(root, cfg.train_subjects, cfg.fps, progress)
        train = [s for s in seqs if s.name not in cfg.val_trials]
        val = [s for s in seqs if s.name in cfg.val_trials]
        test = load_cmu_subjects(root, cfg.test_subjects, cfg.fps, progress)
        if not train or not test:
            raise DataError(f"{root}: no training or test trials found for {key[1]} / {key[2]}")
        _DATA_CACHE[key] = LiftData(train, val, test)
    return _DATA_CACHE[key]


def _window(model_cfg: LifterConfig) -> int:
    return model_cfg.receptive_field if model_cfg.kind == "temporal" else 1


def _forward_train(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(model, TemporalLifter):
        return model.forward_window(x)
    return model(x)


@torch.no_grad()
def predict_sequences(model: torch.nn.Module, seqs: list[EvalSequence], device: torch.device,
                      batch: int = 4096) -> list[np.ndarray]:
    """Root-relative 3D ``[F, 17, 3]`` for each eval sequence (temporal models see the whole
    sequence, padded at the ends; single-frame models each frame)."""
    model.eval()
    out = []
    for s in seqs:
        x = torch.as_tensor(s.x2d, device=device)
        if isinstance(model, TemporalLifter):
            y = model.lift_sequence(x)
        else:
            y = torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])
        out.append(y.float().cpu().numpy())
    return out


def _metrics(preds: list[np.ndarray], gts: list[np.ndarray], prefix: str = "") -> dict[str, float]:
    p = np.concatenate(preds).astype(np.float64)
    g = np.concatenate(gts).astype(np.float64)
    return {
        f"{prefix}mpjpe_mm": float(mpjpe(p, g)) * 1000,
        f"{prefix}p_mpjpe_mm": float(p_mpjpe(p, g)) * 1000,
        f"{prefix}n_mpjpe_mm": float(n_mpjpe(p, g)) * 1000,
        f"{prefix}pck150": float(pck3d(p, g, 0.15)),
    }


def evaluate_model(model: torch.nn.Module, seqs: list[EvalSequence], device: torch.device | str = "cpu",
                   prefix: str = "") -> dict[str, float]:
    """MPJPE / P-MPJPE / N-MPJPE (mm) and PCK@150mm over all frames of ``seqs``."""
    device = torch.device(device)
    model.to(device)
    return _metrics(predict_sequences(model, seqs, device), [s.y3d for s in seqs], prefix)


def _normalised_2d(x: np.ndarray) -> np.ndarray:
    """COCO 2D ``[N, 17, 2]`` centred on the hip midpoint and scaled to unit RMS radius."""
    c = x[:, [11, 12]].mean(1, keepdims=True)
    d = x - c
    s = np.sqrt((d**2).sum(-1).mean(-1))[:, None, None] + 1e-8
    return (d / s).reshape(len(x), -1)


def baseline_metrics(data: LiftData, cfg: LiftDataConfig, test: list[EvalSequence], *,
                     bank_size: int = 100_000, seed: int = 1) -> dict[str, float]:
    """Two baselines from ``bank_size`` training pairs (training subjects, random virtual cameras):
    the mean training pose (root-relative, camera frame), and the 3D pose of the nearest training
    sample by hip-centred, RMS-scaled 2D."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(0, bank_size, 5000):
        b = sample_pairs(data.train, rng, 5000, cfg.train_camera)
        xs.append(b["x2d"])
        ys.append(b["y3d"])
    bank_x, bank_y = np.concatenate(xs)[:bank_size], np.concatenate(ys)[:bank_size]
    mean_pose = bank_y.mean(0)
    gts = [s.y3d for s in test]
    out = _metrics([np.broadcast_to(mean_pose, s.y3d.shape) for s in test], gts, "mean_pose_")
    bx = torch.as_tensor(_normalised_2d(bank_x))
    preds = []
    for s in test:
        q = torch.as_tensor(_normalised_2d(s.x2d))
        idx = torch.cat([torch.cdist(q[i : i + 512], bx).argmin(1) for i in range(0, len(q), 512)])
        preds.append(bank_y[idx.numpy()])
    out.update(_metrics(preds, gts, "nearest_neighbour_"))
    return out


def train_lifter(cfg: LiftExperimentConfig, work_dir: str | os.PathLike[str], progress: bool = True) -> TrainResult:
    """Train one lifter (supervised or multi-view weak) and write ``work_dir`` (see
    :func:`pyramidpose.training.loop.fit`). Model selection: lowest MPJPE on the
    validation trials (training subjects, held out), never on the test subject."""
    if cfg.mode not in ("supervised", "multiview"):
        raise ConfigError(f"unknown mode {cfg.mode!r}; use 'supervised' or 'multiview'")
    if cfg.mode == "multiview" and cfg.model.kind != "mlp":
        raise ConfigError("mode 'multiview' trains a single-frame model: set model.kind to 'mlp'")
    data = load_lift_data(cfg.data, progress)
    model = build_lifter(cfg.model)
    window = _window(cfg.model)
    dcfg = cfg.data
    val_set = make_eval_set(data.val or data.train[:1], dcfg.eval_camera, seed=dcfg.eval_seed + 1000,
                            cameras_per_seq=2)  # fmt: skip
    width = float(dcfg.train_camera.image_size[0])

    def batches(epoch: int):
        rng = np.random.default_rng([cfg.trainer.seed, epoch])
        for _ in range(cfg.trainer.steps_per_epoch):
            if cfg.mode == "multiview":
                yield sample_multiview(data.train, rng, dcfg.batch_size, dcfg.train_camera, cfg.multiview.num_views)
            else:
                yield sample_pairs(data.train, rng, dcfg.batch_size, dcfg.train_camera, window, cfg.model.causal)

    def loss_fn(model: torch.nn.Module, batch: dict[str, Any], device: torch.device):
        if cfg.mode == "multiview":
            x = torch.as_tensor(batch["x2d"], device=device)
            B, V = x.shape[:2]
            pred = _forward_train(model, x.reshape(B * V, *x.shape[2:])).reshape(B, V, -1, 3)
            return multiview_consistency_loss(
                pred, *(torch.as_tensor(batch[k], device=device) for k in ("obs2d", "K", "R", "t")),
                width, root=cfg.model.root_index, ref_bone=tuple(cfg.multiview.ref_bone),
                self_weight=cfg.multiview.self_weight, scale_weight=cfg.multiview.scale_weight,
            )  # fmt: skip
        x = torch.as_tensor(batch["x2d"], device=device)
        y = torch.as_tensor(batch["y3d"], device=device)
        pred = _forward_train(model, x).float()
        loss = (pred - y).norm(dim=-1).mean()  # MPJPE loss (meters)
        return loss, {}

    def evaluate(model: torch.nn.Module, device: torch.device) -> dict[str, float]:
        return evaluate_model(model, val_set, device, prefix="val_")

    save = {"model": cfg.model.to_dict(), "experiment": asdict(cfg), "fps": dcfg.fps,
            "image_size": list(dcfg.train_camera.image_size)}  # fmt: skip
    return fit(model, batches, loss_fn, cfg.trainer, work_dir, evaluate=evaluate, monitor="val_mpjpe_mm",
               save_config=save, kind=LIFTER_KIND)  # fmt: skip


def load_lifter(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict]:
    """Build the lifter a weights file describes and load its weights (eval mode); returns the model
    and the file's config. Old files (config in a JSON file beside the weights) load too."""
    w = read_weights(path, LIFTER_KIND)
    model_cfg = w.config.get("model")
    if not isinstance(model_cfg, dict):
        raise CheckpointError(f"{path}: not a lifter config (needs a 'model' entry)")
    model = build_lifter(model_cfg)
    load_state_dict_strict(model, w.state_dict, source=str(path), hint="Was it trained with a different config?")
    model.eval()
    return model, w.config
