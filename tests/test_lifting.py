"""Lifting models, virtual-camera pairs, multi-view loss, the generic trainer and the lift CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.lifting.data import (
    VirtualCameraConfig,
    load_cmu_subjects,
    make_eval_set,
    normalize_2d,
    sample_multiview,
    sample_pairs,
)
from pyramidpose.lifting.multiview import multiview_consistency_loss
from pyramidpose.models.lifting import LifterConfig, TemporalLifter, build_lifter, normalize_screen
from pyramidpose.skeletons import COCO, H36M
from pyramidpose.training.config import load_yaml_config
from pyramidpose.training.loop import TrainerConfig, fit, load_checkpoint, save_checkpoint
from pyramidpose.utils.weights_io import read_weights

MOCAP = Path(__file__).parent / "data" / "mocap"
ASSET = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "lifter_default.safetensors"


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory) -> Path:
    """A CMU-style tree from the bundled excerpt: subject 01 (train) and a copy as 03 (test)."""
    root = tmp_path_factory.mktemp("cmu")
    for subj in ("01", "03"):
        d = root / "subjects" / subj
        d.mkdir(parents=True)
        shutil.copyfile(MOCAP / "01.asf", d / f"{subj}.asf")
        shutil.copyfile(MOCAP / "01_01_first60.amc", d / f"{subj}_01.amc")
    return root


@pytest.fixture(scope="module")
def seqs(mini_root):
    return load_cmu_subjects(mini_root, ["01"], fps=30.0)


@pytest.mark.parametrize("rf", [27, 81, 243])
@pytest.mark.parametrize("causal", [False, True])
def test_temporal_strided_equals_dilated_and_causality(rf, causal):
    torch.manual_seed(0)
    m = TemporalLifter(LifterConfig(kind="temporal", receptive_field=rf, channels=32, causal=causal)).eval()
    assert m.receptive_field == rf
    x = torch.randn(2, rf + 4, 17, 2)
    y = m(x)
    assert y.shape == (2, 5, 17, 3)
    torch.testing.assert_close(m.forward_window(x[:, :rf]), y[:, 0], atol=1e-5, rtol=1e-5)
    assert torch.all(y[..., 0, :] == 0)  # root-relative
    seq = torch.randn(40, 17, 2)
    out = m.lift_sequence(seq)
    assert out.shape == (40, 17, 3)
    changed = seq.clone()
    changed[30:] += 1.0  # perturb the future after frame 29
    out2 = m.lift_sequence(changed)
    if causal:
        torch.testing.assert_close(out2[:30], out[:30])
    else:
        assert not torch.allclose(out2[25:30], out[25:30])


def test_mlp_and_build_errors():
    m = build_lifter({"kind": "mlp", "hidden": 64, "num_blocks": 1}).eval()
    y = m(torch.randn(5, 17, 2))
    assert y.shape == (5, 17, 3) and torch.all(y[:, 0] == 0)
    with pytest.raises(ConfigError, match="unknown lifter config"):
        build_lifter({"kind": "mlp", "hiden": 3})
    with pytest.raises(ConfigError, match="kind"):
        build_lifter({"kind": "transformer"})


def test_normalisation_conventions_agree():
    uv = np.array([[0.0, 0.0], [1000.0, 500.0], [500.0, 250.0]])
    a = normalize_2d(uv, 1000, 500)
    b = normalize_screen(torch.tensor(uv), 1000, 500).numpy()
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a[2], [0.0, 0.0])  # image centre -> origin
    np.testing.assert_allclose(a[1], [1.0, 0.5])


def test_eval_set_projection_consistent(seqs):
    cfg = VirtualCameraConfig()
    ev = make_eval_set(seqs, cfg, seed=0, cameras_per_seq=2)
    assert len(ev) == 2
    ev2 = make_eval_set(seqs, cfg, seed=0, cameras_per_seq=2)
    np.testing.assert_array_equal(ev[1].x2d, ev2[1].x2d)  # fixed seed -> same test set
    s, e = seqs[0], ev[0]
    Xc = e.camera.world_to_camera(s.h36m.astype(np.float64))
    np.testing.assert_allclose(e.y3d, Xc - Xc[:, :1], atol=1e-5)
    uv = e.camera.project(s.coco.astype(np.float64))
    np.testing.assert_allclose(e.x2d, normalize_2d(uv, 1000, 1000), atol=1e-5)
    # COCO knee and H36M knee are the same CMU joint: their projections coincide
    kn = e.camera.project(s.h36m[:, H36M.index("left_knee")].astype(np.float64))
    np.testing.assert_allclose(uv[:, COCO.index("left_knee")], kn, atol=1e-3)
    assert np.all(Xc[..., 2] > 1.0)  # subject in front of the camera


def test_sample_pairs_shapes_noise_and_drop(seqs):
    rng = np.random.default_rng(0)
    cfg = VirtualCameraConfig(noise_px=0.0)
    b = sample_pairs(seqs, rng, 16, cfg, window=27)
    assert b["x2d"].shape == (16, 27, 17, 2) and b["y3d"].shape == (16, 17, 3)
    assert np.allclose(b["y3d"][:, 0], 0)
    bone = np.linalg.norm(b["y3d"][:, H36M.index("left_knee")] - b["y3d"][:, H36M.index("left_hip")], axis=-1)
    np.testing.assert_allclose(bone, bone[0], atol=1e-4)  # rigid limb length in every camera
    noisy = sample_pairs(seqs, np.random.default_rng(0), 16, VirtualCameraConfig(noise_px=5.0))
    clean = sample_pairs(seqs, np.random.default_rng(0), 16, VirtualCameraConfig(noise_px=0.0))
    assert not np.allclose(noisy["x2d"], clean["x2d"])
    dropped = sample_pairs(seqs, rng, 64, VirtualCameraConfig(drop_prob=0.3))
    frac = 1 - dropped["visible"].mean()
    assert 0.15 < frac < 0.45 and np.all(dropped["x2d"][~dropped["visible"]] == 0)


def test_multiview_loss_zero_for_truth_and_scale_normalised(seqs):
    b = sample_multiview(seqs, np.random.default_rng(1), 8, VirtualCameraConfig(), num_views=3)
    args = [torch.tensor(b[k]) for k in ("obs2d", "K", "R", "t")]
    y = torch.tensor(b["y3d"], requires_grad=True)
    loss, parts = multiview_consistency_loss(y, *args, 1000.0)
    assert float(loss.detach()) < 1e-4
    # scale normalisation: a uniformly scaled prediction reprojects perfectly, only the scale term sees it
    loss_s, parts_s = multiview_consistency_loss(y * 1.5, *args, 1000.0)
    assert parts_s["cross"] < 1e-4 and parts_s["scale"] > 0.1
    # a wrong pose is penalised by the cross-view term, and gradients flow
    wrong = y.clone()
    wrong = wrong + torch.randn_like(wrong) * 0.1
    loss_w, parts_w = multiview_consistency_loss(wrong, *args, 1000.0)
    assert parts_w["cross"] > 100 * max(parts["cross"], 1e-7)
    loss_w.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_trainer_fits_and_writes_artifacts(tmp_path):
    torch.manual_seed(0)
    w_true = torch.randn(4, 1)
    model = torch.nn.Linear(4, 1)

    def batches(epoch):
        g = torch.Generator().manual_seed(epoch)
        for _ in range(20):
            x = torch.randn(32, 4, generator=g)
            yield x, x @ w_true

    def loss_fn(m, batch, device):
        x, y = (t.to(device) for t in batch)
        return torch.nn.functional.mse_loss(m(x).float(), y), {}

    def evaluate(m, device):
        x = torch.randn(64, 4)
        return {"val_mse": float(torch.nn.functional.mse_loss(m(x), x @ w_true))}

    cfg = TrainerConfig(epochs=3, steps_per_epoch=20, lr=0.05, warmup_steps=2, precision="fp32", progress=False)
    res = fit(model, batches, loss_fn, cfg, tmp_path, evaluate=evaluate, monitor="val_mse", save_config={"a": 1})
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    for name in ("metrics.csv", "best.safetensors", "last.safetensors", "loss_curve.png"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "best.json").exists()  # the config is inside the weights file
    stored = read_weights(tmp_path / "best.safetensors")
    meta = stored.config
    assert stored.kind == "model" and not stored.legacy
    assert meta["a"] == 1 and meta["epoch"] == res.best_epoch and "trainer" in meta
    fresh = torch.nn.Linear(4, 1)
    load_checkpoint(fresh, tmp_path / "best.safetensors")
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(torch.nn.Linear(5, 1), tmp_path / "best.safetensors")
    with pytest.raises(CheckpointError, match="missing keys"):
        load_checkpoint(torch.nn.Sequential(torch.nn.Linear(4, 1)), tmp_path / "best.safetensors")
    save_checkpoint(fresh, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.json").exists()


def test_yaml_config_errors(tmp_path):
    from pyramidpose.lifting.experiment import LiftExperimentConfig

    good = tmp_path / "good.yaml"
    good.write_text("model:\n  kind: mlp\n  hidden: 64\ntrainer:\n  epochs: 2\n  lr: 1\n")
    cfg = load_yaml_config(good, LiftExperimentConfig)
    assert cfg.model.hidden == 64 and cfg.trainer.lr == 1.0 and cfg.data.train_subjects == ["01", "02"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  kidn: mlp\n")
    with pytest.raises(ConfigError, match="kidn"):
        load_yaml_config(bad, LiftExperimentConfig)
    bad.write_text("trainer:\n  epochs: many\n")
    with pytest.raises(ConfigError, match="epochs"):
        load_yaml_config(bad, LiftExperimentConfig)
    for name in ("lift_cmu_temporal", "lift_cmu_mlp", "lift_cmu_multiview"):
        load_yaml_config(Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml", LiftExperimentConfig)


def test_cli_train_eval_tiny(tmp_path, mini_root):
    from pyramidpose.commands.lift import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "mode: supervised\nmodel:\n  kind: temporal\n  channels: 16\n"
        f"data:\n  root: {mini_root}\n  train_subjects: ['01']\n  test_subjects: ['03']\n  val_trials: []\n"
        "  batch_size: 8\n  eval_cameras_per_seq: 1\n"
        "trainer:\n  epochs: 1\n  steps_per_epoch: 3\n  progress: false\n  precision: fp32\n"
    )
    assert main(["train", str(cfg), "--work-dir", str(tmp_path / "run")]) == 0
    w = tmp_path / "run" / "best.safetensors"
    assert w.is_file() and (tmp_path / "run" / "metrics.csv").is_file()
    out = tmp_path / "m.json"
    assert main(["eval", "--weights", str(w), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    for k in ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "mean_pose_mpjpe_mm", "nearest_neighbour_p_mpjpe_mm"):
        assert np.isfinite(m[k]) and m[k] > 0, k
    assert m["p_mpjpe_mm"] <= m["mpjpe_mm"] + 1e-6


def _fake_predictions(path: Path, seqs, n_frames: int = 12) -> None:
    """COCO-17 2D tracks in the video pipeline's JSONL layout, projected from real mocap."""
    cam_cfg = VirtualCameraConfig()
    ev = make_eval_set(seqs, cam_cfg, seed=3, cameras_per_seq=1)[0]
    uv = ev.camera.project(seqs[0].coco.astype(np.float64))[:n_frames]
    lines = []
    for f in range(n_frames):
        inst = []
        for tid, shift in ((1, 0.0), (2, 300.0)):
            if tid == 2 and f == 4:
                continue  # a gap in track 2
            kp = uv[f] + np.array([shift, 0.0])
            lo, hi = kp.min(0), kp.max(0)
            scores = [0.9] * 17
            if tid == 1 and f == 6:  # a detector failure: wrong left wrist with a low score
                kp = kp.copy()
                kp[COCO.index("left_wrist")] += 250.0
                scores[COCO.index("left_wrist")] = 0.01
            inst.append({"track_id": tid, "bbox": [*lo.tolist(), *hi.tolist()], "keypoints": kp.tolist(),
                         "keypoint_scores": scores, "score": 0.95})  # fmt: skip
        lines.append(json.dumps({"frame": f, "time": f / 30.0, "instances": inst}))
    lines.append("{not json")
    path.write_text("\n".join(lines) + "\n")


