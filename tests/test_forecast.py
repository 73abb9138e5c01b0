"""Forecasting: baselines on hand-worked sequences, metrics, windowing (never mixing sequences or
subjects), mirroring, and the models (residual start, 2D, overfitting a single real window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pyramidpose.errors import ConfigError, DataError
from pyramidpose.forecasting.baselines import constant_velocity, run_baseline, zero_velocity
from pyramidpose.forecasting.metrics import HORIZONS_MS, horizon_frame, horizon_mpjpe, mpjpe_per_frame
from pyramidpose.forecasting.windows import (
    MotionSequence,
    MotionWindows,
    augment_mirrored,
    center_on_joint,
    mirror_poses,
    resample_linear,
    split_tail,
    window_starts,
)
from pyramidpose.models.forecasting import (
    ForecasterConfig,
    build_forecaster,
    dct_matrix,
)
from pyramidpose.skeletons import H36M

MOCAP = Path(__file__).parent / "data" / "mocap"


# ----------------------------------------------------------------------------- baselines
def _line(xs: list[float]) -> np.ndarray:
    """Frames of one joint moving along x: [T, 1, 3]."""
    return np.array([[[x, 0.0, 0.0]] for x in xs], dtype=np.float32)


def test_zero_velocity_repeats_the_last_pose():
    obs = _line([0.0, 1.0, 3.0])
    pred = zero_velocity(obs, 4)
    assert pred.shape == (4, 1, 3)
    np.testing.assert_array_equal(pred[:, 0, 0], [3, 3, 3, 3])
    np.testing.assert_array_equal(pred[..., 1:], 0)


def test_constant_velocity_extrapolates_the_last_step():
    # last step 1 -> 3 is +2 per frame: 5, 7, 9
    obs = _line([0.0, 1.0, 3.0])
    np.testing.assert_array_equal(constant_velocity(obs, 3)[:, 0, 0], [5, 7, 9])
    # 2 joints, 2D, a batch of 2: joint 1 moves (-1, +0.5) per frame
    obs2 = np.zeros((2, 2, 2, 2), np.float32)
    obs2[:, 1, 1] = [-1.0, 0.5]
    pred = constant_velocity(obs2, 2)
    np.testing.assert_allclose(pred[0, :, 1], [[-2.0, 1.0], [-3.0, 1.5]])
    np.testing.assert_array_equal(pred[:, :, 0], 0)


def test_baselines_accept_torch_tensors():
    obs = torch.from_numpy(_line([0.0, 1.0, 3.0]))[None]
    assert torch.equal(run_baseline("zero_velocity", obs, 2)[0, :, 0, 0], torch.tensor([3.0, 3.0]))
    assert torch.equal(run_baseline("constant_velocity", obs, 2)[0, :, 0, 0], torch.tensor([5.0, 7.0]))
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baseline("oracle", obs, 2)


# ----------------------------------------------------------------------------- metrics
def test_horizons_at_25_fps_are_the_standard_frames():
    assert [horizon_frame(ms, 25) for ms in HORIZONS_MS] == [2, 4, 8, 10, 14, 25]
    assert horizon_frame(1000, 50) == 50


def test_mpjpe_per_frame_hand_worked():
    target = np.zeros((1, 2, 2, 3))
    pred = np.zeros((1, 2, 2, 3))
    pred[0, 0, 0] = [3, 4, 0]  # frame 0: joint errors 5 and 0 -> 2.5
    pred[0, 1, :] = [0, 0, 2]  # frame 1: both 2 -> 2
    np.testing.assert_allclose(mpjpe_per_frame(pred, target), [2.5, 2.0])
    np.testing.assert_allclose(mpjpe_per_frame(pred, target, joints=[0]), [5.0, 2.0])


def test_horizon_mpjpe_picks_the_right_frames_in_mm():
    t_out = 25
    target = np.zeros((3, t_out, 1, 3))
    pred = np.zeros_like(target)
    pred[:, :, 0, 0] = np.arange(1, t_out + 1) / 1000.0  # error of future frame f is f mm
    out = horizon_mpjpe(pred, target, fps=25)
    assert out == pytest.approx({80: 2, 160: 4, 320: 8, 400: 10, 560: 14, 1000: 25})
    assert set(horizon_mpjpe(pred[:, :10], target[:, :10], fps=25)) == {80, 160, 320, 400}


# ----------------------------------------------------------------------------- windows
def _coded_sequence(subject: int, seq: int, frames: int, k: int = 3) -> MotionSequence:
    """x = subject, y = sequence, z = frame index, so a window's origin can be read back."""
    p = np.zeros((frames, k, 3), np.float32)
    p[..., 0] = subject
    p[..., 1] = seq
    p[..., 2] = np.arange(frames, dtype=np.float32)[:, None]
    return MotionSequence(p, f"{subject:02d}", f"{subject:02d}_{seq:02d}", 25.0)


