"""The ablation harness: aggregation over seeds, failed rows, reuse, outputs, and a real tiny run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from pyramidpose.commands import ablate

MICRO = {"embed_dim": 32, "depth": 2, "num_heads": 2}  # a very small custom backbone: fast to build and train


def _write_config(path: Path, neck: dict | None = None, **sections) -> Path:
    cfg: dict = {"model": {"name": "vitpose-tiny", **MICRO, "head_channels": 32}}
    if neck is not None:
        cfg["model"]["neck"] = neck
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _fake_fns(calls: list):
    """Deterministic stand-ins for training and evaluation (metrics depend on config and seed)."""

    def train_fn(cfg, run_dir, max_steps, seed):
        calls.append((run_dir.parent.name, seed, max_steps))
        neck = cfg.model.neck
        if neck is not None and neck.type == "fusion":
            raise RuntimeError("boom: simulated crash")
        return {"model_path": str(run_dir / "model_last.safetensors")}

    def eval_fn(cfg, run_dir, summary):
        seed = int(run_dir.name.removeprefix("seed"))
        base = 0.5 if cfg.model.neck is not None else 0.4
        v = base + 0.02 * seed
        return {"AP": v, "AP50": v + 0.1, "AP75": v - 0.1, "APm": v - 0.05, "APl": v + 0.05, "PCK@0.2": v + 0.2}

    return train_fn, eval_fn


def test_ablation_aggregates_seeds_reports_failures_and_reuses_runs(tmp_path, monkeypatch):
    # no training data needed: stats come from the real model builder, training/eval are stubbed
    configs = [
        _write_config(tmp_path / "base.yaml"),
        _write_config(tmp_path / "sfp.yaml", {"type": "sfp", "channels": 32, "head_channels": 32}),
        _write_config(tmp_path / "fusion.yaml", {"type": "fusion", "channels": 32}),
        _write_config(tmp_path / "typo.yaml", {"type": "fpn", "chanels": 8}),
        tmp_path / "missing.yaml",
    ]
    calls: list = []
    train_fn, eval_fn = _fake_fns(calls)
    out = tmp_path / "abl"
    results = ablate.run_ablation(
        configs, out, max_steps=3, seeds=[0, 1, 2], latency_runs=1, train_fn=train_fn, eval_fn=eval_fn,
        progress=False,
    )
    by = {r.name: r for r in results}
    assert [r.name for r in results] == ["base", "sfp", "fusion", "typo", "missing"]
    assert by["base"].status == by["sfp"].status == "ok"
    mean, std = by["sfp"].mean_std("AP")
    assert mean == pytest.approx(0.52) and std == pytest.approx(0.02)
    assert by["fusion"].status == "failed" and "boom" in by["fusion"].error
    assert by["missing"].status == "failed" and "not found" in by["missing"].error
    # the misspelt neck key: a config error caught when the model is built, reported as a failed row
    assert by["typo"].status == "failed" and "chanels" in by["typo"].error
    # same budget and seeds for every variant that could be trained
    assert {(seed, ms) for _, seed, ms in calls} == {(s, 3) for s in (0, 1, 2)}
    # counted cost figures for the buildable variants
    assert by["sfp"].stats["gflops"] > 0 and by["sfp"].stats["params_m"] > 0
    assert by["sfp"].stats["params_m"] != by["base"].stats["params_m"]

    rows = list(csv.DictReader(open(out / "ablation.csv", encoding="utf-8")))
    assert [r["variant"] for r in rows] == ["base", "sfp", "fusion", "typo", "missing"]
    assert float(rows[0]["AP_mean"]) == pytest.approx(0.42)
    assert float(rows[1]["PCK@0.2_std"]) == pytest.approx(0.02)
    assert rows[2]["status"] == "failed" and rows[2]["AP_mean"] == ""
    assert float(rows[1]["gflops_256x192"]) == pytest.approx(by["sfp"].stats["gflops"], abs=1e-3)
    md = (out / "ablation.md").read_text(encoding="utf-8")
    assert "| sfp | sfp | 52.0 ± 2.0 |" in md and "failed" in md and "3 optimiser steps" in md
    assert (out / "ablation.png").stat().st_size > 1000
    summary = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
    assert summary["seeds"] == [0, 1, 2] and len(summary["variants"]) == 5

    # re-running reuses finished runs (only the failed variant is retried) ...
    calls.clear()
    ablate.run_ablation(configs[:3], out, max_steps=3, seeds=[0, 1, 2], latency_runs=0,
                        train_fn=train_fn, eval_fn=eval_fn, progress=False)  # fmt: skip
    assert sorted({name for name, _, _ in calls}) == ["fusion"]
    # ... unless the budget changed
    calls.clear()
    ablate.run_ablation(configs[:1], out, max_steps=4, seeds=[0], latency_runs=0,
                        train_fn=train_fn, eval_fn=eval_fn, progress=False)  # fmt: skip
    assert calls == [("base", 0, 4)]


def test_single_seed_has_no_spread_and_nan_metrics_stay_nan():
    r = ablate.VariantResult("v", "v.yaml", runs=[{"status": "ok", "metrics": {"AP": 0.3, "APm": math.nan}}])
    mean, std = r.mean_std("AP")
    assert mean == pytest.approx(0.3) and math.isnan(std)
    assert all(math.isnan(x) for x in r.mean_std("APm"))
    assert ablate._pm(*r.mean_std("AP")) == "30.0"
    reread = ablate.VariantResult("v", "v.yaml", runs=[{"status": "ok", "metrics": {"AP": 0.3, "APl": None}}])
    assert all(math.isnan(x) for x in reread.mean_std("APl"))  # NaN comes back from result.json as null


def test_cli_rejects_bad_arguments(tmp_path):
    from pyramidpose.cli import main as cli_main
    from pyramidpose.errors import ConfigError

    with pytest.raises(SystemExit) as exc:  # argparse refuses it (one line, exit 2)
        ablate.main([str(tmp_path / "a.yaml"), "--work-dir", str(tmp_path), "--max-steps", "0"])
    assert exc.value.code == 2
    with pytest.raises(ConfigError, match="duplicates"):
        ablate.main([str(tmp_path / "a.yaml"), "--work-dir", str(tmp_path), "--seeds", "1", "1"])
    # every variant failing is exit code 1, with the table still written
    code = cli_main(["ablate", str(tmp_path / "nope.yaml"), "--work-dir", str(tmp_path / "o"), "--latency-runs", "0"])
    assert code == 1
    assert "failed" in (tmp_path / "o" / "ablation.md").read_text(encoding="utf-8")


def _mini_val(coco_mini: Path, tmp_path: Path, n_images: int = 4) -> Path:
    """A few real val images with people (keeps the end-to-end test fast)."""
    gt = json.loads((coco_mini / "annotations" / "person_keypoints_val2017.json").read_text(encoding="utf-8"))
    ids = []
    for a in gt["annotations"]:
        if a.get("num_keypoints", 0) > 0 and a["image_id"] not in ids:
            ids.append(a["image_id"])
    keep = set(ids[:n_images])
    small = dict(gt)
    small["images"] = [im for im in gt["images"] if im["id"] in keep]
    small["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    path = tmp_path / "val_small.json"
    path.write_text(json.dumps(small), encoding="utf-8")
    return path


def test_real_tiny_ablation_end_to_end(coco_mini, tmp_path):
    val = _mini_val(coco_mini, tmp_path)
    common = {
        "data": {"root": str(coco_mini), "val_ann": str(val), "num_workers": 0, "max_train_instances": 8},
        "train": {"batch_size": 4, "epochs": 1, "tensorboard": False},
        "optim": {"warmup_iters": 1},
        "eval": {"batch_size": 8, "flip_test": False},
    }
    base = _write_config(tmp_path / "baseline.yaml", None, **common)
    fpn = _write_config(tmp_path / "fpn.yaml", {"type": "fpn", "channels": 16, "head_channels": 16}, **common)
    out = tmp_path / "abl"
    code = ablate.main([str(base), str(fpn), "--work-dir", str(out), "--max-steps", "1", "--latency-runs", "1"])
    assert code == 0
    rows = {r["variant"]: r for r in csv.DictReader(open(out / "ablation.csv", encoding="utf-8"))}
    assert set(rows) == {"baseline", "fpn"}
    for name, r in rows.items():
        assert r["status"] == "ok", (name, r["error"])
        assert 0.0 <= float(r["AP_mean"]) <= 1.0 and 0.0 <= float(r["PCK@0.2_mean"]) <= 1.0
        assert float(r["gflops_256x192"]) > 0 and float(r["params_m"]) > 0
        assert (out / name / "seed0" / "model_last.safetensors").is_file()
        assert (out / name / "seed0" / "val_results.json").is_file()
    assert rows["fpn"]["neck"] == "fpn" and rows["baseline"]["neck"].startswith("none")
