"""No bare NaN in any JSON we write (issue 18, case 4): metrics write null, configs refuse,
predicted instances with NaN are dropped with a warning."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from pyramidpose import cli
from pyramidpose.inference.pipeline import frame_record
from pyramidpose.inference.results import PoseResult
from pyramidpose.utils.io import write_json_atomic
from pyramidpose.utils.jsonio import dumps, write_json

DATA = Path(__file__).parent / "data" / "coco"


def _strict(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} written"))


def test_metrics_write_null_configs_refuse(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"AP": float("nan"), "per": np.array([1.0, np.inf]), "n": np.int64(3)})
    assert _strict((tmp_path / "m.json").read_text()) == {"AP": None, "per": [1.0, None], "n": 3}
    with pytest.raises(ValueError, match=r"optim\.lr is nan"):
        write_json(tmp_path / "c.json", {"optim": {"lr": math.nan}}, nonfinite="error")
    assert not (tmp_path / "c.json").exists()


def _result(n=3, nan_row=1) -> PoseResult:
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (n, 17, 2)).astype(np.float32)
    kp[nan_row, 3] = np.nan
    return PoseResult(kp, np.full((n, 17), 0.9, np.float32), np.tile(np.float32([1, 2, 30, 40]), (n, 1)),
                      np.ones(n, np.float32), np.full(n, 0.8, np.float32))  # fmt: skip


def test_instances_with_nan_are_dropped_with_a_warning():
    with pytest.warns(RuntimeWarning, match="image 7: dropped 1 predicted instance"):
        coco = _result().to_coco(7)
    assert len(coco) == 2
    _strict(dumps(coco))
    with pytest.warns(RuntimeWarning, match="frame 4: dropped 1"):
        rec = frame_record(4, 0.1, _result(), np.array([10, 11, 12]))
    assert [i["track_id"] for i in rec["instances"]] == [10, 12]
    _strict(dumps(rec))


def test_predict_with_nan_weights_writes_valid_json(tmp_path, capsys):
    import torch

    import pyramidpose

    model = pyramidpose.create_model("vitpose-tiny", num_keypoints=17, input_size=(128, 96))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    weights = pyramidpose.save_model(model, tmp_path / "nan.safetensors")
    images = tmp_path / "images"
    shutil.copytree(DATA / "images", images)
    out = tmp_path / "res.json"
    argv = ["predict", "--weights", str(weights), "--image-dir", str(images), "--boxes",
            str(DATA / "person_keypoints_mini.json"), "--out", str(out), "--no-progress"]  # fmt: skip
    with pytest.warns(RuntimeWarning, match="dropped"):
        assert cli.main(argv) == 0
    assert _strict(out.read_text()) == []
