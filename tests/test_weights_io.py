"""The one weights format (utils.weights_io) and the files written before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pyramidpose import create_model, load_model, save_model
from pyramidpose.errors import CheckpointError
from pyramidpose.forecasting.train import load_forecaster
from pyramidpose.lifting.experiment import load_lifter
from pyramidpose.models.forecasting import ForecasterConfig, build_forecaster
from pyramidpose.models.lifting import build_lifter
from pyramidpose.training.loop import load_checkpoint
from pyramidpose.utils.weights_io import read_weights, write_weights

ASSETS = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets"


def test_round_trip_keeps_tensors_kind_and_config(tmp_path: Path) -> None:
    m = torch.nn.Linear(3, 2)
    write_weights(tmp_path / "w.safetensors", m, "lifter", {"model": {"hidden": 3}, "score": float("nan")})
    w = read_weights(tmp_path / "w.safetensors", "lifter")
    assert w.kind == "lifter" and not w.legacy
    assert w.config == {"model": {"hidden": 3}, "score": None}  # strict JSON: NaN stored as null
    assert all(torch.equal(w.state_dict[k], v) for k, v in m.state_dict().items())
    with pytest.raises(CheckpointError, match="holds a lifter model, not a forecaster model"):
        read_weights(tmp_path / "w.safetensors", "forecaster")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        (tmp_path / "bad.safetensors").write_bytes(b"not a file")
        read_weights(tmp_path / "bad.safetensors")


def test_pose_models_are_kind_pose2d_and_old_files_without_kind_load(tmp_path: Path) -> None:
    model = create_model("vitpose-tiny", input_size=(64, 48))
    path = save_model(model, tmp_path / "m.safetensors")
    assert read_weights(path).kind == "pose2d"
    # written before kinds existed: config in the metadata, no kind
    old = tmp_path / "old.safetensors"
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(old), metadata={"pyramidpose_config": json.dumps(model.config.to_dict()), "format": "pyramidpose"})
    again = load_model(old)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in sd.items())
    lifter = tmp_path / "lifter.safetensors"
    write_weights(lifter, torch.nn.Linear(2, 2), "lifter", {"model": {}})
    with pytest.raises(CheckpointError, match="holds a lifter model"):
        load_model(lifter)


def _legacy_files(tmp_path: Path, model: torch.nn.Module, meta: dict) -> Path:
    """The old lifter/forecaster layout: bare safetensors + the config in a JSON file beside it."""
    path = tmp_path / "best.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def test_legacy_lifter_and_forecaster_files_still_load(tmp_path: Path) -> None:
    lifter_cfg = {"kind": "mlp", "hidden": 32, "num_blocks": 1}
    lifter = build_lifter(lifter_cfg)
    (tmp_path / "l").mkdir()
    path = _legacy_files(tmp_path / "l", lifter, {"model": lifter_cfg, "fps": 30.0})
    loaded, meta = load_lifter(path)
    assert meta["fps"] == 30.0 and read_weights(path).legacy
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in lifter.state_dict().items())

    fcfg = ForecasterConfig(arch="dct_mlp", t_in=6, t_out=3, dims=3, num_layers=2)
    forecaster = build_forecaster(fcfg)
    (tmp_path / "f").mkdir()
    data = {"fps": 25.0, "t_in": 6, "t_out": 3, "dims": 3}
    path = _legacy_files(tmp_path / "f", forecaster, {"model": fcfg.to_dict(), "data": data})
    loaded, meta = load_forecaster(path)
    assert meta["data"] == data
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in forecaster.state_dict().items())
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="no config inside the file and no best.json"):
        load_forecaster(path)


def test_embedded_assets_still_load() -> None:
    """The shipped lifter and forecasters are old-layout files (safetensors + JSON beside them)."""
    lifter, meta = load_lifter(ASSETS / "lifter_default.safetensors")
    assert "model" in meta and not lifter.training
    for name in ("forecaster_default", "forecaster_default_2d"):
        model, meta = load_forecaster(ASSETS / f"{name}.safetensors")
        assert meta["data"]["dims"] in (2, 3) and not model.training
    assert load_forecaster(None)[1]["data"]["dims"] == 3


def test_loop_checkpoints_are_the_same_format(tmp_path: Path) -> None:
    from pyramidpose.training.loop import save_checkpoint

    m = torch.nn.Linear(4, 1)
    save_checkpoint(m, tmp_path / "x.safetensors", {"a": 1}, kind="forecaster")
    assert not (tmp_path / "x.json").exists()
    assert load_checkpoint(torch.nn.Linear(4, 1), tmp_path / "x.safetensors", kind="forecaster") == {"a": 1}
