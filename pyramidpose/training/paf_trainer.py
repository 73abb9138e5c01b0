"""Training a bottom-up PAF model: whole images, all stages supervised, COCO AP of the grouped people.

A config file says ``kind: paf`` at the top level; ``pyramidpose train`` then runs :func:`train_paf`.
Sections: ``model`` (:class:`~pyramidpose.models.paf_model.PafModelConfig`), ``data``
(:class:`PafDataConfig`), ``optim`` and ``train`` (the 2D engine's
:class:`~pyramidpose.training.config.OptimConfig` and :class:`~pyramidpose.training.config.TrainConfig`:
the same optimiser with layer-wise decay, schedule and precision), ``eval`` (:class:`PafEvalConfig`).

``WORK_DIR`` receives ``config.yaml``, ``metrics.csv`` (one row per epoch), ``model_last.safetensors``
(the PAF weights format, read by ``predict --weights``) and, after validation, ``val_results.json``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from pyramidpose.errors import ConfigError, DataError
from pyramidpose.models.paf_model import PafModelConfig
from pyramidpose.training.config import OptimConfig, TrainConfig, dataclass_from_dict, read_yaml_mapping


@dataclass
class PafDataConfig:
    """COCO keypoint images for bottom-up training (paths relative to ``root`` as in the 2D config)."""

    root: str = "data/coco"
    train_ann: str = "annotations/person_keypoints_train2017.json"
    train_images: str = "train2017"
    val_ann: str | None = "annotations/person_keypoints_val2017.json"
    val_images: str = "val2017"
    scale_factor: float = 0.25
    """Random scale in ``1 +- f`` of the longer side fitted to the input."""
    rot_factor: float = 30.0
    """Random rotation up to this many degrees (half of the samples)."""
    flip_prob: float = 0.5
    shift_factor: float = 0.1
    """Random shift up to this fraction of the input."""
    repeat: int = 1
    """Visit the training images this many times per epoch."""
    max_train_images: int | None = None
    cache_images: bool = True


@dataclass
class PafEvalConfig:
    """Validation after training (COCO AP of the grouped people on ``data.val_ann``)."""

    max_people: int = 20
    """People kept per image (COCO's maxDets)."""


@dataclass
class PafConfig:
    """A bottom-up training configuration (``kind: paf``)."""

    kind: str = "paf"
    model: PafModelConfig = field(default_factory=PafModelConfig)
    data: PafDataConfig = field(default_factory=PafDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: PafEvalConfig = field(default_factory=PafEvalConfig)
    base_dir: str = ""


def config_kind(path: str | Path | None) -> str:
    """The top-level ``kind`` of a YAML config (``pose2d`` when absent)."""
    if path is None:
        return "pose2d"
    return str(read_yaml_mapping(path).get("kind", "pose2d"))


def load_paf_config(path: str | Path, overrides: list[str] | None = None) -> PafConfig:
    """Read a ``kind: paf`` YAML file with ``--set`` overrides; errors name the file and field."""
    from pyramidpose.training.config import apply_overrides

    values = apply_overrides(read_yaml_mapping(path), list(overrides or []))
    try:
        cfg = dataclass_from_dict(
            PafConfig, {k: v for k, v in values.items() if k != "base_dir"}, "", ("base_dir",)
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if cfg.kind != "paf":
        raise ConfigError(f"{path}: kind is {cfg.kind!r}, expected 'paf'")
    cfg.base_dir = str(Path(path).resolve().parent)
    return cfg


def _resolve(cfg: PafConfig, rel: str) -> Path:
    p = Path(rel).expanduser()
    if p.is_absolute():
        return p
    root = Path(cfg.data.root).expanduser()
    if not root.is_absolute() and not root.exists() and cfg.base_dir and (Path(cfg.base_dir) / root).exists():
        root = Path(cfg.base_dir) / root
    return root / p


def train_paf(
    cfg: PafConfig, work_dir: str | Path, max_steps: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """Train, export ``model_last.safetensors``, validate; returns the final metrics."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from pyramidpose.data.bottomup import BottomUpDataset, paf_loss
    from pyramidpose.models.paf_model import PafModel, save_paf_model
    from pyramidpose.training.datasets import collate
    from pyramidpose.training.optim import build_optimizer
    from pyramidpose.training.schedule import LRScheduler, vitpose_schedule
    from pyramidpose.training.seeding import seed_everything
    from pyramidpose.utils.device import autocast_context, choose_precision, resolve_device
    from pyramidpose.utils.io import write_text_atomic

    if seed is not None:
        cfg.train.seed = int(seed)
    work = Path(work_dir)
    paths = {k: _resolve(cfg, getattr(cfg.data, k)) for k in ("train_ann", "train_images")}
    if cfg.data.val_ann:
        paths.update(val_ann=_resolve(cfg, cfg.data.val_ann), val_images=_resolve(cfg, cfg.data.val_images))
    for key, p in paths.items():
        if not (p.is_dir() if key.endswith("images") else p.is_file()):
            raise DataError(
                f"data.{key}: {p} does not exist; fix the path in the config or with --set data.{key}=PATH"
            )
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(work / "config.yaml", yaml.safe_dump(_plain(cfg), sort_keys=False))
    if cfg.train.threads:
        torch.set_num_threads(int(cfg.train.threads))
    seed_everything(cfg.train.seed)
    model = PafModel(cfg.model)
    codec = cfg.model.codec()
    d = cfg.data
    ds = BottomUpDataset(
        paths["train_ann"], paths["train_images"], codec, train=True, scale_factor=d.scale_factor,
        rot_factor=d.rot_factor, flip_prob=d.flip_prob, shift_factor=d.shift_factor,
        max_images=d.max_train_images, cache_images=d.cache_images,
    )  # fmt: skip
    optimizer = build_optimizer(model, cfg.optim)
    per_epoch = max(1, (len(ds) * d.repeat) // cfg.train.batch_size)
    schedule = LRScheduler(optimizer, vitpose_schedule(cfg.optim, per_epoch, cfg.train.epochs))
    limit = (
        per_epoch * cfg.train.epochs if max_steps is None else min(max_steps, per_epoch * cfg.train.epochs)
    )
    device = resolve_device(cfg.train.device)
    precision = choose_precision(cfg.train.amp, device)
    model.to(device).train()
    rng = np.random.default_rng(cfg.train.seed)
    rows, step, t0 = [], 0, time.time()
    bar = tqdm(total=limit, desc="train paf", leave=False)
    for epoch in range(cfg.train.epochs):
        order = np.concatenate([rng.permutation(len(ds)) for _ in range(d.repeat)])
        items = [(int(i), (cfg.train.seed, epoch, int(j))) for j, i in enumerate(order)]
        loader = DataLoader(items, batch_size=cfg.train.batch_size, shuffle=False, drop_last=True,
                            collate_fn=lambda b: collate([ds[it] for it in b]), num_workers=0)  # fmt: skip
        losses = []
        for batch in loader:
            img = batch["image"].to(device)
            with autocast_context(precision):
                stages = model.forward_stages(img)
            loss = paf_loss(stages, batch["target"].to(device), batch["mask"].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            schedule.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3e}")
            if step >= limit:
                break
        rows.append(
            {
                "epoch": epoch + 1,
                "step": step,
                "lr": schedule.lr(cfg.optim.lr),
                "loss": float(np.mean(losses)) if losses else None,
            }
        )
        if step >= limit:
            break
    bar.close()
    model.eval()
    model_path = save_paf_model(model, work / "model_last.safetensors")
    result: dict[str, Any] = {"step": step, "loss": rows[-1]["loss"] if rows else None, "wall_time_s": time.time() - t0,
                              "model_path": str(model_path), "work_dir": str(work)}  # fmt: skip
    if cfg.data.val_ann:
        stats = validate_paf(
            model, paths["val_ann"], paths["val_images"], cfg.eval.max_people, work / "val_results.json"
        )
        result.update({k: stats.get(k) for k in ("AP", "AP50", "AP75", "AR")})
        rows[-1].update({"val_AP": stats.get("AP"), "val_AR": stats.get("AR")})
    with open(work / "metrics.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["epoch", "step", "lr", "loss", "val_AP", "val_AR"])
        w.writeheader()
        w.writerows(rows)
    return result


def validate_paf(model: torch.nn.Module, ann_file: Path, image_dir: Path, max_people: int = 20,
                 out: Path | None = None) -> dict[str, float]:  # fmt: skip
    """COCO keypoint AP of the model's grouped people on every image of ``ann_file``."""
    import json

    from pyramidpose.data.images import read_image
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval
    from pyramidpose.inference.backends.paf import PafBackend
    from pyramidpose.utils.io import write_json_atomic

    coco = json.loads(Path(ann_file).read_text(encoding="utf-8"))
    backend = PafBackend(model, device=str(next(model.parameters()).device), max_people=max_people)
    results = []
    for im in coco["images"]:
        try:
            image = read_image(Path(image_dir) / im["file_name"])
        except DataError:
            continue
        results += backend.predict(image).to_coco(im["id"])
    if out is not None:
        write_json_atomic(out, results)
    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR": 0.0}
    return dict(coco_keypoint_eval(coco, results))


def _plain(obj: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return _plain(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
