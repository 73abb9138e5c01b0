"""``pyramidpose ablate``: train several configs with the same data, budget and seeds, then compare.

For every config and seed the model is trained with :func:`pyramidpose.training.engine.train` (same
``--max-steps`` and seed for every variant), evaluated on the config's validation set (COCO keypoint
AP with pycocotools, PCK@0.2), and measured (parameters and GFLOPs at 256x192 counted by
``torch.utils.flop_counter.FlopCounterMode``, CPU latency per crop). The results go to
``DIR/ablation.csv``, ``DIR/ablation.md`` (mean and spread over seeds) and ``DIR/ablation.png``.
A variant that fails (bad config, crash) is a ``failed`` row with its error, never dropped. Finished
runs (``DIR/<variant>/seed<k>/result.json``) are reused, so an interrupted ablation can be re-run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyramidpose.commands._args import ArgumentParser, nonneg_int, positive_int

METRICS = ("AP", "AP50", "AP75", "APm", "APl", "PCK@0.2")
STATS_SIZE = (256, 192)


@dataclass
class VariantResult:
    """Aggregated outcome of one config over all seeds."""

    name: str
    config: str
    status: str = "ok"  # ok | partial | failed
    neck: str = ""
    seeds: list[int] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # one per seed: metrics or error
    stats: dict[str, Any] = field(default_factory=dict)  # params_m, gflops, latency_ms
    error: str = ""

    def ok_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r.get("status") == "ok"]

    def mean_std(self, key: str) -> tuple[float, float]:
        # a metric with no data (NaN) is stored as null in result.json: left out like NaN
        vals = [float(v) for r in self.ok_runs() if (v := r.get("metrics", {}).get(key)) is not None]
        vals = [v for v in vals if math.isfinite(v)]
        if not vals:
            return float("nan"), float("nan")
        mean = sum(vals) / len(vals)
        if len(vals) < 2:
            return mean, float("nan")
        var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
        return mean, math.sqrt(var)


# ---------------------------------------------------------------------------------------------
# one run


def _variant_name(path: Path, taken: set[str]) -> str:
    name, k = path.stem, 2
    while name in taken:
        name, k = f"{path.stem}_{k}", k + 1
    taken.add(name)
    return name


def _neck_label(cfg: Any) -> str:
    neck = cfg.model.neck
    if neck is None:
        return f"none ({cfg.model.head} head)"
    parts = [neck.type]
    if neck.fuse != "add":
        parts.append(neck.fuse)
    if neck.aux_weight > 0:
        parts.append(f"aux {neck.aux_weight}")
    return " + ".join(parts)


def build_model_from_config(cfg: Any) -> Any:
    """The untrained model a training config describes (exactly what the engine trains)."""
    from pyramidpose.training.engine import build_model

    return build_model(cfg)


def measure_model(cfg: Any, latency_runs: int = 10) -> dict[str, Any]:
    """Parameters (M), GFLOPs at 256x192 (FlopCounterMode) and 1-thread CPU latency per crop (ms)."""
    from pyramidpose.evaluation.model_stats import count_gflops, count_params, cpu_latency_ms

    model = build_model_from_config(cfg).eval()
    stats: dict[str, Any] = {
        "params_m": count_params(model) / 1e6,
        "gflops": count_gflops(model, STATS_SIZE),
    }
    if latency_runs > 0:
        # one thread: stable on a shared machine (multi-thread timings collapse when cores are busy)
        lat = cpu_latency_ms(model, STATS_SIZE, runs=latency_runs, threads=1)
        stats["latency_ms"], stats["latency_min_ms"] = lat["median"], lat["min"]
        stats["cpu_ms"] = lat["cpu_median"]
    return stats


def default_train(cfg: Any, run_dir: Path, max_steps: int | None, seed: int) -> dict[str, Any]:
    """Train with the project's engine (its own validation switched off: :func:`default_evaluate`
    evaluates once, with more metrics); returns the engine's summary dict."""
    import copy

    from pyramidpose.training.engine import train

    cfg = copy.deepcopy(cfg)
    cfg.eval.interval = 0
    return train(cfg, run_dir, max_steps=max_steps, seed=seed)


