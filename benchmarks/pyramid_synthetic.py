"""The pyramid claim on synthetic people: baseline vs pyramid necks, with confidence intervals.

One command trains the tiny ViTPose baseline (``configs/synthetic_tiny.yaml``) and its pyramid
variants (``configs/synthetic_tiny_fpn_{simple,multilevel,fusion,multilevel_aux}.yaml``: necks sfp,
fpn, fusion, fpn + auxiliary losses) on synthetic scenes (CMU subjects 01/02) with
``pyramidpose ablate``, every run starting from one shared backbone (the baseline trained
``--pretrain-steps`` from scratch first, as ViTPose heads start from one pretrained ViT; necks and
heads fresh) (same data, step budget and seeds for every variant, each run in its own
process), evaluates every model on the fixed synthetic test set (subject 03, ground-truth boxes),
then fine-tunes each trained model on coco-mini train2017 (its ``coco_mini_tiny*.yaml`` twin,
``init.pretrained`` = the synthetic model) and evaluates it on coco-mini val2017.

Reported (``DIR/report.md``, ``DIR/report.json``, ``DIR/ap_vs_size.png``):

- OKS AP, AP50, AP75, APm, APl and PCK@0.2 per variant: the mean over seeds, its 95 % bootstrap
  interval over test images (1000 resamples; each resample re-weights the images and every seed's
  model is scored on the same resample) and the spread (sample std) over seeds;
- AP per person-size bin and per overlap bin, and the paired difference to the baseline with its
  bootstrap interval: "beyond the interval" means the interval of the difference excludes 0;
- the same after fine-tuning on coco-mini (intervals over coco-mini val images).

Usage (the default budget: 66.6 min on a quiet 2-core Intel CPU with native bf16; results and
caveats in docs/pyramids.md)::

    python benchmarks/pyramid_synthetic.py --work-dir runs/pyramid_synthetic

Interrupted runs are reused (``DIR/synthetic/<variant>/seed<k>/result.json``). ``--smoke`` shrinks
everything to seconds (a test of the harness, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> (synthetic config, coco-mini twin)
    "baseline": ("synthetic_tiny.yaml", "coco_mini_tiny.yaml"),
    "sfp": ("synthetic_tiny_fpn_simple.yaml", "coco_mini_tiny_fpn_simple.yaml"),
    "fpn": ("synthetic_tiny_fpn_multilevel.yaml", "coco_mini_tiny_fpn_multilevel.yaml"),
    "fusion": ("synthetic_tiny_fpn_fusion.yaml", "coco_mini_tiny_fpn_fusion.yaml"),
    "aux": ("synthetic_tiny_fpn_multilevel_aux.yaml", "coco_mini_tiny_fpn_multilevel_aux.yaml"),
}
SIZE_BINS = (0.0, 60.0, 90.0, 135.0, 200.0, math.inf)  # person height in pixels (rendered silhouette)
OVERLAP_BINS = (0.0, 0.05, 0.3, 1.01)  # fraction of the silhouette covered by others / occluders
METRICS = ("AP", "AP50", "AP75", "APm", "APl", "PCK@0.2")
PRETRAIN_SEED = 1000  # the shared pretraining run's seed, apart from the compared runs' seeds
COCO_STEPS_PER_EPOCH = 11  # coco_mini_tiny: 4 x 86 persons per epoch, batch 32


def _bin_label(lo: float, hi: float, unit: str) -> str:
    if unit == "px":
        return f"<{hi:.0f} px" if lo == 0 else (f">={lo:.0f} px" if math.isinf(hi) else f"{lo:.0f}-{hi:.0f} px")
    return f"<{hi:.0%}" if lo == 0 else (f">={lo:.0%}" if hi > 1 else f"{lo:.0%}-{hi:.0%}")


def _in_range(field: str, lo: float, hi: float) -> Any:
    """A test ``lo <= annotation[field] < hi``."""

    def keep(a: dict[str, Any]) -> bool:
        return lo <= float(a.get(field, 0.0)) < hi

    return keep


class Scorer:
    """Every metric of one results list, as a function of per-image bootstrap weights."""

    def __init__(self, gt: dict[str, Any], results: list[dict[str, Any]], splits: bool) -> None:
        from pyramidpose.evaluation.bootstrap import match_images, pck_per_image

        anns = gt["annotations"]
        # top-down with ground-truth boxes: result i comes from annotation i (same order)
        same = len(results) == len(anns) and all(int(r["image_id"]) == int(a["image_id"]) for r, a in zip(results, anns))
        src = [int(a["id"]) for a in anns] if same else None
        self.tables = {
            "all": match_images(gt, results, dt_source=src),
            "APm": match_images(gt, results, area="medium", dt_source=src),
            "APl": match_images(gt, results, area="large", dt_source=src),
        }
        if splits:
            for field, bins, unit, name in ((("height_px", SIZE_BINS, "px", "size")), ("occlusion", OVERLAP_BINS, "frac", "overlap")):
                for lo, hi in zip(bins[:-1], bins[1:]):
                    self.tables[f"{name} {_bin_label(lo, hi, unit)}"] = match_images(
                        gt, results, gt_keep=_in_range(field, lo, hi), dt_source=src
                    )
        _, self.correct, self.total = pck_per_image(gt, results)
        self.n_images = len(gt["images"])

    def metrics(self, w: np.ndarray | None = None) -> dict[str, float]:
        from pyramidpose.evaluation.bootstrap import ap_from_table

        w = np.ones(self.n_images) if w is None else w
        t = self.tables
        out = {
            "AP": ap_from_table(t["all"], w), "AP50": ap_from_table(t["all"], w, 0),
            "AP75": ap_from_table(t["all"], w, 5), "APm": ap_from_table(t["APm"], w),
            "APl": ap_from_table(t["APl"], w),
            "PCK@0.2": float((self.correct * w).sum() / max(1e-9, (self.total * w).sum())),
        }  # fmt: skip
        for k, tab in t.items():
            if k.startswith(("size", "overlap")):
                out[k] = ap_from_table(tab, w)
        return out


def analyse(
    scorers: dict[str, list[Scorer]], n_boot: int, seed: int = 0, reference: str = "baseline"
) -> dict[str, Any]:
    """Means over seeds, bootstrap intervals over images, seed spreads and paired differences."""
    from pyramidpose.evaluation.bootstrap import percentile_ci

    names = list(scorers)
    n_images = next(iter(scorers.values()))[0].n_images
    point = {v: [s.metrics() for s in ss] for v, ss in scorers.items()}
    keys = list(point[names[0]][0])
    rng = np.random.default_rng(seed)
    boot = {v: {k: np.empty(n_boot) for k in keys} for v in names}
    for b in range(n_boot):
        w = np.bincount(rng.integers(0, n_images, n_images), minlength=n_images).astype(np.float64)
        for v, ss in scorers.items():
            ms = [s.metrics(w) for s in ss]
            for k in keys:
                boot[v][k][b] = np.nanmean([m[k] for m in ms]) if any(np.isfinite(m[k]) for m in ms) else np.nan
    out: dict[str, Any] = {"n_images": n_images, "n_boot": n_boot, "variants": {}}
    for v in names:
        row = {}
        for k in keys:
            vals = np.array([m[k] for m in point[v]], np.float64)
            fin = vals[np.isfinite(vals)]
            lo, hi = percentile_ci(boot[v][k])
            row[k] = {
                "mean": float(fin.mean()) if len(fin) else float("nan"),
                "ci": [lo, hi],
                "seed_std": float(fin.std(ddof=1)) if len(fin) > 1 else float("nan"),
                "per_seed": [float(x) for x in vals],
            }
            if reference in boot and v != reference:
                d = boot[v][k] - boot[reference][k]
                dlo, dhi = percentile_ci(d)
                ref_mean = np.nanmean([m[k] for m in point[reference]])
                row[k]["diff"] = {"mean": float(row[k]["mean"] - ref_mean), "ci": [dlo, dhi],
                                  "beyond": bool(dlo > 0 or dhi < 0)}  # fmt: skip
        out["variants"][v] = row
    return out


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}"


def _cell(m: dict[str, Any]) -> str:
    lo, hi = m["ci"]
    s = f"{_pct(m['mean'])} [{_pct(lo)}, {_pct(hi)}]"
    if np.isfinite(m.get("seed_std", float("nan"))):
        s += f" ±{_pct(m['seed_std'])}"
    return s


def _diff_cell(m: dict[str, Any]) -> str:
    if "diff" not in m:
        return "reference"
    d = m["diff"]
    lo, hi = d["ci"]
    mark = " **beyond**" if d["beyond"] else ""
    return f"{100 * d['mean']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{mark}"


def report_markdown(syn: dict[str, Any], coco: dict[str, Any] | None, meta: dict[str, Any]) -> str:
    lines = [
        f"# Pyramid necks on synthetic people ({meta['budget']})", "",
        f"Seeds {meta['seeds']}; synthetic test set: {syn['n_images']} scenes of CMU subject 03 "
        f"(ground-truth boxes, flip test); {syn['n_boot']} bootstrap resamples of the test images. "
        "Cells: mean over seeds [95 % bootstrap interval] ±sample std over seeds, in %.", "",
    ]  # fmt: skip
    pre = meta.get("pretrain")
    if pre:
        ap = (pre.get("metrics") or {}).get("AP", float("nan"))
        lines += [f"Every run starts from one shared backbone: the baseline trained {pre['steps']} steps from "
                  f"scratch (seed {pre['seed']}; its own test AP {100 * ap:.1f} %), as ViTPose starts every "
                  "head from one pretrained ViT; necks and heads start fresh.", ""]  # fmt: skip
    lines += [
        "## Synthetic test set", "",
        "| variant | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|",
    ]  # fmt: skip
    for v, row in syn["variants"].items():
        lines.append(f"| {v} | " + " | ".join(_cell(row[k]) for k in METRICS) + " |")
    split_keys = [k for k in next(iter(syn["variants"].values())) if k.startswith(("size", "overlap"))]
    lines += ["", "## AP by person size and by overlap, and the difference to the baseline", "",
              "Difference cells: AP(variant) - AP(baseline) in points [95 % paired bootstrap interval]; "
              "**beyond** = the interval excludes 0.", "",
              "| split | " + " | ".join(syn["variants"]) + " |", "|---" * (len(syn["variants"]) + 1) + "|"]  # fmt: skip
    for k in ["AP", *split_keys]:
        lines.append(f"| {k} | " + " | ".join(_cell(r[k]) for r in syn["variants"].values()) + " |")
        lines.append(f"| {k}: diff | " + " | ".join(_diff_cell(r[k]) for r in syn["variants"].values()) + " |")
    if coco is not None:
        lines += ["", f"## Fine-tuned on coco-mini train2017 ({meta['finetune']}), evaluated on coco-mini val2017", "",
                  f"{coco['n_images']} val images (ground-truth boxes); same cell format.", "",
                  "| variant | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]  # fmt: skip
        for v, row in coco["variants"].items():
            lines.append(f"| {v} | " + " | ".join(_cell(row[k]) for k in METRICS) + " |")
        lines += ["", "| AP difference to the baseline | " + " | ".join(coco["variants"]) + " |",
                  "|---" * (len(coco["variants"]) + 1) + "|",
                  "| AP | " + " | ".join(_diff_cell(r["AP"]) for r in coco["variants"].values()) + " |"]  # fmt: skip
    lines += ["", f"Wall clock: {meta['wall_min']:.1f} min. Machine: {meta['machine']}.", ""]
    return "\n".join(lines)


def plot_ap_vs_size(syn: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyramidpose.utils.io import atomic_path

    keys = [k for k in next(iter(syn["variants"].values())) if k.startswith("size")]
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (v, row) in enumerate(syn["variants"].items()):
        m = np.array([row[k]["mean"] for k in keys]) * 100
        lo = np.array([row[k]["ci"][0] for k in keys]) * 100
        hi = np.array([row[k]["ci"][1] for k in keys]) * 100
        off = (i - (len(syn["variants"]) - 1) / 2) * 0.06
        ax.errorbar(x + off, m, yerr=[np.nan_to_num(m - lo), np.nan_to_num(hi - m)], marker="o", capsize=3, label=v)
    ax.set_xticks(x, [k.removeprefix("size ") for k in keys])
    ax.set_xlabel("person height in the image")
    ax.set_ylabel("OKS AP (%), 95 % bootstrap interval")
    ax.set_title("Synthetic test set (CMU subject 03): AP vs person size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _scorers_for(runs: dict[str, list[Path]], gt: dict[str, Any], splits: bool) -> dict[str, list[Scorer]]:
    out: dict[str, list[Scorer]] = {}
    for v, dirs in runs.items():
        ss = []
        for d in dirs:
            f = d / "val_results.json"
            if f.is_file():
                ss.append(Scorer(gt, json.loads(f.read_text(encoding="utf-8")), splits))
        if ss:
            out[v] = ss
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-dir", default="runs/pyramid_synthetic", metavar="DIR")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pretrain-steps", type=int, default=2400,
                    help="steps of the one shared backbone pretraining run (0: every run from scratch)")  # fmt: skip
    ap.add_argument("--steps", type=int, default=400, help="synthetic training steps per run (batch 32)")
    ap.add_argument("--finetune-steps", type=int, default=33, help="coco-mini fine-tuning steps (0: skip)")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a field of every synthetic config (repeatable)")  # fmt: skip
    ap.add_argument("--finetune-set", dest="ft_overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a field of every coco-mini fine-tuning config (repeatable)")  # fmt: skip
    ap.add_argument("--smoke", action="store_true", help="seconds-long budget: tests the harness only")
    args = ap.parse_args(argv)
    from pyramidpose.commands import ablate
    from pyramidpose.training.config import load_config
    from pyramidpose.utils.io import write_text_atomic
    from pyramidpose.utils.jsonio import write_json

    t0 = time.time()
    work = Path(args.work_dir)
    configs = [REPO / "configs" / VARIANTS[v][0] for v in args.variants]
    batch = 4 if args.smoke else 32
    syn_set = [f"data.synthetic.train_scenes={args.steps * batch}", "train.epochs=1", "optim.warmup_iters="
               f"{max(1, min(50, args.steps // 6))}", *args.overrides]  # fmt: skip
    ft_set = list(args.ft_overrides)
    if args.smoke:
        smoke = ["model.input_size=[64,48]", "train.batch_size=4", "eval.batch_size=8", "data.num_workers=0",
                 "train.tensorboard=false", "eval.flip_test=false"]  # fmt: skip
        syn_set = [f"data.synthetic.train_scenes={args.steps * batch}", "train.epochs=1", "optim.warmup_iters=1",
                   "data.synthetic.test_scenes=6", "data.synthetic.image_size=[160,160]",
                   "data.synthetic.height_px=[40.0,140.0]", *smoke, *args.overrides]  # fmt: skip
        ft_set = [*smoke, "data.max_train_instances=8", "data.repeat=1", "optim.warmup_iters=1", *ft_set]
    pretrain = None
    if args.pretrain_steps > 0:
        steps = min(args.pretrain_steps, args.steps) if args.smoke else args.pretrain_steps
        pre_set = [*syn_set, f"data.synthetic.train_scenes={steps * batch}",  # later overrides win
                   f"optim.warmup_iters={max(1, min(100, steps // 6))}", "optim.layer_decay=1.0"]  # fmt: skip
        print(f"0/3 pretraining the shared backbone: the baseline, {steps} steps from scratch (seed {PRETRAIN_SEED})")
        cfg = load_config(configs[args.variants.index("baseline")] if "baseline" in args.variants
                          else REPO / "configs" / VARIANTS["baseline"][0], pre_set)  # fmt: skip
        rec = ablate.run_one(cfg, work / "pretrain", steps, PRETRAIN_SEED, ablate.default_train,
                             ablate.default_evaluate, reuse=True, isolate=True)  # fmt: skip
        if rec.get("status") != "ok":
            print(f"the shared pretraining failed: {rec.get('error')} (see {work / 'pretrain'})", file=sys.stderr)
            return 1
        pretrain = {"steps": steps, "seed": PRETRAIN_SEED, "metrics": rec.get("metrics")}
        syn_set.append(f"init.backbone_pretrained={(work / 'pretrain' / 'model_last.safetensors').resolve()}")
    print(f"1/3 training {len(configs)} variants x {len(args.seeds)} seeds on synthetic scenes, {args.steps} steps each")
    results = ablate.run_ablation(configs, work / "synthetic", max_steps=args.steps, seeds=args.seeds,
                                  overrides=syn_set, latency_runs=0 if args.smoke else 5)  # fmt: skip
    names = dict(zip([r.name for r in results], args.variants))
    failed = [names[r.name] for r in results if r.status != "ok"]
    if failed:
        print(f"variants with failed runs: {failed} (see {work / 'synthetic' / 'ablation.md'})")
    from pyramidpose.training.engine import make_dataset

    cfg0 = load_config(configs[0], syn_set)
    gt = make_dataset(cfg0, False).gt  # the fixed test set (its labels are cached)
    runs = {names[r.name]: [work / "synthetic" / r.name / f"seed{s}" for s in args.seeds] for r in results}
    print("2/3 scoring the synthetic test set with bootstrap intervals")
    syn = analyse(_scorers_for(runs, gt, True), args.boot)
    coco = None
    if args.finetune_steps > 0:
        print(f"3/3 fine-tuning every model on coco-mini train2017 ({args.finetune_steps} steps) -> val2017")
        epochs = max(1, round(args.finetune_steps / COCO_STEPS_PER_EPOCH))
        ft_runs: dict[str, list[Path]] = {}
        coco_gt = None
        for v in args.variants:
            for s in args.seeds:
                src = runs[v][args.seeds.index(s)] / "model_last.safetensors"
                if not src.is_file():
                    continue
                cfg = load_config(REPO / "configs" / VARIANTS[v][1], [
                    f"init.pretrained={src}", f"train.epochs={epochs}", "optim.warmup_iters=10", *ft_set])  # fmt: skip
                run_dir = work / "coco_mini_finetune" / v / f"seed{s}"
                rec = ablate.run_one(cfg, run_dir, args.finetune_steps, s, ablate.default_train,
                                     ablate.default_evaluate, reuse=True, isolate=True)  # fmt: skip
                if rec.get("status") == "ok":
                    ft_runs.setdefault(v, []).append(run_dir)
                else:
                    print(f"fine-tuning {v} seed {s} failed: {rec.get('error')}")
                if coco_gt is None:
                    coco_gt = json.loads(Path(make_dataset(cfg, False).ann_file).read_text(encoding="utf-8"))
        if ft_runs and coco_gt is not None:
            coco = analyse(_scorers_for(ft_runs, coco_gt, False), args.boot)
    import platform

    import torch

    meta = {
        "budget": (f"{pretrain['steps']} shared pretraining steps + " if pretrain else "")
        + f"{args.steps} steps of batch {batch} per run" + (" (SMOKE)" if args.smoke else ""),
        "pretrain": pretrain,
        "seeds": args.seeds, "finetune": f"{args.finetune_steps} steps", "wall_min": (time.time() - t0) / 60,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, shared",
        "overrides": syn_set, "finetune_overrides": ft_set,
    }  # fmt: skip
    write_json(work / "report.json", {"meta": meta, "synthetic": syn, "coco_mini": coco}, indent=1)
    md = report_markdown(syn, coco, meta)
    write_text_atomic(work / "report.md", md)
    plot_ap_vs_size(syn, work / "ap_vs_size.png")
    print(md)
    print(f"wrote {work / 'report.md'}, {work / 'report.json'}, {work / 'ap_vs_size.png'}")
    return 1 if len(failed) == len(args.variants) else 0


if __name__ == "__main__":
    sys.exit(main())
