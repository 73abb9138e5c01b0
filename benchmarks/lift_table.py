"""Reproduce the 3D lifting table (docs/3d.md): CMU mocap, train subjects 01+02, test subject 03.

    python benchmarks/lift_table.py --work-dir runs/lift_table

Trains the simple-baseline MLP, the temporal model and the multi-view weakly supervised MLP from
configs/lift_cmu_*.yaml, evaluates them and two baselines (mean training pose; nearest neighbour
in the training set by normalised 2D) on the fixed test set (virtual cameras, seed 0), and writes
``table.md`` and ``results.json`` into the work dir. ``--ship`` copies the temporal model to
pyramidpose/assets/lifter_default.safetensors (+ .json). ``--steps-scale 0.1`` for a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS = [
    ("mean_pose", "Mean training pose (baseline)", None),
    ("nearest_neighbour", "Nearest neighbour by normalised 2D (baseline)", None),
    ("mlp", "Simple-baseline MLP, single frame (supervised)", "configs/lift_cmu_mlp.yaml"),
    ("temporal", "Temporal dilated conv, RF 27 (supervised)", "configs/lift_cmu_temporal.yaml"),
    ("multiview", "Simple-baseline MLP, multi-view weak supervision (no 3D labels)", "configs/lift_cmu_multiview.yaml"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work-dir", default="runs/lift_table")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (1 is best on a busy CPU)")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every config's steps (smoke runs)")
    ap.add_argument("--only", nargs="*", default=None, help="subset of rows to train: mlp temporal multiview")
    ap.add_argument("--ship", action="store_true", help="copy the temporal model into pyramidpose/assets")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)

    import torch

    from pyramidpose.lifting.data import make_eval_set
    from pyramidpose.lifting.experiment import (
        LiftExperimentConfig,
        baseline_metrics,
        evaluate_model,
        load_lift_data,
        load_lifter,
        train_lifter,
    )
    from pyramidpose.training.config import load_yaml_config
    from pyramidpose.utils.io import write_json_atomic, write_text_atomic
    from pyramidpose.utils.weights_io import read_weights, write_weights

    torch.set_num_threads(args.threads)
    t_start = time.time()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    timings: dict[str, float] = {}
    cfgs = {}
    for key, _, cfg_path in ROWS:
        if cfg_path:
            cfg = load_yaml_config(REPO / cfg_path, LiftExperimentConfig)
            if args.data_root:
                cfg.data.root = args.data_root
            cfg.trainer.num_threads = args.threads
            cfg.trainer.steps_per_epoch = max(2, int(round(cfg.trainer.steps_per_epoch * args.steps_scale)))
            cfgs[key] = cfg
    dcfg = cfgs["temporal"].data
    t = time.time()
    data = load_lift_data(dcfg)
    test = make_eval_set(data.test, dcfg.eval_camera, seed=dcfg.eval_seed, cameras_per_seq=dcfg.eval_cameras_per_seq)
    timings["load_data_s"] = time.time() - t
    t = time.time()
    base = baseline_metrics(data, dcfg, test)
    for name in ("mean_pose", "nearest_neighbour"):
        results[name] = {k[len(name) + 1 :]: v for k, v in base.items() if k.startswith(name + "_")}
    timings["baselines_s"] = time.time() - t
    for key, cfg in cfgs.items():
        if args.only and key not in args.only:
            continue
        t = time.time()
        res = train_lifter(cfg, work / key)
        model, _ = load_lifter(res.best_checkpoint)
        results[key] = evaluate_model(model, test, "cpu")
        results[key]["best_epoch"] = res.best_epoch
        timings[f"{key}_s"] = time.time() - t
        print(f"{key}: {results[key]}", flush=True)
    timings["total_s"] = time.time() - t_start
    n_frames = sum(len(s.x2d) for s in test)
    lines = [
        f"CMU mocap, train subjects {'+'.join(dcfg.train_subjects)}, test subject {'+'.join(dcfg.test_subjects)} "
        f"({len(data.test)} trials, {dcfg.eval_cameras_per_seq} virtual cameras each, {n_frames} test frames at "
        f"{dcfg.fps:g} fps, seed {dcfg.eval_seed}); COCO-17 2D in, H36M-17 3D out; root-relative, mm.",
        "",
        "| Method | MPJPE (mm) | P-MPJPE (mm) | N-MPJPE (mm) | PCK@150mm |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label, _ in ROWS:
        if key in results:
            r = results[key]
            lines.append(f"| {label} | {r['mpjpe_mm']:.1f} | {r['p_mpjpe_mm']:.1f} | {r['n_mpjpe_mm']:.1f} | "
                         f"{r['pck150']:.3f} |")  # fmt: skip
    lines.append("")
    lines.append(f"Wall time {timings['total_s'] / 60:.1f} min (" +
                 ", ".join(f"{k[:-2]} {v / 60:.1f} min" for k, v in timings.items() if k != "total_s") + ").")  # fmt: skip
    table = "\n".join(lines)
    write_text_atomic(work / "table.md", table + "\n")
    write_json_atomic(work / "results.json", {"results": results, "timings": timings}, indent=2)
    print(table)
    if args.ship and "temporal" in results:
        dst = REPO / "pyramidpose" / "assets" / "lifter_default.safetensors"
        dst.parent.mkdir(parents=True, exist_ok=True)
        stored = read_weights(work / "temporal" / "best.safetensors", "lifter")
        meta = stored.config
        meta["experiment"]["data"]["root"] = ""  # resolved at run time (default_cmu_root)
        meta["test_metrics"] = results["temporal"]
        write_weights(dst, stored.state_dict, "lifter", meta)  # one file: weights + config
        print(f"shipped {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