def default_evaluate(cfg: Any, run_dir: Path, train_summary: dict[str, Any]) -> dict[str, float]:
    """COCO AP, AP50, AP75, APm, APl and PCK@0.2 of the trained model on the config's validation set.

    Uses the engine's validation dataset and prediction (ground-truth or ``data.val_detections``
    boxes, flip test as configured) and writes ``run_dir/val_results.json``.
    """
    import torch

    from pyramidpose.data.coco import read_json
    from pyramidpose.errors import ConfigError
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval
    from pyramidpose.evaluation.metrics import pck_bbox_per_axis
    from pyramidpose.models.checkpoints import load_model
    from pyramidpose.training.engine import check_data_paths, make_dataset
    from pyramidpose.training.validation import predict_instances
    from pyramidpose.utils.io import write_json_atomic

    if not cfg.data.val_ann:
        raise ConfigError(f"{run_dir.name}: the config has no data.val_ann to evaluate on")
    model_path = Path(train_summary.get("model_path") or run_dir / "model_last.safetensors")
    device = "cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu"
    model = load_model(model_path, device=device)
    paths = check_data_paths(cfg)
    val_ds = make_dataset(cfg, False, paths)
    results, _bad = predict_instances(
        model, val_ds, cfg.eval.batch_size, cfg.eval.flip_test, device, cfg.train.amp,
    )
    write_json_atomic(run_dir / "val_results.json", results)
    kset = val_ds.kpt_set
    sigmas = kset.sigmas_array() if kset.sigmas is not None else None
    gt = read_json(Path(val_ds.ann_file), "validation annotations")
    if results:
        stats = coco_keypoint_eval(gt, results, sigmas=sigmas)
    else:
        stats = {k: 0.0 for k in ("AP", "AP50", "AP75", "APm", "APl")}
    metrics = {k: (float(stats[k]) if float(stats[k]) >= 0 else float("nan")) for k in ("AP", "AP50", "AP75", "APm", "APl")}
    metrics["PCK@0.2"] = pck_bbox_per_axis(gt, results, 0.2, sigmas)["pck"]
    return metrics


def _isolated_run(cfg: Any, run_dir: Path, max_steps: int | None, seed: int) -> None:
    """Child-process body of an isolated run (default training and evaluation)."""
    run_one(cfg, run_dir, max_steps, seed, default_train, default_evaluate, reuse=False, isolate=False)


def _run_in_subprocess(cfg: Any, run_dir: Path, max_steps: int | None, seed: int) -> dict[str, Any]:
    """Run one (config, seed) in a fresh ``spawn`` process and read back its ``result.json``.

    Every run starts from a clean interpreter (no thread pools, seeds, or memory left over by the
    previous variant), and a hard crash (segfault, out of memory) becomes a failed row.
    """
    import multiprocessing as mp

    result_file = run_dir / "result.json"
    result_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = mp.get_context("spawn").Process(target=_isolated_run, args=(cfg, run_dir, max_steps, seed))
    proc.start()
    try:
        proc.join()
    except BaseException:
        proc.terminate()
        proc.join(10)
        raise
    if result_file.is_file():
        return json.loads(result_file.read_text(encoding="utf-8"))
    return {
        "seed": seed,
        "max_steps": max_steps,
        "status": "failed",
        "error": f"the training process died with exit code {proc.exitcode} and wrote no result",
        "train_time_s": time.perf_counter() - t0,
    }


