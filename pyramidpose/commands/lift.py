"""``pyramidpose lift``: 2D-to-3D lifting.

    pyramidpose lift train CONFIG --work-dir DIR        train a lifter (configs/lift_*.yaml)
    pyramidpose lift eval [--weights W] --out metrics.json
                                                        CMU protocol (train 01+02, test 03): model
                                                        and baselines (default: embedded lifter)
    pyramidpose lift PRED.jsonl --out DIR [--width W --height H] [--weights W]
                                                        lift 2D tracks from 'pyramidpose predict'
                                                        to 3D: DIR/lift3d.json + DIR/lift3d.mp4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyramidpose.commands._args import (
    ArgumentParser,
    positive_float,
    positive_int,
    run_subcommands,
    unit_float,
)

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "assets" / "lifter_default.safetensors"


def _train_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="pyramidpose lift train", description="Train a 2D-to-3D lifter on CMU mocap.")
    p.add_argument("config", help="YAML experiment config (see configs/lift_*.yaml)")
    p.add_argument("--work-dir", required=True, help="output directory (checkpoints, metrics.csv, curves)")
    p.add_argument("--data-root", default=None, help="cmu-mocap directory (overrides data.root)")
    p.add_argument("--steps", type=positive_int, default=None, help="override trainer.steps_per_epoch")
    p.add_argument("--epochs", type=positive_int, default=None, help="override trainer.epochs")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (1 is fastest on a busy CPU)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda")
    return p


def _eval_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="pyramidpose lift eval",
                                description="MPJPE / P-MPJPE / N-MPJPE on CMU subject 03 (virtual cameras, "
                                            "fixed seed), with the mean-pose and nearest-neighbour baselines.")  # fmt: skip
    p.add_argument("--weights", default=None, help="lifter .safetensors weights file; default: embedded")
    p.add_argument("--out", required=True, help="metrics JSON to write")
    p.add_argument("--data-root", default=None, help="cmu-mocap directory")
    p.add_argument("--no-baselines", action="store_true", help="skip the two baselines")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    return p


def _predict_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="pyramidpose lift",
                                description="Lift COCO-17 2D tracks (JSON lines from 'pyramidpose predict') to 3D.")
    p.add_argument("predictions", help="JSONL: one {frame, time, instances:[{track_id, keypoints, ...}]} per line")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--weights", default=None, help="lifter .safetensors (default: embedded)")
    p.add_argument("--width", type=positive_float, default=None,
                   help="image width in pixels (default: from the JSONL header, else normalise per track)")
    p.add_argument("--height", type=positive_float, default=None, help="image height in pixels")
    p.add_argument("--format", choices=("mp4", "gif", "none"), default="mp4", help="animation format")
    p.add_argument("--min-frames", type=positive_int, default=1, help="skip tracks shorter than this")
    p.add_argument("--min-keypoint-score", type=unit_float, default=0.2,
                   help="joints scoring below this are interpolated over the track's confident frames (0: off)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_subcommands(
        argv, "lift", __doc__, _predict_parser, _predict, _train_parser, _train, _eval_parser, _eval
    )


def _train(args: argparse.Namespace) -> int:
    from pyramidpose.lifting.experiment import LiftExperimentConfig, train_lifter
    from pyramidpose.training.config import load_yaml_config

    cfg = load_yaml_config(args.config, LiftExperimentConfig)
    if args.data_root:
        cfg.data.root = args.data_root
    if args.steps:
        cfg.trainer.steps_per_epoch = args.steps
    if args.epochs:
        cfg.trainer.epochs = args.epochs
    if args.threads:
        cfg.trainer.num_threads = args.threads
    if args.device:
        cfg.trainer.device = args.device
    res = train_lifter(cfg, args.work_dir)
    print(f"best val_mpjpe_mm {res.best_metric:.1f} at epoch {res.best_epoch}; checkpoint {res.best_checkpoint}")
    return 0


def _weights(path: str | None) -> Path:
    from pyramidpose.errors import CheckpointError

    p = Path(path) if path else DEFAULT_WEIGHTS
    if not p.is_file():
        raise CheckpointError(f"{p}: lifter weights not found" + ("" if path else
                              " (the embedded default is missing from this install)") + ".")  # fmt: skip
    return p


def _eval(args: argparse.Namespace) -> int:
    import torch

    from pyramidpose.lifting.data import make_eval_set
    from pyramidpose.lifting.experiment import (
        LiftDataConfig,
        baseline_metrics,
        evaluate_model,
        load_lift_data,
        load_lifter,
    )
    from pyramidpose.training.config import dataclass_from_dict
    from pyramidpose.utils.io import write_json_atomic

    if args.threads:
        torch.set_num_threads(args.threads)
    weights = _weights(args.weights)
    model, meta = load_lifter(weights)
    data_dict = dict(meta.get("experiment", {}).get("data", {}))
    dcfg = dataclass_from_dict(LiftDataConfig, data_dict, where=f"{weights}:experiment.data")
    if args.data_root:
        dcfg.root = args.data_root
    elif dcfg.root and not Path(dcfg.root).is_dir():
        dcfg.root = ""  # a path from the training machine: fall back to the default location
    data = load_lift_data(dcfg)
    test = make_eval_set(data.test, dcfg.eval_camera, seed=dcfg.eval_seed, cameras_per_seq=dcfg.eval_cameras_per_seq)
    metrics = evaluate_model(model, test, "cpu")
    if not args.no_baselines:
        metrics.update(baseline_metrics(data, dcfg, test))
    metrics.update({"weights": str(weights), "test_subjects": dcfg.test_subjects, "train_subjects": dcfg.train_subjects,
                    "test_frames": int(sum(len(s.x2d) for s in test)), "fps": dcfg.fps})  # fmt: skip
    write_json_atomic(args.out, metrics, indent=2)
    for k in ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm"):
        line = f"{k:12s} model {metrics[k]:7.1f}"
        if not args.no_baselines:
            line += f"   mean pose {metrics['mean_pose_' + k]:7.1f}   nearest neighbour {metrics['nearest_neighbour_' + k]:7.1f}"
        print(line)
    print(f"wrote {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from pyramidpose.errors import DataError
    from pyramidpose.lifting.experiment import load_lifter
    from pyramidpose.lifting.tracks import lift_tracks, read_tracks, render_animation
    from pyramidpose.utils.io import write_json_atomic

    if (args.width is None) != (args.height is None):
        raise DataError("give both --width and --height, or neither (then each track is normalised by its own size)")
    if args.width is None:  # the video's size from the JSONL header written by 'pyramidpose predict'
        from pyramidpose.lifting.tracks import read_video_header

        header = read_video_header(args.predictions)
        w, h = header.get("width"), header.get("height")
        if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0:
            args.width, args.height = float(w), float(h)
    weights = _weights(args.weights)
    model, meta = load_lifter(weights)
    tracks, problems = read_tracks(args.predictions)
    results, more = lift_tracks(model, tracks, model_fps=float(meta.get("fps", 30.0)), width=args.width,
                                height=args.height, min_frames=args.min_frames,
                                min_keypoint_score=args.min_keypoint_score)  # fmt: skip
    problems += more
    out = Path(args.out)
    doc = {
        "source": str(args.predictions),
        "weights": str(weights),
        "layout": "h36m",
        "joints": list(__import__("pyramidpose.skeletons", fromlist=["H36M"]).H36M.keypoints),
        "units": "meters, root-relative (pelvis at 0), camera frame: x right, y down, z away from camera",
        "tracks": results,
        "problems": problems,
    }
    write_json_atomic(out / "lift3d.json", doc)
    print(f"lifted {len(results)} track(s) -> {out / 'lift3d.json'}")
    if args.format != "none" and results:
        times = [t for r in results for t in (r["times"] or [])]
        fps = 10.0
        if len(times) > 1:
            span = max(times) - min(times)
            nfr = len({f for r in results for f in r["frames"]})
            fps = (nfr - 1) / span if span > 0 else 10.0
        path = render_animation(results, out / f"lift3d.{args.format}", fps=fps)
        print(f"animation -> {path}")
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    return 0
