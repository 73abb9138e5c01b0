"""``pyramidpose train``: train or fine-tune a 2D pose model from a YAML config.

Single process::

    pyramidpose train configs/coco_mini_tiny.yaml --work-dir runs/tiny

Data-parallel on N GPUs (or N CPU processes with gloo) of one machine::

    torchrun --nproc_per_node N -m pyramidpose train CONFIG --work-dir DIR

Multi-node: run the same command on every node with torchrun's ``--nnodes``, ``--node_rank``,
``--master_addr`` and ``--master_port`` (or ``--rdzv_backend c10d --rdzv_endpoint HOST:PORT``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from pyramidpose.commands._args import ArgumentParser, positive_int

#: What a 2D training run writes into its work directory (removed by --overwrite, nothing else is).
RUN_OUTPUTS = ("checkpoints", "config.yaml", "train.log", "tensorboard", "metrics.csv", "model_last.safetensors",
               "model_last.json", "model_best.safetensors", "model_best.json", "curves.png")  # fmt: skip


def previous_run(work_dir: str | os.PathLike[str]) -> list[str]:
    """The outputs of an earlier run found in ``work_dir`` (empty when there is none)."""
    d = Path(work_dir)
    return [name for name in RUN_OUTPUTS if (d / name).exists()]


def clear_run(work_dir: str | os.PathLike[str]) -> None:
    """Remove an earlier run's outputs from ``work_dir`` (other files stay)."""
    d = Path(work_dir)
    for name in previous_run(d):
        p = d / name
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pyramidpose train",
        description="Train a top-down 2D pose model (ViTPose recipe) on a COCO-format dataset. "
        "Launch with torchrun for DDP.",
    )
    p.add_argument("config", nargs="?", help="YAML config (optional with --resume: the run's own config is used)")
    p.add_argument("--work-dir", required=True, help="output directory (checkpoints, metrics.csv, curves.png)")
    p.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many optimiser steps in total")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue a run exactly from DIR/checkpoints/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --work-dir (without it, an existing run is refused)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="override train.seed")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field, e.g. --set optim.lr=1e-4 (repeatable; values are YAML)",
    )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pyramidpose.utils.outputs import check_output_dir

    check_output_dir(args.work_dir, "--work-dir")
    from pyramidpose.errors import ConfigError
    from pyramidpose.training.config import config_from_dict, load_config
    from pyramidpose.utils.device import resolve_device

    if args.config is not None:
        from pyramidpose.training.paf_trainer import config_kind

        if config_kind(args.config) == "paf":  # bottom-up part affinity fields
            from pyramidpose.training.paf_trainer import load_paf_config, train_paf

            if args.resume is not None:
                raise ConfigError("--resume is not supported for kind: paf configs; start a new run")
            out = train_paf(load_paf_config(args.config, args.overrides), args.work_dir, args.max_steps, args.seed)
            print(json.dumps(out, indent=1, default=str))
            return 0
    if args.config is None:
        if args.resume is None:
            raise ConfigError("give a CONFIG file (or --resume DIR to continue a run with its own config)")
        from pyramidpose.training.checkpoint import load_training_state
        from pyramidpose.training.config import apply_overrides

        values = load_training_state(args.resume)["config"]
        cfg = config_from_dict(apply_overrides(values, args.overrides), values.get("base_dir", ""))
    else:
        cfg = load_config(args.config, args.overrides)
    resolve_device(cfg.train.device)  # an unknown or absent device: ConfigError before anything is written
    found = previous_run(args.work_dir)
    same_run = args.resume is not None and Path(args.resume).resolve() in (
        Path(args.work_dir).resolve(), (Path(args.work_dir) / "checkpoints").resolve())
    if found and not same_run:
        if not args.overwrite:
            raise ConfigError(f"{args.work_dir} already holds a training run ({', '.join(found)}); pass --resume "
                              f"{args.work_dir} to continue it, --overwrite to replace it, or another --work-dir.")  # fmt: skip
        if int(os.environ.get("RANK", "0")) == 0:
            clear_run(args.work_dir)
    from pyramidpose.training.engine import train

    result = train(cfg, args.work_dir, max_steps=args.max_steps, resume=args.resume, seed=args.seed)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in result.items()}, indent=1, default=str))
    return 0
