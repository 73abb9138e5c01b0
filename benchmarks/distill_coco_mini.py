"""Distillation on coco-mini: a tiny ViTPose student with a teacher vs the same student on ground truth.

For every seed, two runs with the same config, steps and seed: ``gt`` (ground truth only) and
``distill`` (``distill.teacher``: rendered teacher keypoints + ground truth + pseudo-labelled
unlabelled people of the training images). Each final model is evaluated on coco-mini val (ground-truth
boxes, flip test): COCO OKS AP and PCK@0.2 (bbox-normalised, as ``pyramidpose evaluate``). The teacher
itself is evaluated the same way (its own crops, through its backend).

    python benchmarks/distill_coco_mini.py --teacher blazepose --seeds 0 1 --set train.epochs=14 \
        --distill-set data.repeat=2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _evaluate(model_path: Path, cfg) -> dict[str, float]:  # noqa: ANN001
    from pyramidpose import load_model
    from pyramidpose.evaluation.metrics import pck_bbox_per_axis
    from pyramidpose.training.engine import make_dataset
    from pyramidpose.training.validation import coco_ap, predict_instances

    ds = make_dataset(cfg, False)
    results, _ = predict_instances(load_model(model_path), ds, batch_size=32, flip_test=True)
    gt = json.loads(Path(ds.ann_file).read_text())
    return {"AP": coco_ap(ds.ann_file, results)["AP"], "PCK@0.2": pck_bbox_per_axis(gt, results, 0.2)["pck"]}


def _evaluate_teacher(teacher: str, cfg) -> dict[str, float]:  # noqa: ANN001
    from pyramidpose.evaluation.metrics import pck_bbox_per_axis
    from pyramidpose.inference.backends import load_backend
    from pyramidpose.training.distill import teacher_keypoints
    from pyramidpose.training.engine import make_dataset
    from pyramidpose.training.validation import coco_ap

    ds = make_dataset(cfg, False)
    kps = teacher_keypoints(load_backend(teacher), ds.instances, ds.kpt_set.name)
    results = []
    for inst, k in zip(ds.instances, kps):
        s = k[:, 2]
        results.append({"image_id": inst.image_id, "category_id": 1, "keypoints": k.reshape(-1).tolist(),
                        "score": float(s[s > 0.2].mean()) if (s > 0.2).any() else 0.0})  # fmt: skip
    gt = json.loads(Path(ds.ann_file).read_text())
    return {"AP": coco_ap(ds.ann_file, results)["AP"], "PCK@0.2": pck_bbox_per_axis(gt, results, 0.2)["pck"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "coco_mini_tiny.yaml"))
    ap.add_argument("--teacher", default="blazepose")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--max-steps", type=int, default=None, help="stop every run after this many steps")
    ap.add_argument("--work-dir", default="runs/distill_coco_mini")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run")
    ap.add_argument("--distill-set", dest="distill_overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for the distill runs only (e.g. data.repeat=2: with the pseudo-labelled "
                    "people an epoch then has as many steps as the ground-truth run's)")  # fmt: skip
    args = ap.parse_args()
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import train

    base = [*args.overrides, "eval.interval=0", "train.tensorboard=false"]
    cfg0 = load_config(args.config, base)
    rows = []
    t = _evaluate_teacher(args.teacher, cfg0)
    print(f"teacher {args.teacher}: AP {t['AP']:.3f}, PCK@0.2 {t['PCK@0.2']:.3f}", flush=True)
    for seed in args.seeds:
        for kind in ("gt", "distill"):
            extra = [f"train.seed={seed}"]
            if kind == "distill":
                extra += [f"distill.teacher={args.teacher}", *args.distill_overrides]
            cfg = load_config(args.config, base + extra)
            work = Path(args.work_dir) / f"{kind}_seed{seed}"
            t0 = time.time()
            out = train(cfg, work, max_steps=args.max_steps)
            m = _evaluate(Path(out["model_path"]), cfg)
            rows.append((kind, seed, out["step"], m["AP"], m["PCK@0.2"], time.time() - t0))
            print(f"{kind} seed {seed}: {out['step']} steps, AP {m['AP']:.4f}, PCK@0.2 {m['PCK@0.2']:.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
    print("\n| student | seed | steps | AP | PCK@0.2 | wall s |\n|---|---:|---:|---:|---:|---:|")
    for kind, seed, steps, a, p, w in rows:
        print(f"| {kind} | {seed} | {steps} | {a:.4f} | {p:.4f} | {w:.0f} |")
    for kind in ("gt", "distill"):
        aps = [r[3] for r in rows if r[0] == kind]
        pcks = [r[4] for r in rows if r[0] == kind]
        print(f"| {kind} mean | | | {np.mean(aps):.4f} | {np.mean(pcks):.4f} | |")
    print(f"| teacher {args.teacher} | | | {t['AP']:.4f} | {t['PCK@0.2']:.4f} | |")


if __name__ == "__main__":
    main()
