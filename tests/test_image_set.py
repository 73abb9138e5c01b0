"""Outputs are never lost and never collide: same-name inputs from two folders give two outputs,
a SIGKILLed image run keeps its finished images (a rerun skips them), a run where every input is
broken exits non-zero and keeps an existing results.json."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the embedded default model runs on onnxruntime (a base dependency)")

from pyramidpose import cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "pyramidpose" / "assets" / "samples"
PHOTOS = sorted(SAMPLES.glob("*.jpg"))
CLIP = SAMPLES / "street_5frames.mp4"


def test_same_name_inputs_give_distinct_outputs(tmp_path: Path, capsys) -> None:
    for folder, photo in (("a", PHOTOS[0]), ("b", PHOTOS[1])):
        (tmp_path / "in" / folder).mkdir(parents=True)
        shutil.copy(photo, tmp_path / "in" / folder / "person.jpg")
        shutil.copy(CLIP, tmp_path / "in" / folder / "clip.mp4")
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "in" / "a"), str(tmp_path / "in" / "b"), "--out", str(out), "--draw", str(out),
            "--no-progress", "--preset", "fast", "--max-frames", "2"]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert {r["image_id"] for r in results} == {"a/person", "b/person"}
    assert (out / "a" / "person_pose.jpg").is_file() and (out / "b" / "person_pose.jpg").is_file()
    for folder in ("a", "b"):
        lines = (out / folder / "clip.jsonl").read_text().splitlines()
        assert json.loads(lines[0])["header"]["source"].endswith(f"{folder}/clip.mp4") and len(lines) == 3
        assert (out / folder / "clip.mp4").stat().st_size > 0
    assert "same name" in printed and f"wrote {out / 'a' / 'clip.jsonl'}" in printed


def test_killed_run_keeps_finished_images_and_rerun_skips_them(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    for k in range(12):
        shutil.copy(PHOTOS[k % len(PHOTOS)], inp / f"img{k:02d}.jpg")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "pyramidpose", "predict", str(inp), "--out", str(out), "--no-progress", "--preset", "fast"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    journal = out / ".results.json.journal.jsonl"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.is_file() and len(journal.read_text().splitlines()) >= 1 + 3:  # header + 3 images
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    done = [json.loads(line) for line in journal.read_text().splitlines()[1:] if line.strip().endswith("}")]
    assert 3 <= len(done) < 12 and not (out / "results.json").exists()
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "12 images with" in rerun.stdout and f"({len(done)} from an earlier run's journal)" in rerun.stdout
    results = json.loads((out / "results.json").read_text())
    assert {r["image_id"] for r in results} <= {f"img{k:02d}" for k in range(12)} and len(results) >= 8
    assert not journal.exists()  # assembled and cleaned up


def test_all_broken_inputs_fail_and_keep_the_old_results(tmp_path: Path, capsys) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jpg").write_bytes(b"not a jpeg")
    (inp / "b.png").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    good = '[{"image_id": 1, "category_id": 1, "keypoints": [], "score": 0.9}]'
    (out / "results.json").write_text(good)
    code = cli.main(["predict", str(inp), "--out", str(out), "--no-progress", "--preset", "fast"])
    err = capsys.readouterr().err
    assert code == 1 and (out / "results.json").read_text() == good
    assert "none of the 2 images could be processed" in err and "was kept" in err
    # one good image among broken ones: done, exit 3 (some inputs skipped)
    shutil.copy(PHOTOS[0], inp / "good.jpg")
    assert cli.main(["predict", str(inp), "--out", str(out), "--no-progress", "--preset", "fast"]) == 3
    assert {r["image_id"] for r in json.loads((out / "results.json").read_text())} == {"good"}
