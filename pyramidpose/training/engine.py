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
import csv
import io
import math
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pyramidpose.codecs.heatmap import HeatmapCodec
from pyramidpose.data.coco import CocoKeypointDataset, ResumableDistributedSampler
from pyramidpose.errors import CheckpointError, ConfigError, DataError
from pyramidpose.training.checkpoint import (
    LAST,
    capture_rng_state,
    export_model,
    load_training_state,
    restore_rng_state,
    save_training_state,
)
from pyramidpose.training.config import Config, config_from_dict, load_config, resolve_data_path
from pyramidpose.training.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_mean,
    barrier,
    init_distributed,
    shutdown,
)
from pyramidpose.training.losses import KeypointMSELoss
from pyramidpose.training.optim import LRSchedule, ModelEMA, build_optimizer
from pyramidpose.training.validation import validate
from pyramidpose.utils.io import atomic_path, write_text_atomic

#: Test hook: ``PYRAMIDPOSE_DEBUG_KILL_AT_STEP=N`` makes the process SIGKILL itself right after
#: optimiser step N (and after any checkpoint of that step), to test crash-resume for real.
KILL_ENV = "PYRAMIDPOSE_DEBUG_KILL_AT_STEP"

METRIC_FIELDS = [
    "epoch", "step", "lr", "loss", "val_AP", "val_AP50", "val_AP75", "val_AR",
    "images_per_s", "epoch_time_s", "skipped",
]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def check_data_paths(cfg: Config) -> dict[str, Path | None]:
    """Resolve every data path of ``cfg`` and fail (DataError) before training if one is missing."""
    paths = {
        "data.train_ann": resolve_data_path(cfg, cfg.data.train_ann),
        "data.train_images": resolve_data_path(cfg, cfg.data.train_images),
        "data.val_ann": resolve_data_path(cfg, cfg.data.val_ann),
        "data.val_images": resolve_data_path(cfg, cfg.data.val_images) if cfg.data.val_ann else None,
        "data.val_detections": resolve_data_path(cfg, cfg.data.val_detections),
    }
    for key, p in paths.items():
        if p is None:
            continue
        ok = p.is_dir() if key.endswith("images") else p.is_file()
        if not ok:
            raise DataError(
                f"{key}: {p} does not exist (data.root is '{cfg.data.root}'); fix the path in the config "
                f"or with --set {key}=PATH / --set data.root=DIR"
            )
    return paths


def _model_args(cfg: Config) -> tuple[tuple[Any, ...], dict[str, Any]]:
    from pyramidpose.skeletons import get_keypoint_set

    kset = get_keypoint_set(cfg.data.keypoint_set)
    kwargs = dict(cfg.model.overrides)
    if cfg.model.drop_path_rate is not None:
        kwargs.setdefault("drop_path", cfg.model.drop_path_rate)
    kwargs.setdefault("keypoint_set", kset.name)
    kwargs.setdefault("codec", cfg.data.codec)
    if cfg.distill.knowledge_token:
        kwargs.setdefault("knowledge_token", True)
    kwargs.setdefault("target", cfg.data.target)
    kwargs.update(num_keypoints=kset.num_keypoints, input_size=tuple(cfg.model.input_size), head=cfg.model.head)
    return (cfg.model.name,), kwargs


def check_model_config(cfg: Config) -> None:
    """Fail early (ConfigError) when ``cfg.model`` does not describe a buildable model."""
    from pyramidpose.models.pose_model import config_for

    args, kwargs = _model_args(cfg)
    config_for(*args, **kwargs)


def build_model(cfg: Config) -> nn.Module:
    """The untrained model of ``cfg.model`` (``create_model`` with the config's extra kwargs)."""
    from pyramidpose import create_model

    args, kwargs = _model_args(cfg)
    return create_model(*args, **kwargs)


