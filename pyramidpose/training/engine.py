"""The 2D training loop: COCO top-down training with ViTPose's recipe, AMP, DDP and exact resume.

:func:`train` is the entry point (``pyramidpose train`` and ``pyramidpose ablate`` call it). Launched
by ``torchrun`` it runs data-parallel: every process trains on its share of each global batch
(:class:`~pyramidpose.data.coco.ResumableDistributedSampler`), gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel`, validation predictions of all ranks are gathered
before COCO AP is computed, and only rank 0 logs and writes files.

``WORK_DIR`` receives: ``config.yaml`` (the resolved config), ``metrics.csv`` (one row per epoch:
epoch, step, lr, loss, val AP/AR when evaluated, images/s), ``checkpoints/last.pt`` (resumable
state), ``model_last.safetensors``, ``model_best.safetensors`` (best val AP) and
``model_epoch_N.safetensors`` (every ``checkpoint.interval`` epochs) that ``pyramidpose.load_model``
reads, ``curves.png`` (loss and AP curves), ``train.log`` and TensorBoard events when available.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from pyramidpose.data.coco import CocoKeypointDataset, ResumableDistributedSampler
from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.models.checkpoints import load_backbone_weights, load_state_dict_strict, read_checkpoint
from pyramidpose.models.pose_model import PoseModel, PoseOutput
from pyramidpose.models.vit import resize_pos_embed, token_grid
from pyramidpose.training import distill
from pyramidpose.training.checkpoint import (
    LAST,
    capture_rng_state,
    export_model,
    load_training_state,
    restore_rng_state,
    save_training_state,
)
from pyramidpose.training.config import Config, config_from_dict, load_config
from pyramidpose.training.datasets import check_data_paths, collate, make_dataset
from pyramidpose.training.distill import install_token, load_token
from pyramidpose.training.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_mean,
    barrier,
    init_distributed,
    shutdown,
)
from pyramidpose.training.losses import KeypointMSELoss
from pyramidpose.training.metrics_log import plot_curves, write_metrics_csv
from pyramidpose.training.optim import ModelEMA, build_optimizer
from pyramidpose.training.schedule import LRScheduler, vitpose_schedule
from pyramidpose.training.seeding import seed_everything
from pyramidpose.training.validation import validate
from pyramidpose.utils.device import (
    Precision,
    autocast_context,
    choose_precision,
    machine_summary,
)
from pyramidpose.utils.io import write_text_atomic

METRIC_FIELDS = [
    "epoch", "step", "lr", "loss", "val_AP", "val_AP50", "val_AP75", "val_AR",
    "images_per_s", "epoch_time_s", "skipped",
]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def build_model(cfg: Config) -> PoseModel:
    """The untrained model of ``cfg.model`` (a copy of the config: the model may change its own);
    with ``distill.knowledge_token`` the backbone gets the token slot."""
    mcfg = copy.deepcopy(cfg.model)
    if cfg.distill.knowledge_token:
        mcfg = dataclasses.replace(mcfg, knowledge_token=True)
    return PoseModel(mcfg)


def init_weights(model: nn.Module, cfg: Config, log: Any = print) -> None:
    """Initialise from ``init.pretrained`` (full checkpoint) and/or ``init.backbone_pretrained``."""
    if cfg.init.pretrained:
        sd, src_cfg, fmt = read_checkpoint(cfg.init.pretrained)
        sd = dict(sd)
        own = model.state_dict()
        pos = sd.get("backbone.pos_embed")
        if pos is not None and pos.shape != own["backbone.pos_embed"].shape:
            sd["backbone.pos_embed"] = resize_pos_embed(
                pos, token_grid(src_cfg.input_size, src_cfg.patch_ratio), tuple(model.backbone.grid)
            )
        dropped = [k for k, v in sd.items() if k.startswith("head.") and k in own and v.shape != own[k].shape]
        for k in dropped:  # another keypoint count: keep the fresh final layer
            sd[k] = own[k]
        load_state_dict_strict(model, sd, source=f"{cfg.init.pretrained} ({fmt} format)")
        log(f"initialised from {cfg.init.pretrained} ({fmt})" + (f"; re-initialised {dropped}" if dropped else ""))
    if cfg.init.backbone_pretrained:
        rep = load_backbone_weights(model, cfg.init.backbone_pretrained)
        log(
            f"backbone from {cfg.init.backbone_pretrained}: {len(rep['loaded'])} tensors loaded, "
            f"{len(rep['missing'])} missing"
        )


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def _fork_safe_opencv(num_workers: int) -> None:
    """Make OpenCV single-threaded in this (parent) process before DataLoader workers are forked.

    A forked worker inherits OpenCV's thread-pool state but not its threads: using or resizing the pool
    there (``cv2.setNumThreads``, a parallel ``warpAffine``) can deadlock. Shrinking the pool must
    happen in the parent, where its threads exist and can be joined.
    """
    if num_workers > 0:
        import cv2

        cv2.setNumThreads(1)


class TrainingForward(nn.Module):
    """Runs ``model.forward_train`` as its ``forward``, so that DistributedDataParallel's hooks see
    the training pass (heatmaps + auxiliary maps) while ``model.forward`` stays heatmaps-only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> PoseOutput:
        return self.model.forward_train(x)


