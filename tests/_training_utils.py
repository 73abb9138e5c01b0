"""Shared settings of the training tests: a tiny ViT on a few coco-mini persons, one CPU thread."""

from __future__ import annotations

from pathlib import Path

from pyramidpose.training.config import Config, load_config


def tiny_overrides(coco_mini: Path, persons: int = 8, size: str = "[64,48]") -> list[str]:
    """``--set`` strings for a fast, deterministic run on the first ``persons`` coco-mini persons."""
    return [
        f"data.root={coco_mini}",
        "model.name=vitpose-tiny",
        "model.head=simple",
        f"model.input_size={size}",
        f"data.max_train_instances={persons}",
        "data.cache_images=true",
        "data.num_workers=0",
        "train.batch_size=4",
        "train.epochs=50",
        "train.threads=1",
        "train.tensorboard=false",
        "train.log_interval=1",
        "eval.interval=0",
        "optim.warmup_iters=2",
        "optim.lr=1e-3",
        "checkpoint.interval=0",
    ]


def tiny_config(coco_mini: Path, extra: list[str] | None = None, **kw: object) -> Config:
    return load_config(None, tiny_overrides(coco_mini, **kw) + list(extra or []))  # type: ignore[arg-type]
