"""Hostile JSON through the commands (issue 18, cases 4 and 5): 100 000 nested '[' in eval,
predict --boxes and lift, binary files, and box files with a NaN score are one-line errors naming
the file (and record/field), exit status 2, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pyramidpose import cli

DATA = Path(__file__).parent / "data" / "coco"
ANN = DATA / "person_keypoints_mini.json"
DEEP = "[" * 100_000


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    import torch

    import pyramidpose

    torch.manual_seed(0)
    model = pyramidpose.create_model("vitpose-tiny", num_keypoints=17, input_size=(64, 48))
    return pyramidpose.save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def _fails_cleanly(argv, capsys, *needles) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("which", ["gt", "results"])
@pytest.mark.parametrize("content", [DEEP, b"\x00\xff\xfe binary \x89PNG"])
def test_eval_refuses_deep_or_binary_json(tmp_path, capsys, which, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content.encode() if isinstance(content, str) else content)
    res = tmp_path / "res.json"
    res.write_text("[]")
    gt = bad if which == "gt" else ANN
    results = bad if which == "results" else res
    _fails_cleanly(["eval", "--gt", str(gt), "--pred", str(results)], capsys, "bad.json")


@pytest.mark.parametrize("content,needles", [
    (DEEP, ("nested too deeply",)),
    (json.dumps([{"image_id": 229358, "category_id": 1, "bbox": [1, 2, 30, 40], "score": float("nan")}]),
     ("entry 0", "'score'", "finite")),
])  # fmt: skip
def test_predict_boxes_refuses_deep_json_and_nan_scores(tmp_path, capsys, weights, content, needles):
    images = tmp_path / "images"
    shutil.copytree(DATA / "images", images)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(content)
    argv = ["predict", "--weights", str(weights), "--image-dir", str(images), "--boxes", str(boxes),
            "--out", str(tmp_path / "res.json"), "--no-progress"]  # fmt: skip
    _fails_cleanly(argv, capsys, "boxes.json", *needles)
    assert not (tmp_path / "res.json").exists()


def test_lift_refuses_deep_json(tmp_path, capsys):
    bad = tmp_path / "deep.jsonl"
    bad.write_text(DEEP)
    _fails_cleanly(["lift", str(bad), "--out", str(tmp_path / "o"), "--format", "none"], capsys, "deep.jsonl",
                   "nested too deeply")  # fmt: skip


@pytest.mark.parametrize("device", ["bogus", "cuda:x", "cuda:7"])
def test_bad_device_with_weights_is_one_line(tmp_path, capsys, weights, device):
    import torch

    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    image = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples" / "000000165518.jpg"
    argv = ["predict", "--weights", str(weights), "--device", device, "--input", str(image),
            "--out", str(tmp_path / "res.json"), "--no-progress"]  # fmt: skip
    _fails_cleanly(argv, capsys, device)
