"""``pyramidpose forecast``: train, evaluate, or forecast a motion sequence.

    pyramidpose forecast train CONFIG [CONFIG ...] --work-dir DIR
    pyramidpose forecast eval [--weights W] [--data ROOT] [--subjects 03] --out metrics.json
    pyramidpose forecast SEQUENCE --out DIR [--weights W] [--asf ASF] [--start F] [--fps FPS]

SEQUENCE is a CMU AMC file (its ASF skeleton found beside it, or given with --asf) or a ``.npy``
array ``[F, 17, 3]`` (H36M-17 joints, meters) or ``[F, 17, 2]`` (H36M-17 2D keypoints). Without
--weights the embedded default forecaster is used (the 2D one for 2D input).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from pyramidpose.commands._args import ArgumentParser, nonneg_int, positive_float, run_subcommands

MAX_UPSAMPLING = 100  # largest factor --fps may ask the resampler to multiply the frames by


def _train_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pyramidpose forecast train",
        description="Train forecasters from YAML configs (train subjects 01+02, best epoch on their "
        "validation tails) and evaluate each on the held-out test subject. With several configs, "
        "also write a comparison table (results.md, results.json) into --work-dir.",
    )
    p.add_argument("configs", nargs="+", type=Path, metavar="CONFIG", help="experiment YAML file(s)")
    p.add_argument("--work-dir", type=Path, required=True, help="output directory")
    p.add_argument("--data", type=Path, default=None, help="CMU mocap directory (overrides data.root)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _eval_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pyramidpose forecast eval",
        description="Per-horizon MPJPE (mm) of a forecaster and of the zero-velocity and constant-velocity "
        "baselines on held-out CMU subjects.",
    )
    p.add_argument("--weights", type=Path, default=None, help="forecaster .safetensors (default: embedded)")
    p.add_argument("--data", type=Path, default=None, help="CMU mocap directory (default: $PYRAMIDPOSE_DATA/cmu-mocap, PYRAMIDPOSE_DATA defaulting to ../shared/data)")
    p.add_argument(
        "--subjects", nargs="+", default=None, help="test subjects (default: the checkpoint's, 03)"
    )
    p.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _sequence_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pyramidpose forecast",
        description="Forecast future poses of a motion sequence and draw them. Subcommands: "
        "'train CONFIG... --work-dir DIR', 'eval [--weights W] --out metrics.json'.",
    )
    p.add_argument("sequence", type=Path, metavar="SEQUENCE",
                   help="CMU .amc file (ASF beside it or --asf), or .npy [F, 17, 3] / [F, 17, 2] (H36M-17)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--weights", type=Path, default=None,
                   help="forecaster .safetensors (default: the embedded 3D one, or the 2D one for 2D input)")  # fmt: skip
    p.add_argument("--asf", type=Path, default=None, help="ASF skeleton of an AMC sequence")
    p.add_argument("--start", type=nonneg_int, default=None,
                   help="first observed frame (at the model's fps); default: the middle of the sequence")  # fmt: skip
    p.add_argument("--fps", type=positive_float, default=None,
                   help="frame rate of a .npy sequence (default: the model's, no resampling)")  # fmt: skip
    p.add_argument("--animation", choices=("gif", "mp4", "none"), default="gif", help="animation format")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_subcommands(
        argv, "forecast", __doc__, _sequence_parser, _forecast, _train_parser, _train, _eval_parser, _eval
    )


def _train(args: argparse.Namespace) -> int:
    from pyramidpose.forecasting.train import load_experiment_config, results_table, train_experiment
    from pyramidpose.utils.io import write_json_atomic, write_text_atomic

    cfgs = [load_experiment_config(c) for c in args.configs]
    names = [c.name for c in cfgs]
    if len(set(names)) != len(names):
        from pyramidpose.errors import ConfigError

        raise ConfigError(f"configs must have distinct names to share a work dir, got {names}")
    results = []
    for path, cfg in zip(args.configs, cfgs):
        if args.data is not None:
            cfg.data.root = str(args.data)
        work = args.work_dir if len(cfgs) == 1 else args.work_dir / cfg.name
        print(f"[{cfg.name}] training from {path} into {work}", flush=True)
        r = train_experiment(cfg, work, progress=not args.no_progress)
        results.append(r)
        print(f"[{cfg.name}] test subjects {r['subjects']}: "
              + ", ".join(f"{k[9:]} {v:.1f} mm" for k, v in r.items() if k.startswith("model_mm_")), flush=True)  # fmt: skip
    table = results_table(results)
    write_json_atomic(args.work_dir / "results.json", results, indent=2)
    write_text_atomic(
        args.work_dir / "results.md", f"MPJPE (mm) on held-out subject(s) {results[0]['subjects']}\n\n{table}"
    )
    print(table)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pyramidpose.forecasting.data import ForecastDataConfig, load_test_sequences
    from pyramidpose.forecasting.train import DEFAULT_WEIGHTS, evaluate_windows, load_forecaster
    from pyramidpose.forecasting.windows import MotionWindows
    from pyramidpose.paths import cmu_mocap_root
    from pyramidpose.utils.device import resolve_device
    from pyramidpose.utils.io import write_json_atomic

    model, meta = load_forecaster(args.weights)
    d = meta["data"]
    subjects = args.subjects or d.get("test_subjects", ["03"])
    root = args.data or cmu_mocap_root()
    cfg = ForecastDataConfig(root=str(root), test_subjects=list(subjects), train_subjects=[],
                             fps=float(d["fps"]), t_in=int(d["t_in"]), t_out=int(d["t_out"]), dims=int(d["dims"]))  # fmt: skip
    windows = MotionWindows(load_test_sequences(cfg, progress=not args.no_progress), cfg.t_in, cfg.t_out, 1)
    device = resolve_device(args.device)
    model.to(device)
    metrics = evaluate_windows(windows, model, cfg.fps, device)
    overlap = sorted(set(subjects) & set(d.get("train_subjects", [])))
    out = {
        "weights": str(args.weights or DEFAULT_WEIGHTS),
        "model_name": meta.get("name", ""),
        "subjects": list(subjects),
        "fps": cfg.fps,
        "t_in": cfg.t_in,
        "t_out": cfg.t_out,
        **metrics,
    }
    if overlap:
        out["warning"] = f"subjects {overlap} were used for training this model"
    write_json_atomic(args.out, out, indent=2)
    from pyramidpose.forecasting.metrics import HORIZONS_MS

    horizons = [ms for ms in HORIZONS_MS if f"model_mm_{ms}" in metrics]
    print(f"{int(metrics['num_windows'])} windows of subjects {list(subjects)}; MPJPE (mm):")
    print("  " + "".join(f"{ms:>8}" for ms in horizons) + "  ms")
    for name in ("model", "zero_velocity", "constant_velocity"):
        print("  " + "".join(f"{metrics[f'{name}_mm_{ms}']:8.1f}" for ms in horizons) + f"  {name}")
    if overlap:
        print(f"warning: {out['warning']}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 0


def _load_sequence(args: argparse.Namespace, fps: float, dims: int):
    """The input as model-space poses ``[F, 17, dims]`` plus a function mapping back to input space."""
    import numpy as np

    from pyramidpose.errors import DataError
    from pyramidpose.forecasting.data import ROOT_JOINT, THORAX_JOINT, TORSO_2D_M, to_2d
    from pyramidpose.forecasting.windows import center_on_joint, resample_linear
    from pyramidpose.utils.npyio import load_npy

    path: Path = args.sequence
    if not path.is_file():
        raise DataError(f"{path}: sequence file not found.")
    suffix = path.suffix.lower()
    if suffix == ".amc":
        from pyramidpose.data.mocap import load_cmu_sequence

        asf = args.asf
        if asf is None:
            cands = [path.parent / f"{path.stem.split('_')[0]}.asf"]
            cands += sorted(path.parent.glob("*.asf"))
            asf = next((c for c in cands if c.is_file()), None)
            if asf is None:
                raise DataError(f"{path}: no ASF skeleton beside it; pass it with --asf.")
        poses = load_cmu_sequence(asf, path, fps=fps).astype(np.float32)
        poses = center_on_joint(poses, ROOT_JOINT)
        if dims == 2:
            poses = to_2d(poses)
        return poses, lambda x: x, "meters"
    if suffix != ".npy":
        raise DataError(f"{path}: unsupported sequence type '{suffix}'; use a CMU .amc file or a .npy array.")
    arr = load_npy(path)
    if (
        arr.ndim != 3
        or arr.shape[1] != 17
        or arr.shape[2] not in (2, 3)
        or not np.issubdtype(arr.dtype, np.number)
    ):
        raise DataError(f"{path}: expected a numeric array [F, 17, 3] (H36M-17 joints, meters) or [F, 17, 2] "
                        f"(H36M-17 2D keypoints), got {arr.dtype} {arr.shape}.")  # fmt: skip
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise DataError(
            f"{path}: the array contains NaN or infinite values; fill or cut missing frames first."
        )
    if arr.shape[2] != dims:
        raise DataError(f"{path}: a {arr.shape[2]}D sequence needs a {arr.shape[2]}D forecaster, but the "
                        f"{'given' if args.weights else 'embedded default'} one predicts {dims}D poses; "
                        f"pass --weights with a model trained with data.dims: {arr.shape[2]}.")  # fmt: skip
    if args.fps is not None and args.fps != fps:
        if fps / args.fps > MAX_UPSAMPLING:  # bounded work: the output may be at most 100x the input
            raise DataError(f"--fps {args.fps:g}: resampling to the model's {fps:g} fps would multiply the "
                            f"frames by {fps / args.fps:.3g} (at most {MAX_UPSAMPLING}); is --fps right?")  # fmt: skip
        arr = resample_linear(arr, args.fps, fps)
    root = arr[:, ROOT_JOINT : ROOT_JOINT + 1].copy()
    rel = arr - root
    if dims == 2:  # pixels -> model units by the torso length (pelvis-thorax) the model was trained on
        torso = float(np.median(np.linalg.norm(rel[:, THORAX_JOINT], axis=-1)))
        if torso <= 0:
            raise DataError(f"{path}: pelvis and thorax coincide; cannot normalise the 2D scale.")
        scale = torso / TORSO_2D_M
        return rel / scale, lambda x: x * scale, "pixels"
    return rel, lambda x: x, "meters"


def _input_dims(path: Path) -> int | None:
    """2 or 3 for a readable .npy of shape [F, K, 2|3], 3 for AMC files, else None (checked later)."""
    if path.suffix.lower() == ".amc":
        return 3
    from pyramidpose.errors import DataError
    from pyramidpose.utils.npyio import read_npy_header

    try:
        shape, _ = read_npy_header(path)
    except DataError:
        return None
    return int(shape[-1]) if len(shape) == 3 else None


def _save_npy(path: Path, arr) -> None:
    import io

    import numpy as np

    from pyramidpose.utils.io import write_bytes_atomic

    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=np.float32))
    write_bytes_atomic(path, buf.getvalue())


def _forecast(args: argparse.Namespace) -> int:

    from pyramidpose.errors import DataError
    from pyramidpose.forecasting.baselines import BASELINES, run_baseline
    from pyramidpose.forecasting.metrics import horizon_mpjpe, mpjpe_per_frame
    from pyramidpose.forecasting.train import (
        DEFAULT_WEIGHTS_2D,
        error_joints,
        load_forecaster,
        predict_windows,
    )
    from pyramidpose.forecasting.viz import animate_forecast, plot_forecast
    from pyramidpose.utils.io import write_json_atomic

    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise DataError(f"--fps {args.fps:g}: give the sequence's frame rate, a positive finite number.")
    weights = args.weights
    if weights is None and _input_dims(args.sequence) == 2 and DEFAULT_WEIGHTS_2D.is_file():
        weights = DEFAULT_WEIGHTS_2D
    model, meta = load_forecaster(weights)
    d = meta["data"]
    fps, t_in, t_out, dims = float(d["fps"]), int(d["t_in"]), int(d["t_out"]), int(d["dims"])
    poses, to_input, unit = _load_sequence(args, fps, dims)
    n = poses.shape[0]
    if n < t_in:
        raise DataError(f"{args.sequence}: {n} frames at {fps:g} fps, but the model observes {t_in} frames "
                        f"({t_in / fps:.1f} s); use a longer sequence.")  # fmt: skip
    start = args.start if args.start is not None else max(0, (n - t_in - t_out) // 2)
    if not 0 <= start <= n - t_in:
        raise DataError(
            f"--start {start} out of range: the sequence has {n} frames and the model observes {t_in}."
        )
    obs = poses[start : start + t_in]
    fut = poses[start + t_in : start + t_in + t_out]
    future = fut if len(fut) == t_out else None
    pred = predict_windows(model, obs[None])[0]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"sequence": str(args.sequence), "start_frame": start, "fps": fps, "t_in": t_in,
                     "t_out": t_out, "unit": unit, "true_future_known": future is not None}  # fmt: skip
    o_in, p_in = to_input(obs), to_input(pred)
    f_in = to_input(future) if future is not None else None
    errors = None
    if f_in is not None:  # errors in the input's unit (mm for meters, pixels for 2D keypoints)
        scale = 1000.0 if unit == "meters" else 1.0
        joints = error_joints(obs.shape[1])
        errors = {"model": mpjpe_per_frame(p_in, f_in, joints) * scale}
        summary["model_error"] = horizon_mpjpe(p_in, f_in, fps, joints=joints, scale=scale)
        for b in BASELINES:
            p = to_input(run_baseline(b, obs, t_out))
            errors[b.replace("_", "-")] = mpjpe_per_frame(p, f_in, joints) * scale
            summary[f"{b}_error"] = horizon_mpjpe(p, f_in, fps, joints=joints, scale=scale)
        summary["error_unit"] = "mm" if unit == "meters" else "pixels"
    _save_npy(out / "observed.npy", o_in)
    _save_npy(out / "predicted.npy", p_in)
    if f_in is not None:
        _save_npy(out / "true_future.npy", f_in)
    title = f"{args.sequence.name}: frames {start}-{start + t_in - 1} observed, next {t_out} predicted"
    plot_forecast(o_in, p_in, out / "forecast.png", fps, future=f_in, errors_mm=errors, title=title)
    files = ["forecast.png", "observed.npy", "predicted.npy"] + (
        ["true_future.npy"] if f_in is not None else []
    )
    if args.animation != "none":
        name = f"forecast.{args.animation}"
        animate_forecast(o_in, p_in, out / name, fps, future=f_in)
        files.append(name)
    summary["files"] = files
    write_json_atomic(out / "forecast.json", summary, indent=2)
    print(f"observed frames {start}-{start + t_in - 1} ({t_in / fps:.1f} s), predicted {t_out} frames "
          f"({t_out / fps:.1f} s) at {fps:g} fps")  # fmt: skip
    if "model_error" in summary:
        u = summary["error_unit"]
        for key in ("model_error", "zero_velocity_error", "constant_velocity_error"):
            print(f"  {key[:-6]:>17}: " + ", ".join(f"{ms} ms {v:.1f} {u}" for ms, v in summary[key].items()))
    print(f"wrote {', '.join(files + ['forecast.json'])} to {out}")
    return 0
