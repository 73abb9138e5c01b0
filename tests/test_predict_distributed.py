"""Issue 14, must show 3: ``torchrun --nproc_per_node 2 -m pyramidpose predict`` (2 gloo ranks on
CPU) shares the images out, journals per rank, and rank 0 writes the results file a single process
writes (bundled images by default; coco-mini val under ``-m slow``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "coco"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(tmp: Path) -> Path:
    import torch

    import pyramidpose

    torch.manual_seed(0)
    model = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48))
    with torch.no_grad():  # heatmap maxima above the rescoring threshold: instance scores are not all 0
        [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1].bias.add_(0.3)
    return pyramidpose.save_model(model, tmp / "m.safetensors")


def _run(args: list[str], nproc: int, command: str = "predict") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    if nproc == 1:
        cmd = [sys.executable, "-m", "pyramidpose", command, *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "pyramidpose", command, *args]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _compare(single: Path, merged: Path) -> None:
    a, b = json.loads(single.read_text()), json.loads(merged.read_text())
    assert len(a) == len(b) > 0
    assert [r["image_id"] for r in a] == [r["image_id"] for r in b]  # same order: the file, not just the set
    for x, y in zip(a, b):
        np.testing.assert_allclose(x["keypoints"], y["keypoints"], atol=1e-3)  # batches differ per rank
        assert abs(x["score"] - y["score"]) <= 1e-5
    leftovers = sorted(p.name for p in merged.parent.iterdir() if "journal" in p.name or ".rank" in p.name)
    assert leftovers == [], leftovers  # per-rank journals are removed once merged


def _check(tmp: Path, inputs: list[str], ann: Path, expect_rows: int | None = None) -> None:
    weights = _weights(tmp)
    common = ["--weights", str(weights), *inputs, "--boxes", str(ann), "--mmpose-gt-boxes", "--no-progress", "--precision", "fp32"]
    one = _run([*common, "--out", str(tmp / "one" / "results.json")], 1)  # also a fresh process: no torch state shared
    assert one.returncode == 0, one.stderr[-2000:]
    two = _run([*common, "--out", str(tmp / "two" / "results.json")], 2)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("2 ranks") == 1  # one merged report, printed by rank 0
    summary = [line for line in one.stdout.splitlines() if "images with" in line][0].split(" (model")[0]
    assert summary in two.stdout  # same counts of images, people and boxes
    _compare(tmp / "one" / "results.json", tmp / "two" / "results.json")
    if expect_rows is not None:
        assert len(json.loads((tmp / "two" / "results.json").read_text())) == expect_rows


def test_two_ranks_equal_one_process_on_bundled_images(tmp_path: Path) -> None:
    _check(tmp_path, ["--input", str(DATA / "images")], DATA / "person_keypoints_mini.json", expect_rows=8)


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_coco_mini_val(coco_mini: Path, tmp_path: Path) -> None:
    ann = coco_mini / "annotations" / "person_keypoints_val2017.json"
    if not ann.is_file():
        pytest.skip(f"{ann} not found")
    _check(tmp_path, ["--input", str(coco_mini / "val2017"), "--images-from", str(ann)], ann)


def test_eval_of_a_checkpoint_over_two_ranks_equals_one_process(tmp_path: Path) -> None:
    """``pyramidpose eval --weights`` predicts (sharded under torchrun) and rank 0 evaluates: the same
    predictions and the same ten stats as one process, and as ``predict`` + ``eval --pred``."""
    weights = _weights(tmp_path)
    ann = DATA / "person_keypoints_mini.json"
    common = ["--gt", str(ann), "--weights", str(weights), "--images", str(DATA / "images"), "--precision", "fp32"]
    for name, nproc in (("one", 1), ("two", 2)):
        res = _run([*common, "--pred", str(tmp_path / name / "results.json"), "--out", str(tmp_path / name / "stats.json")], nproc, "eval")  # fmt: skip
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.stdout.count("Average Precision") == 5 and res.stdout.count("Average Recall") == 5  # once, by rank 0
    _compare(tmp_path / "one" / "results.json", tmp_path / "two" / "results.json")
    one, two = (json.loads((tmp_path / n / "stats.json").read_text()) for n in ("one", "two"))
    assert one == two
    ref = _run(["--gt", str(ann), "--pred", str(tmp_path / "one" / "results.json"), "--out", str(tmp_path / "ref.json")], 1, "eval")  # fmt: skip
    assert ref.returncode == 0 and json.loads((tmp_path / "ref.json").read_text()) == one
