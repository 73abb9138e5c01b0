"""Layer-wise lr decay, weight-decay exclusions, schedules, EMA and the keypoint loss."""

from __future__ import annotations

import math

import pytest
import torch

from pyramidpose import create_model
from pyramidpose.training.config import OptimConfig
from pyramidpose.training.loop import TrainerConfig, make_schedule
from pyramidpose.training.losses import KeypointMSELoss, keypoint_mse
from pyramidpose.training.optim import ModelEMA, build_optimizer, param_groups
from pyramidpose.training.schedule import LRScheduler, vitpose_schedule


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return create_model("vitpose-tiny", input_size=(64, 48))


def test_layer_decay_scales_and_no_weight_decay_sets(tiny: torch.nn.Module) -> None:
    cfg = OptimConfig(lr=1.0, layer_decay=0.75, weight_decay=0.1)
    depth = tiny.config.depth
    by_name = {}
    for g in param_groups(tiny, cfg):
        for n in g["names"]:
            by_name[n] = (g["lr_scale"], g["weight_decay"])
    assert by_name["head.final_layer.weight"][0] == pytest.approx(1.0)
    assert by_name["backbone.last_norm.weight"] == (pytest.approx(1.0), 0.0)
    assert by_name["backbone.patch_embed.proj.weight"][0] == pytest.approx(0.75 ** (depth + 1))
    for i in range(depth):
        scale, wd = next(v for n, v in by_name.items() if n.startswith(f"backbone.blocks.{i}.") and n.endswith("qkv.weight"))
        assert scale == pytest.approx(0.75 ** (depth - i)) and wd == 0.1
    assert by_name["backbone.pos_embed"][1] == 0.0
    assert all(wd == 0.0 for n, (_, wd) in by_name.items() if n.endswith(".bias") or "norm" in n)
    assert len(by_name) == sum(1 for p in tiny.parameters() if p.requires_grad)


def test_step_schedule_with_mmcv_warmup(tiny: torch.nn.Module) -> None:
    cfg = OptimConfig(lr=0.1, warmup_iters=10, warmup_ratio=0.001, milestones=[2, 3], gamma=0.1, layer_decay=1.0)
    opt = build_optimizer(tiny, cfg)
    sch = LRScheduler(opt, vitpose_schedule(cfg, steps_per_epoch=5, epochs=4))
    factor = sch.schedule.factor
    assert factor(0) == pytest.approx(0.001)
    assert factor(5) == pytest.approx(1 - 0.5 * 0.999)
    # epochs 0-1 (steps 0-9): base lr after warm-up; epoch 2 (10-14): x0.1; epoch 3: x0.01
    assert [factor(s) for s in (9, 10, 14, 15, 19)] == pytest.approx([1 - 0.1 * 0.999, 0.1, 0.1, 0.01, 0.01])
    for _ in range(12):
        sch.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1)
    state = sch.state_dict()
    sch2 = LRScheduler(opt, vitpose_schedule(cfg, 5, 4))
    sch2.load_state_dict(state)
    assert sch2.lr(cfg.lr) == sch.lr(cfg.lr) and sch2.step_count == 12


def test_cosine_schedule_ends_at_min_lr(tiny: torch.nn.Module) -> None:
    cfg = OptimConfig(lr=1.0, schedule="cosine", min_lr=0.01, warmup_iters=0)
    sch = vitpose_schedule(cfg, steps_per_epoch=10, epochs=10)
    assert sch.factor(0) == pytest.approx(1.0)
    assert sch.factor(50) == pytest.approx(0.01 + 0.99 * 0.5)
    assert sch.factor(100) == pytest.approx(0.01)


def _old_loop_lambda(cfg: TrainerConfig, total_steps: int):
    """The lifting/forecasting trainer's own schedule before the shared one (reference copy)."""
    warm = max(0, min(cfg.warmup_steps, total_steps // 2))

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return 1.0 if step < 2 * total_steps // 3 else 0.1
        p = min(1.0, (step - warm) / max(1, total_steps - warm))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return f


@pytest.mark.parametrize("kind", ["cosine", "constant", "step"])
@pytest.mark.parametrize(("warmup", "total"), [(0, 50), (1, 50), (7, 60), (100, 90), (3, 4)])
def test_loop_schedule_is_the_former_lift_trainer_schedule(kind: str, warmup: int, total: int) -> None:
    cfg = TrainerConfig(schedule=kind, warmup_steps=warmup, min_lr_ratio=0.05)
    new, old = make_schedule(cfg, total), _old_loop_lambda(cfg, total)
    for step in range(total + 3):
        assert new.factor(step) == pytest.approx(old(step), rel=1e-12, abs=1e-15), step


def test_ema_tracks_weights() -> None:
    m = torch.nn.Linear(3, 3)
    ema = ModelEMA(m, decay=0.5)
    with torch.no_grad():
        m.weight.add_(1.0)
    before = ema.module.weight.clone()
    ema.update(m)
    d = min(0.5, 2 / 11)
    assert torch.allclose(ema.module.weight, before * d + m.weight * (1 - d))


def test_mse_loss_follows_mmpose_convention() -> None:
    torch.manual_seed(0)
    pred, tgt = torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5)
    w = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    # mmpose JointsMSELoss: mean over joints of 0.5 * MSE(pred * w, target * w)
    ref = sum(
        0.5 * torch.nn.functional.mse_loss(pred[:, j] * w[:, j, None, None], tgt[:, j] * w[:, j, None, None])
        for j in range(3)
    ) / 3
    assert keypoint_mse(pred, tgt, w) == pytest.approx(float(ref), rel=1e-6)
    # unlabelled keypoints do not count
    pred2 = pred.clone()
    pred2[0, 1] += 100
    assert keypoint_mse(pred2, tgt, w) == pytest.approx(float(ref), rel=1e-6)
    assert KeypointMSELoss(use_target_weight=False)(pred2, tgt, w) > 10 * ref


def test_ohkm_keeps_the_hardest_keypoints() -> None:
    pred = torch.zeros(1, 4, 2, 2)
    tgt = torch.zeros(1, 4, 2, 2)
    tgt[0, 0] = 1.0
    tgt[0, 3] = 2.0
    w = torch.ones(1, 4)
    # per-keypoint losses 1, 0, 0, 4 -> top-2 mean 2.5, times 0.5
    assert keypoint_mse(pred, tgt, w, ohkm_topk=2) == pytest.approx(1.25)
    assert KeypointMSELoss(ohkm=True, ohkm_topk=1)(pred, tgt, w) == pytest.approx(2.0)
    assert math.isclose(float(keypoint_mse(pred, tgt, w)), 0.5 * 5 / 4)
