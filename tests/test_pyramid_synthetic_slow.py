"""The synthetic pyramid benchmark end to end at a smoke budget (slow; needs the shared data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@pytest.mark.slow
def test_benchmark_harness_runs_end_to_end_at_smoke_budget(tmp_path: Path) -> None:
    if not (SHARED / "cmu-mocap").is_dir() or not (SHARED / "coco-mini").is_dir():
        pytest.skip(f"the shared CMU mocap and coco-mini data are not at {SHARED}")
    work = tmp_path / "bench"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "pyramid_synthetic.py"), "--smoke", "--work-dir", str(work),
        "--variants", "baseline", "sfp", "--seeds", "0", "1", "--steps", "2", "--finetune-steps", "1",
        "--boot", "30", "--set", f"data.synthetic.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO),
                          "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=3600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((work / "report.json").read_text())
    syn = rep["synthetic"]["variants"]
    assert set(syn) == {"baseline", "sfp"}
    for v, row in syn.items():
        for k in ("AP", "AP50", "AP75", "PCK@0.2", "size <60 px", "overlap <5%"):
            assert len(row[k]["per_seed"]) == 2
            lo, hi = row[k]["ci"]
            assert lo is None or lo <= hi
        assert ("diff" in row["AP"]) == (v == "sfp")
    assert set(rep["coco_mini"]["variants"]) == {"baseline", "sfp"}
    assert (work / "ap_vs_size.png").stat().st_size > 1000
    assert "beyond" in (work / "report.md").read_text() or "reference" in (work / "report.md").read_text()