def run_one(
    cfg: Any,
    run_dir: Path,
    max_steps: int | None,
    seed: int,
    train_fn: Callable[..., dict[str, Any]],
    eval_fn: Callable[..., dict[str, float]],
    reuse: bool = True,
    isolate: bool = False,
) -> dict[str, Any]:
    """Train + evaluate one (config, seed); never raises: errors become ``status: failed``.

    ``isolate=True`` runs the default training and evaluation in a separate spawned process.
    """
    from pyramidpose.utils.io import write_json_atomic

    result_file = run_dir / "result.json"
    if reuse and result_file.is_file():
        try:
            old = json.loads(result_file.read_text(encoding="utf-8"))
            if old.get("status") == "ok" and old.get("max_steps") == max_steps and old.get("seed") == seed:
                old["reused"] = True
                return old
        except (OSError, ValueError):
            pass
    if isolate:
        run_dir.mkdir(parents=True, exist_ok=True)
        return _run_in_subprocess(cfg, run_dir, max_steps, seed)
    record: dict[str, Any] = {"seed": seed, "max_steps": max_steps}
    t0 = time.perf_counter()
    try:
        summary = train_fn(cfg, run_dir, max_steps, seed)
        record["train_time_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        record["metrics"] = {k: float(v) for k, v in eval_fn(cfg, run_dir, summary or {}).items()}
        record["eval_time_s"] = time.perf_counter() - t1
        record["status"] = "ok"
    except Exception as exc:  # a failed variant is a row in the table, not a crash of the ablation
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=8)
        record["train_time_s"] = time.perf_counter() - t0
    write_json_atomic(result_file, record, indent=2)
    return record


def run_ablation(
    configs: Sequence[str | Path],
    work_dir: str | Path,
    max_steps: int | None = None,
    seeds: Sequence[int] = (0,),
    overrides: Sequence[str] = (),
    latency_runs: int = 10,
    train_fn: Callable[..., dict[str, Any]] | None = None,
    eval_fn: Callable[..., dict[str, float]] | None = None,
    reuse: bool = True,
    progress: bool = True,
    isolate: bool | None = None,
) -> list[VariantResult]:
    """Train/evaluate/measure every config for every seed and write the table files into ``work_dir``.

    ``train_fn(cfg, run_dir, max_steps, seed)`` and ``eval_fn(cfg, run_dir, train_summary)`` default
    to the project's engine; with the defaults each run is isolated in its own process (``isolate``).
    """
    if isolate is None:
        isolate = train_fn is None and eval_fn is None
    from tqdm import tqdm

    from pyramidpose.errors import PyramidPoseError
    from pyramidpose.training.config import load_config

    train_fn = train_fn or default_train
    eval_fn = eval_fn or default_evaluate
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    variants: list[tuple[VariantResult, Any]] = []
    for c in configs:
        path = Path(c)
        res = VariantResult(name=_variant_name(path, taken), config=str(c), seeds=list(seeds))
        cfg = None
        try:
            cfg = load_config(path, list(overrides))
            res.neck = _neck_label(cfg)
            # build + measure first: a config whose model cannot be built fails before any training
            res.stats = measure_model(cfg, latency_runs)
        except PyramidPoseError as exc:
            res.status, res.error, cfg = "failed", str(exc), None
        except Exception as exc:  # noqa: BLE001 - reported as a failed row
            res.status, res.error, cfg = "failed", f"{type(exc).__name__}: {exc}", None
        variants.append((res, cfg))

    jobs = [(res, cfg, s) for res, cfg in variants if cfg is not None for s in seeds]
    bar = tqdm(total=len(jobs), desc="ablation", unit="run", disable=not progress)
    for res, cfg, seed in jobs:
        bar.set_postfix_str(f"{res.name} seed {seed}")
        run = run_one(cfg, work_dir / res.name / f"seed{seed}", max_steps, seed, train_fn, eval_fn, reuse, isolate)
        res.runs.append(run)
        bar.update(1)
        _write_outputs([v for v, _ in variants], work_dir, max_steps, seeds)  # partial tables as we go
    bar.close()

    for res, cfg in variants:
        if cfg is None:
            continue
        n_ok = len(res.ok_runs())
        if n_ok == 0:
            res.status = "failed"
            errs = sorted({r.get("error", "") for r in res.runs})
            res.error = (res.error + "; " if res.error else "") + " | ".join(e for e in errs if e)
        elif n_ok < len(res.runs):
            res.status = "partial"
            res.error = " | ".join(
                f"seed {r['seed']}: {r.get('error', '')}" for r in res.runs if r.get("status") != "ok"
            )
    results = [v for v, _ in variants]
    _write_outputs(results, work_dir, max_steps, seeds, final=True)
    return results