def test_windows_never_mix_sequences_or_subjects():
    seqs = [_coded_sequence(1, 1, 30), _coded_sequence(1, 2, 7), _coded_sequence(2, 1, 12),
            _coded_sequence(3, 5, 9)]  # fmt: skip
    t_in, t_out, stride = 5, 3, 2
    win = MotionWindows(seqs, t_in, t_out, stride)
    expected = sum(len(range(0, s.num_frames - 8 + 1, stride)) for s in seqs)
    assert len(win) == expected == 12 + 0 + 3 + 1
    seen = set()
    for i in range(len(win)):
        obs, fut = win[i]
        w = np.concatenate([obs, fut])
        subject, name, start = win.source(i)
        assert obs.shape == (t_in, 3, 3) and fut.shape == (t_out, 3, 3)
        assert np.unique(w[..., 0]).size == 1 and np.unique(w[..., 1]).size == 1  # one subject, one seq
        assert f"{int(w[0, 0, 0]):02d}" == subject and name.endswith(f"_{int(w[0, 0, 1]):02d}")
        np.testing.assert_array_equal(w[:, 0, 2], np.arange(start, start + 8))  # contiguous frames
        seen.add((subject, name, start))
    assert len(seen) == len(win)
    o_all, f_all = win.arrays()
    for i in (0, 5, len(win) - 1):
        np.testing.assert_array_equal(o_all[i], win[i][0])
        np.testing.assert_array_equal(f_all[i], win[i][1])


def test_window_starts_and_short_sequences():
    np.testing.assert_array_equal(window_starts(10, 4, 3), [0, 3, 6])
    assert window_starts(3, 4, 1).size == 0
    with pytest.raises(ValueError):
        window_starts(10, 0, 1)
    win = MotionWindows([_coded_sequence(1, 1, 4)], 3, 2)
    assert len(win) == 0 and win.arrays()[0].shape == (0, 3, 3, 3)


def test_windows_reject_mixed_layouts_and_duplicate_names():
    with pytest.raises(DataError, match="layouts"):
        MotionWindows([_coded_sequence(1, 1, 9), _coded_sequence(1, 2, 9, k=4)], 2, 2)
    with pytest.raises(DataError, match="unique"):
        MotionWindows([_coded_sequence(1, 1, 9), _coded_sequence(1, 1, 9)], 2, 2)
    with pytest.raises(DataError, match="NaN"):
        MotionSequence(np.full((4, 2, 3), np.nan), "01", "x", 25.0)


def test_split_tail_and_mirrored_copies_are_separate_sequences():
    seq = _coded_sequence(1, 1, 40)
    head, tail = split_tail(seq, 0.25)
    assert head.num_frames == 30 and tail.num_frames == 10 and tail.name != head.name
    seqs = augment_mirrored([head, tail], flip_index=[0, 2, 1])
    assert [s.name for s in seqs] == ["01_01", "01_01@tail", "01_01@mirror", "01_01@tail@mirror"]
    win = MotionWindows(seqs, 4, 4)
    assert len(win) == 2 * ((30 - 7) + (10 - 7))  # no window crosses the cut or a copy


def test_mirror_swaps_left_right_and_negates_the_lateral_axis():
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(5, 17, 3)).astype(np.float32)
    m = mirror_poses(poses, H36M.flip_index(), lateral_axis=0)
    li, ri = H36M.index("left_wrist"), H36M.index("right_wrist")
    np.testing.assert_allclose(m[:, li, 0], -poses[:, ri, 0])
    np.testing.assert_allclose(m[:, li, 1:], poses[:, ri, 1:])
    np.testing.assert_allclose(m[:, 0], poses[:, 0] * [-1, 1, 1])  # pelvis stays, mirrored
    np.testing.assert_allclose(mirror_poses(m, H36M.flip_index()), poses)  # an involution
    m2 = mirror_poses(poses[..., :2], H36M.flip_index())  # 2D keypoints too
    np.testing.assert_allclose(m2[:, li], poses[:, ri, :2] * [-1, 1])


def test_resample_linear_and_centering():
    ramp = np.arange(121, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)  # 1 s at 120
    out = resample_linear(ramp, 120, 25)
    assert out.shape[0] == 26
    np.testing.assert_allclose(out[:, 0, 0], np.arange(26) * 4.8, atol=1e-4)
    shifted = resample_linear(ramp, 120, 25, phase=0.5)
    np.testing.assert_allclose(shifted[:3, 0, 0], (np.arange(3) + 0.5) * 4.8, atol=1e-4)
    c = center_on_joint(np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3), 1)
    np.testing.assert_array_equal(c[0, :, 1], 0)
    np.testing.assert_array_equal(c[0, :, 0], -3)


# ----------------------------------------------------------------------------- models
def test_dct_matrix_is_orthonormal():
    d = dct_matrix(50)
    torch.testing.assert_close(d @ d.T, torch.eye(50), atol=1e-5, rtol=0)
    x = torch.ones(50)
    assert torch.allclose((d @ x)[1:], torch.zeros(49), atol=1e-5)  # a constant is only the DC term


VARIANTS = [("dct_mlp", "frame"), ("transformer", "frame"), ("transformer", "joint")]


