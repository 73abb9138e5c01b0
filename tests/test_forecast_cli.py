"""`pyramidpose forecast` end to end on tiny data: train, eval, forecast a sequence (AMC / .npy),
and clear errors for bad input. The embedded default is evaluated on real subject 03 when the shared
data is present."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pyramidpose import cli
from pyramidpose.forecasting.train import DEFAULT_WEIGHTS, DEFAULT_WEIGHTS_2D, load_forecaster
from pyramidpose.models.forecasting import ForecasterConfig, build_forecaster
from pyramidpose.training.loop import save_checkpoint
from pyramidpose.utils.weights_io import read_weights, write_weights

MOCAP = Path(__file__).parent / "data" / "mocap"


@pytest.fixture
def tiny_cmu(tmp_path: Path) -> Path:
    """A CMU-like tree with the bundled 0.5 s excerpt as training subject 01 and test subject 03."""
    root = tmp_path / "cmu"
    for s in ("01", "03"):
        d = root / "subjects" / s
        d.mkdir(parents=True)
        shutil.copy(MOCAP / "01.asf", d / f"{s}.asf")
        shutil.copy(MOCAP / "01_01_first60.amc", d / f"{s}_01.amc")
    return root


def _tiny_checkpoint(path: Path, t_in: int = 6, t_out: int = 3, dims: int = 3, fps: float = 60.0) -> Path:
    cfg = ForecasterConfig(arch="dct_mlp", t_in=t_in, t_out=t_out, dims=dims, num_layers=2)
    model = build_forecaster(cfg)
    meta = {
        "name": "tiny",
        "model": cfg.to_dict(),
        "data": {"fps": fps, "t_in": t_in, "t_out": t_out, "dims": dims, "train_subjects": ["01"],
                 "test_subjects": ["03"]},
    }  # fmt: skip
    save_checkpoint(model, path, meta, kind="forecaster")
    return path


def test_train_then_eval_then_forecast_on_tiny_data(tmp_path, tiny_cmu, one_thread, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        f"name: tiny\n"
        f"data: {{root: {tiny_cmu}, train_subjects: ['01'], test_subjects: ['03'], fps: 60.0, t_in: 6,\n"
        f"       t_out: 5, val_fraction: 0.4, phases: 2}}\n"
        f"model: {{arch: transformer, tokens: joint, d_model: 16, num_heads: 2, ff_dim: 32, num_layers: 1}}\n"
        f"trainer: {{epochs: 2, steps_per_epoch: 3, warmup_steps: 1, progress: false}}\n"
        f"batch_size: 8\n"
    )
    work = tmp_path / "run"
    assert cli.main(["forecast", "train", str(cfg), "--work-dir", str(work), "--no-progress"]) == 0
    for f in ("best.safetensors", "metrics.csv", "loss_curve.png", "test_metrics.json", "results.md"):
        assert (work / f).is_file(), f
    assert not (work / "best.json").exists()  # the config is inside the weights file now
    test = json.loads((work / "test_metrics.json").read_text())
    assert test["subjects"] == ["03"] and test["num_windows"] == 30 - 11 + 1
    assert {"model_mm_80", "zero_velocity_mm_80", "constant_velocity_mm_80"} <= set(test)  # 80 ms = frame 5 at 60 fps
    assert "| tiny |" in (work / "results.md").read_text()

    out = tmp_path / "metrics.json"
    args = ["forecast", "eval", "--weights", str(work / "best.safetensors"), "--data", str(tiny_cmu)]
    assert cli.main([*args, "--out", str(out), "--no-progress"]) == 0
    ev = json.loads(out.read_text())
    assert ev["subjects"] == ["03"] and ev["model_mm_80"] == pytest.approx(test["model_mm_80"], abs=0.02)
    assert ev["zero_velocity_mm_80"] == test["zero_velocity_mm_80"]

    seq_out = tmp_path / "seq"
    amc = tiny_cmu / "subjects" / "03" / "03_01.amc"
    argv = ["forecast", str(amc), "--weights", str(work / "best.safetensors"), "--out", str(seq_out)]
    assert cli.main([*argv, "--start", "2"]) == 0
    summary = json.loads((seq_out / "forecast.json").read_text())
    assert summary["start_frame"] == 2 and summary["true_future_known"]
    assert (seq_out / "forecast.png").stat().st_size > 1000 and (seq_out / "forecast.gif").stat().st_size > 1000
    pred, obs = np.load(seq_out / "predicted.npy"), np.load(seq_out / "observed.npy")
    assert pred.shape == (5, 17, 3) and obs.shape == (6, 17, 3)
    np.testing.assert_allclose(obs[:, 0], 0, atol=1e-6)  # root-relative


def test_forecast_npy_2d_with_a_2d_model_and_mp4(tmp_path, one_thread):
    ckpt = _tiny_checkpoint(tmp_path / "f2d.safetensors", t_in=5, t_out=3, dims=2, fps=25.0)
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(8, 17, 2)).astype(np.float32) * 20 + 300  # pixels
    seq[:, 8] = seq[:, 0] + [0.0, -100.0]  # thorax 100 px above the pelvis
    np.save(tmp_path / "kp.npy", seq)
    out = tmp_path / "o"
    argv = ["forecast", str(tmp_path / "kp.npy"), "--weights", str(ckpt), "--out", str(out), "--animation", "mp4"]
    assert cli.main(argv) == 0
    s = json.loads((out / "forecast.json").read_text())
    assert s["unit"] == "pixels" and s["error_unit"] == "pixels" and s["start_frame"] == 0
    # an untrained residual model = zero velocity, so the errors agree and are in pixels
    assert s["model_error"]["80"] == pytest.approx(s["zero_velocity_error"]["80"], rel=1e-4)
    assert s["model_error"]["80"] > 5
    assert (out / "forecast.mp4").stat().st_size > 1000


def test_forecast_errors_are_clear(tmp_path, capsys):
    ckpt = _tiny_checkpoint(tmp_path / "f3d.safetensors")
    np.save(tmp_path / "bad.npy", np.zeros((10, 5, 3), np.float32))
    np.save(tmp_path / "kp2d.npy", np.zeros((10, 17, 2), np.float32))
    np.save(tmp_path / "short.npy", np.zeros((3, 17, 3), np.float32))
    cases = [
        (["forecast", str(tmp_path / "bad.npy")], "expected a numeric array"),
        (["forecast", str(tmp_path / "kp2d.npy")], "needs a 2D forecaster"),
        (["forecast", str(tmp_path / "short.npy")], "use a longer sequence"),
        (["forecast", str(tmp_path / "missing.amc")], "not found"),
    ]
    for argv, msg in cases:
        assert cli.main([*argv, "--weights", str(ckpt), "--out", str(tmp_path / "o")]) == 2
        assert msg in capsys.readouterr().err
    wrong = _tiny_checkpoint(tmp_path / "wrong.safetensors")
    stored = read_weights(wrong)
    meta = stored.config
    meta["model"]["num_layers"] = 5  # the config no longer matches the weights
    write_weights(wrong, stored.state_dict, "forecaster", meta)
    assert cli.main(["forecast", "eval", "--weights", str(wrong), "--out", str(tmp_path / "m.json")]) == 2
    assert "does not match the model" in capsys.readouterr().err
    meta["model"]["num_layers"] = 2
    del meta["data"]["fps"]
    write_weights(wrong, stored.state_dict, "forecaster", meta)
    assert cli.main(["forecast", "eval", "--weights", str(wrong), "--out", str(tmp_path / "m.json")]) == 2
    assert "lacks ['fps']" in capsys.readouterr().err


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="embedded forecaster not built yet")
def test_embedded_default_loads_and_is_small():
    model, meta = load_forecaster()
    assert meta["data"]["fps"] == 25.0 and meta["data"]["t_in"] == 50 and meta["data"]["t_out"] == 25
    assert DEFAULT_WEIGHTS.stat().st_size < 4_000_000
    obs = torch.zeros(1, 50, 17, 3)
    assert model(obs).shape == (1, 25, 17, 3)


def test_default_beats_zero_velocity_on_held_out_subject(shared_data, tmp_path):
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("embedded forecaster not built yet")
    out = tmp_path / "m.json"
    data = shared_data / "cmu-mocap"
    assert cli.main(["forecast", "eval", "--data", str(data), "--out", str(out), "--no-progress"]) == 0
    m = json.loads(out.read_text())
    assert m["subjects"] == ["03"] and m["num_windows"] > 1000
    for ms in (80, 160, 320, 400, 560, 1000):
        assert m[f"model_mm_{ms}"] < m[f"zero_velocity_mm_{ms}"], ms


@pytest.mark.skipif(not DEFAULT_WEIGHTS_2D.is_file(), reason="embedded 2D forecaster not built yet")
def test_2d_input_uses_the_embedded_2d_forecaster(tmp_path):
    # a real motion seen in 2D: the bundled excerpt, root-relative, orthographic view, in pixels
    from pyramidpose.data.mocap import load_cmu_sequence
    from pyramidpose.forecasting.data import to_2d

    p = load_cmu_sequence(MOCAP / "01.asf", MOCAP / "01_01_first60.amc", fps=120)
    px = to_2d(p - p[:, :1]) * 500 + [320.0, 240.0]  # 60 frames, treated as 25 fps
    np.save(tmp_path / "kp.npy", px.astype(np.float32))
    out = tmp_path / "o"
    assert cli.main(["forecast", str(tmp_path / "kp.npy"), "--out", str(out), "--animation", "none"]) == 0
    s = json.loads((out / "forecast.json").read_text())
    assert s["unit"] == "pixels" and s["t_in"] == 50 and not s["true_future_known"]
    pred = np.load(out / "predicted.npy")
    assert pred.shape == (25, 17, 2) and np.isfinite(pred).all()
    assert np.abs(pred).max() < 2000  # in pixels, around the root, not meters
    assert np.abs(pred).max() > 50