# ---------------------------------------------------------------------------------------------
# outputs


def _fmt(v: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def _pm(mean: float, std: float, scale: float = 100.0) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(std):
        return f"{mean * scale:.1f}"
    return f"{mean * scale:.1f} ± {std * scale:.1f}"


def to_csv(results: Sequence[VariantResult]) -> str:
    """One row per variant: status, mean/std of every metric (fractions), cost figures, error."""
    buf = io.StringIO()
    cols = ["variant", "config", "neck", "status", "seeds", "runs_ok"]
    for m in METRICS:
        cols += [f"{m}_mean", f"{m}_std"]
    cols += [
        "params_m", "gflops_256x192", "cpu_time_ms", "wall_latency_ms", "wall_latency_min_ms",
        "train_time_s_mean", "error",
    ]  # fmt: skip
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in results:
        row: list[Any] = [r.name, r.config, r.neck, r.status, " ".join(map(str, r.seeds)), len(r.ok_runs())]
        for m in METRICS:
            mean, std = r.mean_std(m)
            row += ["" if not math.isfinite(mean) else f"{mean:.5f}", "" if not math.isfinite(std) else f"{std:.5f}"]
        times = [x["train_time_s"] for x in r.ok_runs() if "train_time_s" in x]
        row += [
            f"{r.stats['params_m']:.3f}" if "params_m" in r.stats else "",
            f"{r.stats['gflops']:.3f}" if "gflops" in r.stats else "",
            f"{r.stats['cpu_ms']:.1f}" if "cpu_ms" in r.stats else "",
            f"{r.stats['latency_ms']:.1f}" if "latency_ms" in r.stats else "",
            f"{r.stats['latency_min_ms']:.1f}" if "latency_min_ms" in r.stats else "",
            f"{sum(times) / len(times):.1f}" if times else "",
            r.error.replace("\n", " "),
        ]
        w.writerow(row)
    return buf.getvalue()


def to_markdown(
    results: Sequence[VariantResult], max_steps: int | None, seeds: Sequence[int], final: bool = True
) -> str:
    """The comparison table (metrics in %, mean ± sample std over seeds) with the budget stated."""
    budget = f"{max_steps} optimiser steps" if max_steps else "the configs' full schedules"
    lines = [
        "| variant | neck | AP | AP50 | AP75 | APm | APl | PCK@0.2 | params (M) | GFLOPs 256x192 | CPU ms/crop | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = [r.name, r.neck or "?"]
        for m in METRICS:
            cells.append(_pm(*r.mean_std(m)))
        cells.append(_fmt(r.stats.get("params_m", float("nan")), 2))
        cells.append(_fmt(r.stats.get("gflops", float("nan")), 2))
        cells.append(_fmt(r.stats.get("cpu_ms", float("nan")), 1))
        status = r.status if final else f"{len(r.ok_runs())}/{len(r.runs)} runs"
        if r.error:
            status += ": " + r.error.replace("|", "/").replace("\n", " ")[:200]
        cells.append(status)
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"Budget: {budget} per run, seeds {', '.join(map(str, seeds))} (same data, budget and seeds for "
        "every variant). Metrics in %, mean ± sample standard deviation over seeds.",
        "AP/AP50/AP75/APm/APl: COCO keypoint AP (pycocotools) on the config's validation set; PCK@0.2: "
        "labelled keypoints within 0.2 of the box size (per-axis box normalisation).",
        "Params and GFLOPs counted by torch.utils.flop_counter.FlopCounterMode on one 256x192 crop "
        "(a multiply-add counts 2 FLOPs); CPU ms/crop: median CPU time of one fp32 batch-1 forward pass on 1 "
        "thread (process time, so other load on the machine does not inflate it; wall times are in the CSV).",
    ]
    if not final:
        notes.insert(0, "\n(partial: the ablation is still running)")
    return "\n".join(lines + notes) + "\n"


def plot(results: Sequence[VariantResult], path: Path) -> None:
    """Bar chart: AP (mean ± std) per variant, and GFLOPs beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyramidpose.utils.io import atomic_path

    names = [r.name for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(4 + 2.2 * len(results), 4.2))
    for ax, key, title in ((axes[0], "AP", "COCO AP (%)"), (axes[1], "PCK@0.2", "PCK@0.2 (%)")):
        means, stds, colors = [], [], []
        for r in results:
            m, s = r.mean_std(key)
            means.append(m * 100 if math.isfinite(m) else 0.0)
            stds.append(s * 100 if math.isfinite(s) else 0.0)
            colors.append("tab:blue" if r.status == "ok" else ("tab:orange" if r.status == "partial" else "tab:red"))
        ax.bar(names, means, yerr=stds, capsize=4, color=colors)
        for i, r in enumerate(results):
            if r.status == "failed":
                ax.text(i, 0, "failed", ha="center", va="bottom", color="tab:red", rotation=90)
        ax.set_ylim(bottom=0)
        ax.set_title(title)
    gf = [r.stats.get("gflops", 0.0) for r in results]
    axes[2].bar(names, gf, color="tab:gray")
    axes[2].set_title("GFLOPs at 256x192")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        for lbl in ax.get_xticklabels():
            lbl.set_ha("right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _write_outputs(
    results: Sequence[VariantResult],
    work_dir: Path,
    max_steps: int | None,
    seeds: Sequence[int],
    final: bool = False,
) -> None:
    from pyramidpose.utils.io import write_json_atomic, write_text_atomic

    write_text_atomic(work_dir / "ablation.csv", to_csv(results))
    write_text_atomic(work_dir / "ablation.md", to_markdown(results, max_steps, seeds, final))
    if final:
        write_json_atomic(
            work_dir / "ablation.json",
            {
                "max_steps": max_steps,
                "seeds": list(seeds),
                "variants": [
                    {
                        "name": r.name,
                        "config": r.config,
                        "neck": r.neck,
                        "status": r.status,
                        "error": r.error,
                        "stats": r.stats,
                        "runs": [{k: v for k, v in x.items() if k != "traceback"} for x in r.runs],
                    }
                    for r in results
                ],
            },
            indent=2,
        )
        plot(results, work_dir / "ablation.png")


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pyramidpose ablate",
        description="Train every CONFIG with the same data, step budget and seeds, evaluate each, and "
        "write DIR/ablation.csv, DIR/ablation.md and DIR/ablation.png.",
    )
    p.add_argument("configs", nargs="+", metavar="CONFIG", help="training YAML configs (one per variant)")
    p.add_argument("--work-dir", required=True, metavar="DIR", help="output directory")
    p.add_argument("--max-steps", type=positive_int, default=None, metavar="N", help="optimiser steps per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="S", help="seeds (default: 0)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a field in every config (repeatable), e.g. --set train.batch_size=16",
    )
    p.add_argument("--latency-runs", type=nonneg_int, default=10, help="timed forward passes per variant (0: skip)")
    p.add_argument("--no-reuse", action="store_true", help="retrain runs that already have a result.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pyramidpose.errors import ConfigError

    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be at least 1, got {args.max_steps}")
    if len(set(args.seeds)) != len(args.seeds):
        raise ConfigError(f"--seeds has duplicates: {args.seeds}")
    t0 = time.perf_counter()
    results = run_ablation(
        args.configs,
        args.work_dir,
        max_steps=args.max_steps,
        seeds=args.seeds,
        overrides=args.overrides,
        latency_runs=args.latency_runs,
        reuse=not args.no_reuse,
    )
    work = Path(args.work_dir)
    print(to_markdown(results, args.max_steps, args.seeds))
    print(f"wrote {work / 'ablation.csv'}, {work / 'ablation.md'}, {work / 'ablation.png'} "
          f"in {(time.perf_counter() - t0) / 60:.1f} min")
    failed = [r.name for r in results if r.status == "failed"]
    if failed:
        print(f"failed variants: {', '.join(failed)} (see the table and DIR/<variant>/seed*/result.json)")
    return 1 if len(failed) == len(results) else 0