# --------------------------------------------------------------------------------------------------
# Logging helpers
# --------------------------------------------------------------------------------------------------


class _Logger:
    """Rank-0 console + ``train.log`` + optional TensorBoard."""

    def __init__(self, work_dir: Path, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.file = open(work_dir / "train.log", "a", encoding="utf-8") if enabled else None  # noqa: SIM115
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(work_dir / "tensorboard"))
            except Exception:  # noqa: BLE001 - tensorboard is optional
                self.tb = None

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        tqdm.write(msg, file=sys.stderr)
        assert self.file is not None
        self.file.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}\n")
        self.file.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.tb is not None:
            self.tb.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def train(
    config: Config | str | Path | None,
    work_dir: str | Path,
    max_steps: int | None = None,
    resume: str | Path | None = None,
    seed: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train a 2D pose model; returns the final metrics (on every rank; AP only on rank 0).

    Args:
        config: a :class:`Config` or a YAML path.
        work_dir: output directory (created).
        max_steps: stop after this many optimiser steps in total (counting the steps of a resumed run).
        resume: a previous work directory (or its ``checkpoints/last.pt``) to continue from exactly.
        seed: overrides ``train.seed``.
        on_step: called with the step number after every optimiser step (and after a checkpoint of
            that step); progress hooks, and the crash-resume test kills the process from it.

    Returns:
        ``{"epoch", "step", "loss", "lr", "AP", "AP50", "AP75", "AR", "best_AP", "wall_time_s",
        "images_per_s", "skipped", "model_path", "work_dir"}`` (AP keys are ``None`` without validation).
    """
    resume_state = load_training_state(resume) if resume is not None else None
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif config is None:
        if resume_state is None:
            raise ConfigError("train() needs a config (or resume= a work directory holding one)")
        cfg = config_from_dict(resume_state["config"])
    else:
        cfg = load_config(config)
    if seed is not None:
        cfg.train.seed = int(seed)
    paths = check_data_paths(cfg)  # before any process group or model: a bad path fails fast
    info = init_distributed(cfg.train.device)
    precision = choose_precision(cfg.train.amp, info.device)  # fp16 on CPU fails before any work
    threads = torch.get_num_threads()
    t_start = time.time()
    try:
        run = _Run.start(cfg, Path(work_dir), paths, info, precision, max_steps, resume_state)
        while run.epoch < cfg.train.epochs and run.step < run.limit:
            run.end_epoch(*run.train_epoch(on_step))
        return run.finish(t_start)
    finally:
        torch.set_num_threads(threads)  # train.threads must not leak into the caller
        shutdown(info)


@dataclass
class _EpochStats:
    """What one (possibly partial) pass over the training batches measured on this rank."""

    loss_sum: float = 0.0
    batches: int = 0
    images: int = 0
    seconds: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)
    complete: bool = True


@dataclass
class _Run:
    """The state of one training run and its steps: :meth:`start`, then :meth:`train_epoch` and
    :meth:`end_epoch` per epoch, then :meth:`finish`. Only rank 0 writes files."""

    cfg: Config
    work_dir: Path
    info: DistInfo
    precision: Precision
    log: _Logger
    model: PoseModel
    net: nn.Module  # TrainingForward(model), wrapped in DDP when distributed
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    criterion: Any  # KeypointMSELoss, or the coordinate codec's loss (SIKR: L1, SimCC: KL)
    sampler: ResumableDistributedSampler
    train_ds: CocoKeypointDataset
    val_ds: CocoKeypointDataset | None
    limit: int
    hm_teacher: Any = None  # distillation: a heatmap teacher (training/distill.py), or None
    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    step_losses: list[tuple[int, float]] = field(default_factory=list)
    best_ap: float = -1.0
    total_images: int = 0
    total_seconds: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ setup
    @classmethod
    def start(
        cls,
        cfg: Config,
        work_dir: Path,
        paths: dict[str, Path | None],
        info: DistInfo,
        precision: Precision,
        max_steps: int | None,
        resume_state: dict[str, Any] | None,
    ) -> _Run:
        """Directories, logger, datasets, model, optimiser and schedule; restores a resumed state."""
        if info.is_main:
            work_dir.mkdir(parents=True, exist_ok=True)
            (work_dir / "checkpoints").mkdir(exist_ok=True)
            write_text_atomic(work_dir / "config.yaml", cfg.to_yaml())
        barrier(info)
        log = _Logger(work_dir, info.is_main, cfg.train.tensorboard)
        if cfg.train.threads:
            torch.set_num_threads(int(cfg.train.threads))
        train_ds, val_ds = _datasets(cfg, paths, info, log)
        hm_teacher = _teacher(cfg, train_ds, info, log)
        log(f"{precision} [train.amp={cfg.train.amp}]; machine: {machine_summary()}")
        model, net = _model_for_training(cfg, info, log)
        optimizer = build_optimizer(model, cfg.optim)
        sampler = ResumableDistributedSampler(
            len(train_ds), cfg.train.batch_size, info.world_size, info.rank, cfg.train.seed,
            accumulate=cfg.optim.accumulate_steps, repeat=cfg.data.repeat,
        )  # fmt: skip
        steps_per_epoch = sampler.batches_per_epoch // cfg.optim.accumulate_steps
        scheduler = LRScheduler(optimizer, vitpose_schedule(cfg.optim, steps_per_epoch, cfg.train.epochs))
        total_steps = steps_per_epoch * cfg.train.epochs
        run = cls(
            cfg=cfg, work_dir=work_dir, info=info, precision=precision, log=log, model=model, net=net,
            optimizer=optimizer, scheduler=scheduler,
            scaler=torch.amp.GradScaler(info.device.type, enabled=precision.use_grad_scaler),
            ema=ModelEMA(model, cfg.optim.ema_decay) if cfg.optim.ema else None,
            criterion=train_ds.target_codec.loss if train_ds.target_codec is not None else KeypointMSELoss(
                cfg.loss.use_target_weight, cfg.loss.ohkm, cfg.loss.ohkm_topk, cfg.loss.loss_weight
            ),
            sampler=sampler, train_ds=train_ds, val_ds=val_ds, hm_teacher=hm_teacher,
            limit=min(total_steps, max_steps) if max_steps is not None else total_steps,
        )  # fmt: skip
        seed_everything(cfg.train.seed + 1000 * info.rank + 1)
        if resume_state is not None:
            run.restore(resume_state)
        _fork_safe_opencv(cfg.data.num_workers)
        return run

    def restore(self, s: dict[str, Any]) -> None:
        """Continue exactly from a state written by :meth:`save` (weights, optimiser, RNGs...)."""
        if s.get("world_size", 1) != self.info.world_size:
            self.log(f"note: resuming a {s.get('world_size', 1)}-process run with {self.info.world_size} processes")
        try:
            self.model.load_state_dict(s["model"])
            self.optimizer.load_state_dict(s["optimizer"])
        except (RuntimeError, ValueError) as exc:
            raise CheckpointError(f"the resumed checkpoint does not match this config's model: {exc}") from None
        self.scheduler.load_state_dict(s["schedule"])
        if s.get("scaler"):
            self.scaler.load_state_dict(s["scaler"])
        if self.ema is not None and s.get("ema"):
            self.ema.load_state_dict(s["ema"])
        self.epoch, self.step, self.batch_in_epoch = int(s["epoch"]), int(s["step"]), int(s["batch_in_epoch"])
        self.rows = list(s.get("history", []))
        self.step_losses = [(int(a), float(b)) for a, b in s.get("step_losses", [])]
        self.best_ap = float(s.get("best_ap", -1.0))
        rngs = s["rng"]
        restore_rng_state(rngs[self.info.rank] if self.info.rank < len(rngs) else rngs[0])
        self.log(f"resumed from epoch {self.epoch}, step {self.step} (batch {self.batch_in_epoch} of the epoch)")

    # ------------------------------------------------------------------ training
    def train_epoch(self, on_step: Callable[[int], None] | None) -> tuple[_EpochStats, int]:
        """Run the rest of the current epoch (or up to the step limit); returns the statistics and
        the epoch number shown in reports (1-based)."""
        cfg, info = self.cfg, self.info
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_start(self.batch_in_epoch)
        loader = DataLoader(
            self.train_ds, batch_size=cfg.train.batch_size, sampler=self.sampler,
            num_workers=cfg.data.num_workers, collate_fn=collate, pin_memory=info.device.type == "cuda",
            drop_last=False, worker_init_fn=_worker_init if cfg.data.num_workers else None,
            generator=torch.Generator().manual_seed(cfg.train.seed),
        )  # fmt: skip
        self.net.train()
        stats = _EpochStats()
        bar = tqdm(
            total=self.sampler.batches_per_epoch, initial=self.batch_in_epoch,
            desc=f"epoch {self.epoch + 1}/{cfg.train.epochs}", disable=not info.is_main, leave=False,
            dynamic_ncols=True,
        )  # fmt: skip
        t0 = time.time()
        for batch in loader:
            loss = self._forward_backward(batch, stats)
            bar.update(1)
            if self.batch_in_epoch % cfg.optim.accumulate_steps:
                continue  # gradients accumulate until the last micro-batch of the step
            self._optimizer_step()
            self._log_step(loss, bar)
            mid_epoch = self.batch_in_epoch < self.sampler.batches_per_epoch
            every = cfg.checkpoint.save_every_steps
            if every and self.step % every == 0 and mid_epoch:
                self.save()
            if on_step is not None:
                on_step(self.step)
            if self.step >= self.limit and mid_epoch:
                stats.complete = False
                break
        bar.close()
        stats.seconds = time.time() - t0
        shown = self.epoch + 1
        if stats.complete:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        return stats, shown

    def _forward_backward(self, batch: dict[str, Any], stats: _EpochStats) -> torch.Tensor:
        """Loss of one micro-batch (heatmaps + auxiliary maps) and its scaled backward pass."""
        for ok, err in zip(batch["valid"].tolist(), batch["error"]):
            if not ok:
                stats.skipped[err] += 1
        device = self.info.device
        img = batch["image"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        weight = batch["target_weight"].to(device, non_blocking=True)
        accum = self.cfg.optim.accumulate_steps
        sync_now = (self.batch_in_epoch + 1) % accum == 0
        no_sync = self.info.distributed and not sync_now
        with self.net.no_sync() if no_sync else contextlib.nullcontext():  # type: ignore[operator]
            with autocast_context(self.precision):
                out = self.net(img)
            loss = self.criterion(out.heatmaps.float(), target, weight)
            if "teacher_target" in batch or self.hm_teacher is not None:
                loss = self._distill_loss(loss, batch, img, out.heatmaps)
            aux = self.model.aux_loss(out, target, weight)
            if aux is not None:
                loss = loss + aux.float()
            self.scaler.scale(loss / accum).backward()
        self.batch_in_epoch += 1
        stats.loss_sum += float(loss.detach())
        stats.batches += 1
        stats.images += img.shape[0]
        return loss

    def _distill_loss(
        self, gt_loss: torch.Tensor, batch: dict[str, Any], img: torch.Tensor, heatmaps: torch.Tensor
    ) -> torch.Tensor:
        """Ground-truth loss blended with the teacher's (rendered keypoints or resampled heatmaps)."""
        device = self.info.device
        if "teacher_target" in batch:
            t_target = batch["teacher_target"].to(device, non_blocking=True)
            t_weight = batch["teacher_weight"].to(device, non_blocking=True)
        else:
            t_target, t_weight = self.hm_teacher(img, tuple(heatmaps.shape[-2:])), None
        d = self.cfg.distill
        return d.gt_weight * gt_loss + d.mimic_weight * self.criterion(heatmaps.float(), t_target, t_weight)

    def _optimizer_step(self) -> None:
        """Clip, step (through the GradScaler), advance the schedule and the EMA."""
        if self.cfg.optim.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1

    @property
    def lr(self) -> float:
        """Current learning rate of the head (the base rate times the schedule)."""
        return self.scheduler.lr(self.cfg.optim.lr)

    def _log_step(self, loss: torch.Tensor, bar: Any) -> None:
        if self.step % self.cfg.train.log_interval == 0 or self.step == 1:
            lv = float(loss.detach())
            self.step_losses.append((self.step, lv))
            bar.set_postfix(loss=f"{lv:.3e}", lr=f"{self.lr:.2e}")
            self.log.scalar("train/loss", lv, self.step)
            self.log.scalar("train/lr", self.lr, self.step)

    # ------------------------------------------------------------------ end of an epoch
    def end_epoch(self, stats: _EpochStats, shown_epoch: int) -> None:
        """Report, validate when due, checkpoint and export (after an epoch or the step budget)."""
        cfg, info = self.cfg, self.info
        self.total_images += stats.images * info.world_size
        self.total_seconds += stats.seconds
        mean_loss = all_reduce_mean(stats.loss_sum / max(1, stats.batches), info)
        skipped: Counter[str] = Counter()
        for part in all_gather_objects(dict(stats.skipped), info):
            skipped.update(part)
        final = self.step >= self.limit or self.epoch >= cfg.train.epochs
        due = stats.complete and self.epoch % cfg.eval.interval == 0 if cfg.eval.interval > 0 else False
        val = None
        if self.val_ds is not None and (final or due):
            val = validate(self.eval_model(), self.val_ds, cfg, info, self.precision, progress=info.is_main)
            if self.ema is None:
                self.net.train()
        row = {
            "epoch": shown_epoch, "step": self.step, "lr": self.lr, "loss": mean_loss,
            "val_AP": None if val is None else val.get("AP"), "val_AP50": None if val is None else val.get("AP50"),
            "val_AP75": None if val is None else val.get("AP75"), "val_AR": None if val is None else val.get("AR"),
            "images_per_s": round(stats.images * info.world_size / max(stats.seconds, 1e-9), 2),
            "epoch_time_s": round(stats.seconds, 2), "skipped": sum(skipped.values()),
        }  # fmt: skip
        self.rows.append(row)
        self.log(_epoch_message(row, val, skipped))
        if val is not None:
            self.log.scalar("val/AP", val.get("AP", 0.0), self.step)
        improved = val is not None and val.get("AP", -1.0) > self.best_ap
        if improved:
            self.best_ap = float(val["AP"])  # type: ignore[index]
        self.save()
        if info.is_main:
            write_metrics_csv(self.work_dir / "metrics.csv", self.rows, METRIC_FIELDS)
            self.export("model_last.safetensors")
            if improved:
                self.export("model_best.safetensors")
            if stats.complete and cfg.checkpoint.interval and self.epoch % cfg.checkpoint.interval == 0:
                self.export(f"model_epoch_{self.epoch}.safetensors")
        barrier(info)
        self.last = {"val": val, "loss": mean_loss, "skipped": sum(skipped.values())}

    def eval_model(self) -> nn.Module:
        """The weights that are validated and exported: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    # ------------------------------------------------------------------ files
    def state(self) -> dict[str, Any] | None:
        """The resumable state (rank 0; ``None`` on other ranks, which only contribute their RNGs)."""
        rng_all = all_gather_objects(capture_rng_state(), self.info)
        if not self.info.is_main:
            return None
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": rng_all,
            "world_size": self.info.world_size,
            "history": self.rows,
            "step_losses": [list(x) for x in self.step_losses],
            "best_ap": self.best_ap,
            "config": self.cfg.to_dict(),
        }

    def save(self) -> None:
        """Write ``checkpoints/last.pt`` (atomically, rank 0) and wait for every rank."""
        state = self.state()
        if state is not None:
            save_training_state(self.work_dir / "checkpoints" / LAST, state)
        barrier(self.info)

    def export(self, name: str) -> Path | None:
        """Write the validated weights as ``name`` in the one weights format (rank 0)."""
        if not self.info.is_main:
            return None
        return export_model(self.eval_model(), self.work_dir / name)

    def finish(self, t_start: float) -> dict[str, Any]:
        """Final files (last weights, curves) and the result dict."""
        if self.info.is_main:
            if not (self.work_dir / "model_last.safetensors").exists():
                self.export("model_last.safetensors")
            try:
                plot_curves(
                    self.work_dir / "curves.png", self.step_losses, self.rows, ["val_AP", "val_AR"],
                    epoch_loss="loss", loss_label="keypoint MSE loss", metric_label="COCO keypoint AP / AR",
                )  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - a plotting problem must not lose a finished run
                self.log(f"could not draw curves.png: {exc}")
        wall = time.time() - t_start
        val = self.last.get("val") or {}
        result = {
            "epoch": self.epoch,
            "step": self.step,
            "loss": self.last.get("loss", self.rows[-1]["loss"] if self.rows else math.nan),
            "lr": self.lr,
            "AP": val.get("AP"),
            "AP50": val.get("AP50"),
            "AP75": val.get("AP75"),
            "AR": val.get("AR"),
            "best_AP": self.best_ap if self.best_ap >= 0 else None,
            "wall_time_s": wall,
            "images_per_s": self.total_images / self.total_seconds if self.total_seconds > 0 else None,
            "skipped": self.last.get("skipped", 0),
            "model_path": str(self.work_dir / "model_last.safetensors"),
            "work_dir": str(self.work_dir),
        }
        ap = val.get("AP")
        self.log(f"done: {self.step} steps in {wall:.1f} s" + (f", val AP {ap:.4f}" if ap is not None else ""))
        self.log.close()
        return result


def _datasets(
    cfg: Config, paths: dict[str, Path | None], info: DistInfo, log: _Logger
) -> tuple[CocoKeypointDataset, CocoKeypointDataset | None]:
    train_ds = make_dataset(cfg, True, paths)
    val_ds = make_dataset(cfg, False, paths) if cfg.data.val_ann and cfg.eval.interval > 0 else None
    for name, ds in (("train", train_ds), ("val", val_ds)):
        if ds is not None and ds.skipped:
            log(f"{name}: skipped {sum(ds.skipped.values())} annotations: {dict(ds.skipped)}")
    log(
        f"train: {len(train_ds)} persons from {paths.get('data.train_ann') or 'synthetic scenes'}"
        + (f"; val: {len(val_ds)} boxes" if val_ds is not None else "; no validation")
        + f"; world size {info.world_size}, device {info.device}"
    )
    return train_ds, val_ds


def _teacher(cfg: Config, train_ds: CocoKeypointDataset, info: DistInfo, log: _Logger) -> Any:
    """Knowledge distillation (training/distill.py): keypoint teachers render their targets into the
    training samples; a heatmap teacher is returned and runs on every batch."""
    if not cfg.distill.teacher:
        return None
    if distill.resolve_mode(cfg.distill) == "keypoints":
        distill.attach_keypoint_teacher(train_ds, cfg.distill, log, progress=info.is_main)
        return None
    log(f"distill: mimicking the heatmaps of {cfg.distill.teacher}")
    return distill.HeatmapTeacher(cfg.distill.teacher, info.device, udp=cfg.model.codec == "udp")


def _model_for_training(cfg: Config, info: DistInfo, log: _Logger) -> tuple[PoseModel, nn.Module]:
    """The model (identical initialisation on every rank) and what the loop calls: its
    ``forward_train``, wrapped in DistributedDataParallel when distributed."""
    seed_everything(cfg.train.seed)
    model = build_model(cfg)
    init_weights(model, cfg, log)
    if cfg.distill.knowledge_token:
        install_token(model, load_token(cfg.distill.knowledge_token))
        log(f"distill: frozen knowledge token from {cfg.distill.knowledge_token}")
    model.to(info.device)
    if info.distributed and cfg.train.sync_bn and info.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net: nn.Module = TrainingForward(model)
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[info.device] if info.device.type == "cuda" else None
        )
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {cfg.model.name} ({cfg.model.head} head), {n_params / 1e6:.2f} M parameters")
    return model, net


def _epoch_message(row: dict[str, Any], val: dict[str, float] | None, skipped: Counter[str]) -> str:
    msg = (
        f"epoch {row['epoch']} step {row['step']}: loss {row['loss']:.4e} lr {row['lr']:.2e} "
        f"{row['images_per_s']} img/s"
    )
    if val is not None:
        msg += (
            f" | val AP {val.get('AP', 0):.4f} AP50 {val.get('AP50', 0):.4f} AR {val.get('AR', 0):.4f}"
            f" ({int(val.get('num_predictions', 0))} persons)"
        )
    msg += f" | skipped {sum(skipped.values())} bad samples"
    if skipped:
        msg += f": {dict(skipped)}"
    return msg