def test_cli_lift_predictions(tmp_path, seqs):
    from pyramidpose.commands.lift import main

    if not ASSET.is_file():
        pytest.skip("embedded lifter not built yet (benchmarks/lift_table.py --ship)")
    pred = tmp_path / "pred.jsonl"
    _fake_predictions(pred, seqs)
    out = tmp_path / "out"
    assert main([str(pred), "--out", str(out), "--format", "gif"]) == 0
    doc = json.loads((out / "lift3d.json").read_text())
    assert len(doc["tracks"]) == 2 and doc["layout"] == "h36m"
    t1, t2 = doc["tracks"]
    assert len(t1["frames"]) == 12 and len(t2["frames"]) == 11 and 4 not in t2["frames"]
    y = np.asarray(t1["keypoints3d"])
    assert y.shape == (12, 17, 3) and np.allclose(y[:, 0], 0)
    thigh = np.linalg.norm(y[:, H36M.index("left_knee")] - y[:, H36M.index("left_hip")], axis=-1)
    assert np.all((thigh > 0.2) & (thigh < 0.7))  # plausible metric limb lengths
    assert any("not a frame record" in p for p in doc["problems"])
    # the low-score wrist was replaced by interpolating its confident neighbours (frames 5 and 7)
    k2 = np.asarray(t1["keypoints2d"])
    lw = COCO.index("left_wrist")
    np.testing.assert_allclose(k2[6, lw], (k2[5, lw] + k2[7, lw]) / 2, atol=0.02)
    assert (out / "lift3d.gif").is_file()
    # known image size gives a similar pose (both normalisations are in the training distribution)
    assert main([str(pred), "--out", str(tmp_path / "o2"), "--width", "1000", "--height", "1000",
                 "--format", "none"]) == 0  # fmt: skip
    y2 = np.asarray(json.loads((tmp_path / "o2" / "lift3d.json").read_text())["tracks"][0]["keypoints3d"])
    assert np.linalg.norm(y2 - y, axis=-1).mean() < 0.15