def init_weights(model: nn.Module, cfg: Config, log: Any = print) -> None:
    """Initialise from ``model.pretrained`` (full checkpoint) and/or ``model.backbone_pretrained``."""
    if cfg.model.pretrained:
        from pyramidpose.models.checkpoints import load_state_dict_strict, read_checkpoint
        from pyramidpose.models.vit import resize_pos_embed, token_grid

        sd, src_cfg, fmt = read_checkpoint(cfg.model.pretrained)
        sd = dict(sd)
        own = model.state_dict()
        pos = sd.get("backbone.pos_embed")
        if pos is not None and pos.shape != own["backbone.pos_embed"].shape:
            sd["backbone.pos_embed"] = resize_pos_embed(
                pos, token_grid(src_cfg.input_size, src_cfg.patch_ratio), tuple(unwrap(model).backbone.grid)
            )
        dropped = [k for k, v in sd.items() if k.startswith("head.") and k in own and v.shape != own[k].shape]
        for k in dropped:  # another keypoint count: keep the fresh final layer
            sd[k] = own[k]
        load_state_dict_strict(model, sd, source=f"{cfg.model.pretrained} ({fmt} format)")
        log(f"initialised from {cfg.model.pretrained} ({fmt})" + (f"; re-initialised {dropped}" if dropped else ""))
    if cfg.model.backbone_pretrained:
        from pyramidpose.models.checkpoints import load_backbone_weights

        rep = load_backbone_weights(model, cfg.model.backbone_pretrained)
        log(
            f"backbone from {cfg.model.backbone_pretrained}: {len(rep['loaded'])} tensors loaded, "
            f"{len(rep['missing'])} missing"
        )


def make_dataset(cfg: Config, train: bool, paths: dict[str, Path | None] | None = None) -> CocoKeypointDataset:
    """The training (augmented, with targets) or validation dataset of ``cfg``."""
    paths = paths or check_data_paths(cfg)
    from pyramidpose.codecs.coordinates import coordinate_codec

    d = cfg.data
    codec = HeatmapCodec(input_size=tuple(cfg.model.input_size), sigma=d.sigma, udp=d.codec == "udp")
    target_codec = coordinate_codec(d.target, tuple(cfg.model.input_size), d.codec == "udp")
    common = dict(keypoint_set=d.keypoint_set, codec=codec, padding=d.padding, target_codec=target_codec)
    if train:
        proposals = None
        if d.proposals and d.proposal_prob > 0:
            from pyramidpose.data.proposals import ProposalModel

            beside = Path(cfg.base_dir) / d.proposals if cfg.base_dir else None
            path = beside if beside is not None and beside.is_file() else resolve_data_path(cfg, d.proposals)
            proposals = ProposalModel.load(path)  # type: ignore[arg-type]
        return CocoKeypointDataset(
            paths["data.train_ann"], paths["data.train_images"], train=True,
            flip_prob=d.flip_prob, half_body_prob=d.half_body_prob,
            half_body_min_keypoints=d.half_body_min_keypoints, scale_factor=d.scale_factor,
            rot_factor=d.rot_factor, rot_prob=d.rot_prob, color_jitter=d.color_jitter,
            max_instances=d.max_train_instances, cache_images=d.cache_images, proposals=proposals,
            proposal_prob=d.proposal_prob, **common,
        )  # fmt: skip
    return CocoKeypointDataset(
        paths["data.val_ann"], paths["data.val_images"], train=False, detections=paths["data.val_detections"],
        det_score_thr=d.det_score_thr, cache_images=d.cache_images, **common,
    )  # fmt: skip


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack array fields into tensors; keep ``error`` strings as a list."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        vals = [s[key] for s in samples]
        if key == "error":
            out[key] = vals
        else:
            out[key] = torch.as_tensor(np.stack([np.asarray(v) for v in vals]))
    return out


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


