"""Heatmap vs SIKR vs SimCC at the same small budget, over seeds, through the one 2D engine.

Each target trains the same tiny ViT (``vitpose-tiny``, ``--size``) on coco-mini train for
``--steps`` optimiser steps with the same data, schedule and augmentation (heatmap and SIKR share the
simple heatmap head; SimCC has its own head), then is scored on coco-mini val with ground-truth boxes
and flip test: COCO AP and PCK@0.2 (per-axis box normalisation, :func:`pck_bbox_per_axis`). Prints
per-run figures and mean +- half the range per target. Run one at a time on a shared CPU (nice).

    python benchmarks/coordinate_targets.py [--steps 150] [--seeds 0 1] [--size 64 48]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HEADS = {"heatmap": "simple", "sikr": "simple", "simcc": "simcc"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco-mini"
    )
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--size", type=int, nargs=2, default=[64, 48], metavar=("H", "W"))
    ap.add_argument("--targets", nargs="+", default=list(HEADS), choices=list(HEADS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args(argv)
    if not (args.data / "annotations").is_dir():
        print(f"error: {args.data} has no annotations/; pass --data DIR (coco-mini)", file=sys.stderr)
        return 2

    import platform

    import torch

    from pyramidpose import load_model
    from pyramidpose.evaluation.metrics import pck_bbox_per_axis
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import make_dataset, train
    from pyramidpose.training.validation import coco_ap, predict_instances

    print(
        f"{platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, {args.threads} threads (machine shared)"
    )
    gt = json.loads((args.data / "annotations/person_keypoints_val2017.json").read_text())
    rows: dict[str, list[tuple[float, float]]] = {t: [] for t in args.targets}
    for seed in args.seeds:
        for target in args.targets:
            cfg = load_config(None, [
                f"data.root={args.data}", "model.name=vitpose-tiny", f"model.head={HEADS[target]}",
                f"model.input_size=[{args.size[0]},{args.size[1]}]", f"data.target={target}", "data.cache_images=true",
                "data.num_workers=0", "data.repeat=4", "data.scale_factor=0.35", f"train.batch_size={args.batch}",
                "train.epochs=1000", f"train.threads={args.threads}", "train.tensorboard=false", "train.log_interval=50",
                "eval.interval=0", "optim.lr=1e-3", "optim.weight_decay=0.05", "optim.layer_decay=0.9",
                "optim.schedule=cosine", "optim.warmup_iters=20", "checkpoint.interval=0", f"train.seed={seed}",
            ])  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                train(cfg, Path(tmp) / "run", max_steps=args.steps)
                model = load_model(Path(tmp) / "run" / "model_last.safetensors")
            ds = make_dataset(cfg, False)
            results, _ = predict_instances(model, ds, flip_test=True)
            ap_ = coco_ap(ds.ann_file, results)["AP"]
            pck = pck_bbox_per_axis(gt, results, thr=0.2)["pck"]
            rows[target].append((ap_, pck))
            print(f"seed {seed} {target:8s}: AP {ap_:.3f}  PCK@0.2 {pck:.3f}", flush=True)
    print(f"\n{args.steps} steps, batch {args.batch}, input {args.size[0]}x{args.size[1]}, seeds {args.seeds}")
    print("| target | AP (mean +- half range) | PCK@0.2 (mean +- half range) |\n|---|---|---|")
    for t, r in rows.items():
        a = np.array(r)
        half = (a.max(0) - a.min(0)) / 2
        print(f"| {t} | {a[:, 0].mean():.3f} +- {half[0]:.3f} | {a[:, 1].mean():.3f} +- {half[1]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