def test_cli_errors(tmp_path):
    from pyramidpose.commands.lift import main
    from pyramidpose.errors import DataError

    with pytest.raises(CheckpointError, match="not found"):
        main(["eval", "--weights", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "m.json")])
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"frame": 0, "instances": []}\n')
    if ASSET.is_file():
        with pytest.raises(DataError, match="no usable instances"):
            main([str(empty), "--out", str(tmp_path / "o")])
    with pytest.raises(DataError, match="width"):
        main([str(empty), "--out", str(tmp_path / "o"), "--width", "100"])


def test_cli_train_multiview_weak_mode(tmp_path, mini_root):
    from pyramidpose.commands.lift import main

    cfg = tmp_path / "mv.yaml"
    body = (f"data:\n  root: {mini_root}\n  train_subjects: ['01']\n  test_subjects: ['03']\n  val_trials: []\n"
            "  batch_size: 8\ntrainer:\n  epochs: 1\n  steps_per_epoch: 3\n  progress: false\n  precision: fp32\n")  # fmt: skip
    cfg.write_text("mode: multiview\nmodel:\n  kind: mlp\n  hidden: 32\n  num_blocks: 1\n" + body)
    assert main(["train", str(cfg), "--work-dir", str(tmp_path / "mv")]) == 0
    header = (tmp_path / "mv" / "metrics.csv").read_text().splitlines()[0]
    assert "cross" in header and "val_mpjpe_mm" in header  # weak loss terms logged, 3D only for validation
    cfg.write_text("mode: multiview\nmodel:\n  kind: temporal\n" + body)
    with pytest.raises(ConfigError, match="single-frame"):
        main(["train", str(cfg), "--work-dir", str(tmp_path / "mv2")])
