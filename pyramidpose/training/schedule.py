"""Learning-rate schedules: linear warm-up, then constant, step or cosine decay (one implementation).

:class:`Schedule` gives the LR multiplier of an optimiser step; :class:`LRScheduler` applies it to
an optimiser's parameter groups (``lr = initial_lr * factor``) and its state is only the step
counter, so a resumed run restores it exactly. The 2D engine uses ViTPose's recipe (mmcv warm-up
from ``warmup_ratio``, step decay at epoch milestones or cosine over the whole run); the
lifting/forecasting loop ramps from ``1 / warmup_steps`` and starts its decay after the warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pyramidpose.errors import ConfigError
from pyramidpose.training.config import OptimConfig

SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class Schedule:
    """LR multiplier per optimiser step (0-based).

    Attributes:
        total_steps: length of the run in optimiser steps.
        kind: ``constant``, ``step`` (times ``gamma`` at each of ``milestones``) or ``cosine`` (down to
            ``min_factor``).
        warmup_steps: steps of the linear warm-up (0: none); the multiplier goes from
            ``warmup_start`` at step 0 to 1 at ``warmup_steps`` (mmcv's formula) and multiplies the decay.
        warmup_start: multiplier at step 0 of the warm-up.
        milestones: steps at which the ``step`` schedule multiplies by ``gamma``.
        gamma: step decay factor.
        min_factor: final multiplier of the cosine schedule.
        decay_start: step at which the cosine decay starts (0: over the whole run).
    """

    total_steps: int
    kind: str = "cosine"
    warmup_steps: int = 0
    warmup_start: float = 0.001
    milestones: Sequence[int] = field(default_factory=tuple)
    gamma: float = 0.1
    min_factor: float = 0.0
    decay_start: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.kind!r}; use {', '.join(SCHEDULES)}")

    def factor(self, step: int) -> float:
        """The learning-rate multiplier at optimiser step ``step``."""
        if self.kind == "cosine":
            progress = min(1.0, max(0, step - self.decay_start) / max(1, self.total_steps - self.decay_start))
            f = self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        elif self.kind == "step":
            f = self.gamma ** sum(1 for m in self.milestones if step >= m)
        else:
            f = 1.0
        if self.warmup_steps > 0 and step < self.warmup_steps:
            f *= 1 - (1 - step / self.warmup_steps) * (1 - self.warmup_start)
        return f


class LRScheduler:
    """Sets ``lr = initial_lr * schedule.factor(step)`` on every parameter group of ``optimizer``."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Schedule) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self.step_count = 0
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self._apply()

    def _apply(self) -> None:
        f = self.schedule.factor(self.step_count)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f

    def step(self) -> None:
        """Advance by one optimiser step."""
        self.step_count += 1
        self._apply()

    def lr(self, base_lr: float) -> float:
        """The current learning rate of a group whose initial rate is ``base_lr``."""
        return base_lr * self.schedule.factor(self.step_count)

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self._apply()


def vitpose_schedule(cfg: OptimConfig, steps_per_epoch: int, epochs: int) -> Schedule:
    """ViTPose's schedule from the training config's ``optim`` section: mmcv warm-up from
    ``warmup_ratio`` over ``warmup_iters`` steps, then step decay at epoch ``milestones`` or cosine
    over the whole run down to ``min_lr``."""
    spe = max(1, steps_per_epoch)
    return Schedule(
        total_steps=spe * epochs,
        kind=cfg.schedule,
        warmup_steps=cfg.warmup_iters,
        warmup_start=cfg.warmup_ratio,
        milestones=tuple(m * spe for m in cfg.milestones),
        gamma=cfg.gamma,
        min_factor=cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0,
    )