@pytest.mark.parametrize("arch,tokens", VARIANTS)
@pytest.mark.parametrize("dims", [3, 2])
def test_untrained_model_starts_as_zero_velocity(arch, tokens, dims):
    cfg = ForecasterConfig(
        arch=arch, tokens=tokens, dims=dims, t_in=12, t_out=6, num_layers=2, d_model=32, ff_dim=64
    )
    model = build_forecaster(cfg).eval()
    obs = torch.randn(3, 12, 17, dims)
    pred = model(obs)
    assert pred.shape == (3, 6, 17, dims)
    torch.testing.assert_close(pred, obs[:, -1:].expand_as(pred), atol=1e-5, rtol=0)


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="unknown forecaster arch"):
        ForecasterConfig(arch="rnn")
    with pytest.raises(ConfigError, match="unknown forecaster config keys"):
        ForecasterConfig.from_dict({"arch": "dct_mlp", "layers": 3})
    with pytest.raises(ConfigError, match="tokens"):
        ForecasterConfig(arch="transformer", tokens="patch")
    with pytest.raises(ConfigError, match="t_out <= t_in"):
        ForecasterConfig(arch="dct_mlp", t_in=10, t_out=20)
    cfg = ForecasterConfig(arch="transformer", num_layers=1)
    assert ForecasterConfig.from_dict(cfg.to_dict()) == cfg


def _real_window() -> tuple[torch.Tensor, torch.Tensor]:
    """One real CMU window (the bundled 0.5 s excerpt at 120 fps): 40 frames in, 20 out, root-relative."""
    from pyramidpose.data.mocap import load_cmu_sequence

    p = load_cmu_sequence(MOCAP / "01.asf", MOCAP / "01_01_first60.amc")
    p = torch.from_numpy(center_on_joint(p, 0)).float()
    return p[None, :40], p[None, 40:60]


@pytest.mark.parametrize(
    "arch,tokens,lr",
    [("dct_mlp", "frame", 1e-3), ("transformer", "frame", 2e-3), ("transformer", "joint", 2e-3)],
)
def test_model_overfits_a_single_window(arch, tokens, lr, one_thread):
    torch.manual_seed(0)
    obs, fut = _real_window()
    cfg = ForecasterConfig(
        arch=arch, tokens=tokens, t_in=40, t_out=20, num_layers=4, d_model=32, ff_dim=64, dropout=0.0
    )
    model = build_forecaster(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def err() -> float:
        with torch.no_grad():
            return float((model(obs) - fut).norm(dim=-1).mean())

    zv = float((zero_velocity(obs, 20) - fut).norm(dim=-1).mean())
    assert err() == pytest.approx(zv, rel=1e-4)  # residual start
    for _ in range(400):
        opt.zero_grad()
        loss = (model(obs) - fut).norm(dim=-1).mean()
        loss.backward()
        opt.step()
    assert zv > 0.01  # the window really moves (> 1 cm on average)
    assert err() < 0.15 * zv, f"{arch}: {err():.4f} m after 400 steps vs zero-velocity {zv:.4f} m"


def test_batches_equal_single_windows():
    seqs = [_coded_sequence(1, 1, 20), _coded_sequence(2, 3, 15)]
    win = MotionWindows(seqs, 4, 2, stride=3)
    idx = np.array([len(win) - 1, 0, 4, 5])
    obs, fut = win.batch(idx)
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(obs[j], win[i][0])
        np.testing.assert_array_equal(fut[j], win[i][1])


def test_splits_keep_subjects_apart(tmp_path):
    from pyramidpose.forecasting.data import ForecastDataConfig, build_splits

    cfg = ForecastDataConfig(root=str(tmp_path), train_subjects=["01", "03"], test_subjects=["03"])
    with pytest.raises(DataError, match="both the training and the test split"):
        build_splits(cfg, progress=False)


def test_real_splits_train_on_01_02_and_test_on_03(tmp_path):
    """On a CMU-like tree built from the bundled excerpt: every window's subject is in its split."""
    import shutil

    from pyramidpose.forecasting.data import ForecastDataConfig, build_splits

    for s in ("01", "02", "03"):
        d = tmp_path / "subjects" / s
        d.mkdir(parents=True)
        shutil.copy(MOCAP / "01.asf", d / f"{s}.asf")
        shutil.copy(MOCAP / "01_01_first60.amc", d / f"{s}_01.amc")
    cfg = ForecastDataConfig(root=str(tmp_path), fps=60.0, t_in=4, t_out=3, val_fraction=0.3, phases=2)
    splits = build_splits(cfg, progress=False)
    subjects = {k: {MotionWindows(v, 4, 3).source(i)[0] for i in range(len(MotionWindows(v, 4, 3)))}
                for k, v in splits.items()}  # fmt: skip
    assert subjects == {"train": {"01", "02"}, "val": {"01", "02"}, "test": {"03"}}
    names = [s.name for s in splits["train"]]
    assert len(names) == 2 * 2 * 2 and any("@mirror" in n for n in names) and any("@phase1" in n for n in names)