def autocast_context(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` = bf16/fp16, a no-op context for ``none``."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


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
        from tqdm import tqdm

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


def _write_metrics_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in METRIC_FIELDS})
    write_text_atomic(path, buf.getvalue())


def plot_curves(path: Path, rows: list[dict[str, Any]], step_losses: list[tuple[int, float]]) -> None:
    """Loss (per logged step and per epoch) and validation AP curves as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if step_losses:
        s, v = zip(*step_losses)
        ax1.plot(s, v, lw=0.8, alpha=0.6, label="logged steps")
    if rows:
        ax1.plot([r["step"] for r in rows], [r["loss"] for r in rows], "o-", label="epoch mean")
    ax1.set_xlabel("optimiser step")
    ax1.set_ylabel("keypoint MSE loss")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title("training loss")
    ap = [(r["epoch"], r["val_AP"], r.get("val_AR")) for r in rows if r.get("val_AP") is not None]
    if ap:
        e, a, ar = zip(*ap)
        ax2.plot(e, a, "o-", label="AP")
        ax2.plot(e, ar, "s--", label="AR")
        ax2.legend()
    else:
        ax2.text(0.5, 0.5, "no validation run", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("COCO keypoint AP / AR")
    ax2.set_title("validation")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the global state libraries may use
    torch.manual_seed(seed)


def train(
    config: Config | str | Path | None,
    work_dir: str | Path,
    max_steps: int | None = None,
    resume: str | Path | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Train a 2D pose model; returns the final metrics (on every rank; AP only on rank 0).

    Args:
        config: a :class:`Config` or a YAML path.
        work_dir: output directory (created).
        max_steps: stop after this many optimiser steps in total (counting the steps of a resumed run).
        resume: a previous work directory (or its ``checkpoints/last.pt``) to continue from exactly.
        seed: overrides ``train.seed``.

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
    if cfg.train.amp == "fp16" and not (torch.cuda.is_available() and cfg.train.device != "cpu"):
        raise ConfigError("train.amp=fp16 needs CUDA (fp16 with a GradScaler); use train.amp=bf16 on CPU")
    check_model_config(cfg)
    paths = check_data_paths(cfg)  # before any process group or model: a bad path fails fast
    info = init_distributed(cfg.train.device)
    threads = torch.get_num_threads()
    try:
        return _train(cfg, Path(work_dir), paths, info, max_steps, resume_state)
    finally:
        torch.set_num_threads(threads)  # train.threads must not leak into the caller
        shutdown(info)


def _train(
    cfg: Config,
    work_dir: Path,
    paths: dict[str, Path | None],
    info: DistInfo,
    max_steps: int | None,
    resume_state: dict[str, Any] | None,
) -> dict[str, Any]:
    t_start = time.time()
    device = info.device
    if info.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "checkpoints").mkdir(exist_ok=True)
        write_text_atomic(work_dir / "config.yaml", cfg.to_yaml())
    barrier(info)
    log = _Logger(work_dir, info.is_main, cfg.train.tensorboard)
    if cfg.train.threads:
        torch.set_num_threads(int(cfg.train.threads))

    # data
    train_ds = make_dataset(cfg, True, paths)
    hm_teacher = None
    if cfg.distill.teacher:  # knowledge distillation (training/distill.py)
        from pyramidpose.training import distill

        if distill.resolve_mode(cfg.distill) == "keypoints":
            distill.attach_keypoint_teacher(train_ds, cfg.distill, log, progress=info.is_main)
        else:
            hm_teacher = distill.HeatmapTeacher(cfg.distill.teacher, device, udp=cfg.data.codec == "udp")
            log(f"distill: mimicking the heatmaps of {cfg.distill.teacher}")
    val_ds = make_dataset(cfg, False, paths) if cfg.data.val_ann and cfg.eval.interval > 0 else None
    for name, ds in (("train", train_ds), ("val", val_ds)):
        if ds is not None and ds.skipped:
            log(f"{name}: skipped {sum(ds.skipped.values())} annotations: {dict(ds.skipped)}")
    log(
        f"train: {len(train_ds)} persons from {paths['data.train_ann']}"
        + (f"; val: {len(val_ds)} boxes" if val_ds is not None else "; no validation")
        + f"; world size {info.world_size}, device {device}, amp {cfg.train.amp}"
    )

    # model (identical initialisation on every rank)
    _seed_all(cfg.train.seed)
    model = build_model(cfg)
    init_weights(model, cfg, log)
    if cfg.distill.knowledge_token:
        from pyramidpose.training.distill import install_token, load_token

        install_token(model, load_token(cfg.distill.knowledge_token))
        log(f"distill: frozen knowledge token from {cfg.distill.knowledge_token}")
    model.to(device)
    ddp: nn.Module = model
    if info.distributed:
        if cfg.train.sync_bn and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ddp = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None,
        )  # fmt: skip
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {cfg.model.name} ({cfg.model.head} head), {n_params / 1e6:.2f} M parameters")

    optimizer = build_optimizer(model, cfg.optim)
    accum = cfg.optim.accumulate_steps
    sampler = ResumableDistributedSampler(
        len(train_ds), cfg.train.batch_size, info.world_size, info.rank, cfg.train.seed, accumulate=accum,
        repeat=cfg.data.repeat,
    )
    batches_per_epoch = sampler.batches_per_epoch
    steps_per_epoch = batches_per_epoch // accum
    schedule = LRSchedule(optimizer, cfg.optim, steps_per_epoch, cfg.train.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.train.amp == "fp16")
    ema = ModelEMA(model, cfg.optim.ema_decay) if cfg.optim.ema else None
    criterion: Any = KeypointMSELoss(cfg.loss.use_target_weight, cfg.loss.ohkm, cfg.loss.ohkm_topk, cfg.loss.loss_weight)
    if train_ds.target_codec is not None:  # SIKR (L1 on expected coordinates) or SimCC (KL)
        criterion = train_ds.target_codec.loss

    epoch, step, batch_in_epoch = 0, 0, 0
    rows: list[dict[str, Any]] = []
    step_losses: list[tuple[int, float]] = []
    best_ap = -1.0
    _seed_all(cfg.train.seed + 1000 * info.rank + 1)
    if resume_state is not None:
        s = resume_state
        if s.get("world_size", 1) != info.world_size:
            log(f"note: resuming a {s.get('world_size', 1)}-process run with {info.world_size} processes")
        try:
            model.load_state_dict(s["model"])
            optimizer.load_state_dict(s["optimizer"])
        except (RuntimeError, ValueError) as exc:
            raise CheckpointError(f"the resumed checkpoint does not match this config's model: {exc}") from None
        schedule.load_state_dict(s["schedule"])
        if s.get("scaler"):
            scaler.load_state_dict(s["scaler"])
        if ema is not None and s.get("ema"):
            ema.load_state_dict(s["ema"])
        epoch, step, batch_in_epoch = int(s["epoch"]), int(s["step"]), int(s["batch_in_epoch"])
        rows = list(s.get("history", []))
        step_losses = [tuple(x) for x in s.get("step_losses", [])]  # type: ignore[misc]
        best_ap = float(s.get("best_ap", -1.0))
        rngs = s["rng"]
        restore_rng_state(rngs[info.rank] if info.rank < len(rngs) else rngs[0])
        log(f"resumed from epoch {epoch}, step {step} (batch {batch_in_epoch} of the epoch)")

    total_steps = steps_per_epoch * cfg.train.epochs
    limit = min(total_steps, max_steps) if max_steps is not None else total_steps
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    amp = cfg.train.amp

    def state_dict(cur_epoch: int, cur_batch: int) -> dict[str, Any] | None:
        rng_all = all_gather_objects(capture_rng_state(), info)
        if not info.is_main:
            return None
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "ema": ema.state_dict() if ema is not None else {},
            "epoch": cur_epoch,
            "step": step,
            "batch_in_epoch": cur_batch,
            "rng": rng_all,
            "world_size": info.world_size,
            "history": rows,
            "step_losses": [list(x) for x in step_losses],
            "best_ap": best_ap,
            "config": cfg.to_dict(),
        }

    def save(cur_epoch: int, cur_batch: int) -> None:
        state = state_dict(cur_epoch, cur_batch)
        if state is not None:
            save_training_state(work_dir / "checkpoints" / LAST, state)
        barrier(info)

    def export(name: str) -> Path | None:
        if not info.is_main:
            return None
        return export_model(ema.module if ema is not None else model, work_dir / name)

    last_metrics: dict[str, Any] = {}
    stats_imgs, stats_time = 0, 0.0
    from tqdm import tqdm

    _fork_safe_opencv(cfg.data.num_workers)
    while epoch < cfg.train.epochs and step < limit:
        sampler.set_epoch(epoch)
        sampler.set_start(batch_in_epoch)
        loader = DataLoader(
            train_ds, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=cfg.data.num_workers,
            collate_fn=collate, pin_memory=device.type == "cuda", drop_last=False,
            worker_init_fn=_worker_init if cfg.data.num_workers else None,
            generator=torch.Generator().manual_seed(cfg.train.seed),
        )  # fmt: skip
        ddp.train()
        loss_sum, loss_n, imgs = 0.0, 0, 0
        skipped: Counter[str] = Counter()
        bar = tqdm(
            total=batches_per_epoch, initial=batch_in_epoch, desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
            disable=not info.is_main, leave=False, dynamic_ncols=True,
        )  # fmt: skip
        t0 = time.time()
        stopped_early = False
        for batch in loader:
            for ok, err in zip(batch["valid"].tolist(), batch["error"]):
                if not ok:
                    skipped[err] += 1
            img = batch["image"].to(device, non_blocking=True)
            target = batch["target"].to(device, non_blocking=True)
            weight = batch["target_weight"].to(device, non_blocking=True)
            sync_now = (batch_in_epoch + 1) % accum == 0
            ctx = ddp.no_sync() if info.distributed and not sync_now else contextlib.nullcontext()
            with ctx:
                with autocast_context(device, amp):
                    out = ddp(img)
                loss = criterion(out.float(), target, weight)
                if "teacher_target" in batch or hm_teacher is not None:
                    if "teacher_target" in batch:
                        t_target = batch["teacher_target"].to(device, non_blocking=True)
                        t_weight = batch["teacher_weight"].to(device, non_blocking=True)
                    else:
                        t_target, t_weight = hm_teacher(img, tuple(out.shape[-2:])), None
                    loss = cfg.distill.gt_weight * loss + cfg.distill.mimic_weight * criterion(
                        out.float(), t_target, t_weight
                    )
                aux_fn = getattr(model, "auxiliary_loss", None)
                aux = aux_fn(target, weight) if aux_fn is not None else None
                if aux is not None:
                    loss = loss + aux.float()
                scaler.scale(loss / accum).backward()
            batch_in_epoch += 1
            loss_sum += float(loss.detach())
            loss_n += 1
            imgs += img.shape[0]
            bar.update(1)
            if not sync_now:
                continue
            if cfg.optim.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            if ema is not None:
                ema.update(model)
            step += 1
            if step % cfg.train.log_interval == 0 or step == 1:
                lv = float(loss.detach())
                step_losses.append((step, lv))
                bar.set_postfix(loss=f"{lv:.3e}", lr=f"{schedule.lr:.2e}")
                log.scalar("train/loss", lv, step)
                log.scalar("train/lr", schedule.lr, step)
            mid_epoch = batch_in_epoch < batches_per_epoch
            if cfg.checkpoint.save_every_steps and step % cfg.checkpoint.save_every_steps == 0 and mid_epoch:
                save(epoch, batch_in_epoch)
            if kill_at and step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if step >= limit and mid_epoch:
                stopped_early = True
                break
        bar.close()
        dt = time.time() - t0
        stats_imgs += imgs * info.world_size
        stats_time += dt
        epoch_done = not stopped_early
        # end of epoch (or of the step budget): report, validate, checkpoint
        mean_loss = all_reduce_mean(loss_sum / max(1, loss_n), info)
        skipped_all: Counter[str] = Counter()
        for part in all_gather_objects(dict(skipped), info):
            skipped_all.update(part)
        shown_epoch = epoch + 1
        if epoch_done:
            epoch, batch_in_epoch = epoch + 1, 0
        final = step >= limit or epoch >= cfg.train.epochs
        val = None
        do_val = val_ds is not None and (final or (epoch_done and epoch % cfg.eval.interval == 0))
        if do_val:
            val = validate(ema.module if ema is not None else ddp, val_ds, cfg, info, progress=info.is_main)
            if ema is None:
                ddp.train()
        row = {
            "epoch": shown_epoch, "step": step, "lr": schedule.lr, "loss": mean_loss,
            "val_AP": None if val is None else val.get("AP"), "val_AP50": None if val is None else val.get("AP50"),
            "val_AP75": None if val is None else val.get("AP75"), "val_AR": None if val is None else val.get("AR"),
            "images_per_s": round(imgs * info.world_size / max(dt, 1e-9), 2), "epoch_time_s": round(dt, 2),
            "skipped": sum(skipped_all.values()),
        }  # fmt: skip
        rows.append(row)
        msg = (
            f"epoch {shown_epoch} step {step}: loss {mean_loss:.4e} lr {schedule.lr:.2e} "
            f"{row['images_per_s']} img/s"
        )
        if val is not None:
            msg += (
                f" | val AP {val.get('AP', 0):.4f} AP50 {val.get('AP50', 0):.4f} AR {val.get('AR', 0):.4f}"
                f" ({int(val.get('num_predictions', 0))} persons)"
            )
            log.scalar("val/AP", val.get("AP", 0.0), step)
        msg += f" | skipped {sum(skipped_all.values())} bad samples"
        if skipped_all:
            msg += f": {dict(skipped_all)}"
        log(msg)
        improved = val is not None and val.get("AP", -1.0) > best_ap
        if improved:
            best_ap = float(val["AP"])  # type: ignore[index]
        save(epoch, batch_in_epoch)
        if info.is_main:
            _write_metrics_csv(work_dir / "metrics.csv", rows)
            export("model_last.safetensors")
            if improved:
                export("model_best.safetensors")
            if epoch_done and cfg.checkpoint.interval and epoch % cfg.checkpoint.interval == 0:
                export(f"model_epoch_{epoch}.safetensors")
        barrier(info)
        last_metrics = {"val": val, "loss": mean_loss, "skipped": sum(skipped_all.values())}

    if info.is_main:
        if not (work_dir / "model_last.safetensors").exists():
            export("model_last.safetensors")
        try:
            plot_curves(work_dir / "curves.png", rows, step_losses)
        except Exception as exc:  # noqa: BLE001 - a plotting problem must not lose a finished run
            log(f"could not draw curves.png: {exc}")
    wall = time.time() - t_start
    val = last_metrics.get("val") or {}
    result = {
        "epoch": epoch,
        "step": step,
        "loss": last_metrics.get("loss", rows[-1]["loss"] if rows else math.nan),
        "lr": schedule.lr,
        "AP": val.get("AP"),
        "AP50": val.get("AP50"),
        "AP75": val.get("AP75"),
        "AR": val.get("AR"),
        "best_AP": best_ap if best_ap >= 0 else None,
        "wall_time_s": wall,
        "images_per_s": stats_imgs / stats_time if stats_time > 0 else None,
        "skipped": last_metrics.get("skipped", 0),
        "model_path": str(work_dir / "model_last.safetensors"),
        "work_dir": str(work_dir),
    }
    log(f"done: {step} steps in {wall:.1f} s" + (f", val AP {val['AP']:.4f}" if val.get("AP") is not None else ""))
    log.close()
    return result
