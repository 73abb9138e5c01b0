"""Hostile and careless input to ``pyramidpose lift`` (issue 18): far-apart frames/times split a
track instead of interpolating a huge range, malformed records are reported with file:line and
field instead of a traceback, and a lifter producing NaN never puts NaN into lift3d.json."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import torch

from pyramidpose.commands.lift import main
from pyramidpose.errors import DataError
from pyramidpose.lifting.tracks import lift_tracks, read_tracks
from pyramidpose.models.lifting import LifterConfig, build_lifter
from pyramidpose.training.loop import save_checkpoint
from pyramidpose.utils.weights_io import read_weights

KP = (np.random.default_rng(0).uniform(100, 300, (17, 2))).round(2).tolist()


def _line(frame, time=None, track_id=1, keypoints=KP, **inst) -> str:
    rec = {"frame": frame, "instances": [{"track_id": track_id, "keypoints": keypoints, **inst}]}
    if time is not None:
        rec["time"] = time
    return json.dumps(rec)


@pytest.fixture(scope="module")
def tiny_lifter(tmp_path_factory):
    """A small untrained MLP lifter (a weights file with its config)."""
    cfg = LifterConfig(kind="mlp", hidden=32, num_blocks=1)
    path = tmp_path_factory.mktemp("lifter") / "mlp.safetensors"
    save_checkpoint(build_lifter(cfg), path, {"model": cfg.to_dict(), "fps": 30.0}, kind="lifter")
    return path


@pytest.mark.parametrize("lines", [
    [_line(0), _line(300_000_000)],  # frames far apart: was a 300M-frame interpolation (tens of GB)
    [_line(0), _line(200_000)],
    [_line(0, time=0.0), _line(1, time=1e7)],  # times far apart: was a 3e8-frame resampling
    [_line(0, time=0.0), _line(1, time=1e4)],
])  # fmt: skip
def test_far_apart_frames_and_times_are_split_not_filled(tmp_path, lines):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    model = build_lifter(LifterConfig(kind="mlp", hidden=32, num_blocks=1)).eval()
    tracks, problems = read_tracks(path)
    tracemalloc.start()
    try:
        results, more = lift_tracks(model, tracks, width=1000, height=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problems == [] and more == []
    assert [r["segment"] for r in results] == [0, 1] and [len(r["frames"]) for r in results] == [1, 1]
    assert peak < 20_000_000


BAD_RECORDS = {
    "instances null": ('{"frame": 1, "instances": null}', "instances is NoneType"),
    "instances number": ('{"frame": 1, "instances": 5}', "instances is int"),
    "instances string": ('{"frame": 1, "instances": "abc"}', "instances is str"),
    "string time": (_line(1, time="soon"), "time is str"),
    "NaN time": ('{"frame": 1, "time": NaN, "instances": []}', "time is nan"),
    "list track_id": (_line(1, track_id=[1, 2]), "track_id is list"),
    "dict track_id": (_line(1, track_id={"a": 1}), "track_id is dict"),
    "bool track_id": (_line(1, track_id=True), "track_id is bool"),
    "frame Infinity": ('{"frame": Infinity, "instances": []}', "frame is inf"),
    "frame string": ('{"frame": "1", "instances": []}', "frame is str"),
    "frame fraction": ('{"frame": 1.5, "instances": []}', "frame is 1.5"),
    "frame negative": ('{"frame": -3, "instances": []}', "frame is -3"),
    "frame huge": ('{"frame": 1e300, "instances": []}', "frame is 1e+300"),
    "no frame": ('{"instances": []}', "no 'frame'"),
    "record list": ("[1, 2]", "record is a list"),
    "instance number": ('{"frame": 1, "instances": [7]}', "instance 0 skipped (is a int"),
    "keypoints strings": (_line(1, keypoints=[["a", "b"]] * 17), "keypoints is not an array"),
    "keypoints ragged": (_line(1, keypoints=[[1, 2]] * 16 + [[1]]), "keypoints is not an array"),
    "keypoints NaN": (_line(1, keypoints=[[1.0, float("nan")]] * 17), "keypoints holds NaN"),
    "scores wrong": (_line(1, keypoint_scores=[0.5] * 3), "keypoint_scores has shape (3,)"),
    "deep nesting": ("[" * 100_000, "nested too deeply"),
    "bad JSON": ("{not json", "not valid JSON"),
}


@pytest.mark.parametrize("name", list(BAD_RECORDS))
def test_malformed_records_are_reported_with_line_and_field(tmp_path, name):
    bad, message = BAD_RECORDS[name]
    path = tmp_path / "p.jsonl"
    path.write_text(_line(0) + "\n" + bad + "\n")
    tracks, problems = read_tracks(path)
    assert len(tracks) == 1 and len(problems) == 1
    assert problems[0].startswith(f"{path}:2: ") and message in problems[0], problems[0]


def test_binary_and_empty_files_are_data_errors(tmp_path):
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_tracks(binary)
    nested = tmp_path / "n.jsonl"
    nested.write_text("[" * 100_000)
    with pytest.raises(DataError, match=r"no usable instances.*n\.jsonl:1: .*nested too deeply"):
        read_tracks(nested)


def test_cli_drops_tracks_with_nan_output(tmp_path, tiny_lifter, capsys):
    model = build_lifter(LifterConfig(kind="mlp", hidden=32, num_blocks=1))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    nan_weights = tmp_path / "nan.safetensors"
    save_checkpoint(model, nan_weights, read_weights(tiny_lifter).config, kind="lifter")
    pred = tmp_path / "p.jsonl"
    pred.write_text("\n".join(_line(f, time=f / 30) for f in range(5)) + "\n")
    assert main([str(pred), "--out", str(tmp_path / "o"), "--weights", str(nan_weights), "--format", "none"]) == 0
    text = (tmp_path / "o" / "lift3d.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in lift3d.json"))
    assert doc["tracks"] == [] and "NaN" in doc["problems"][0]
    assert "dropped" in capsys.readouterr().err
