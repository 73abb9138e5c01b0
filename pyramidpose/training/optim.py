"""AdamW with layer-wise learning-rate decay, and weight EMA (the schedule: :mod:`.schedule`).

Layer-wise decay follows ViTPose/BEiT: with ``L`` transformer blocks, the patch embedding and the
position embedding form layer 0, block ``i`` is layer ``i + 1`` and everything after the backbone
(final norm, neck, head) is layer ``L + 1``; layer ``j`` trains with ``lr * decay ** (L + 1 - j)``.
The position embedding, norms and biases (every 1-D parameter) get no weight decay.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import torch
from torch import nn

from pyramidpose.training.config import OptimConfig

_BLOCK = re.compile(r"(?:^|\.)backbone\.blocks\.(\d+)\.")


def layer_id(name: str, num_layers: int) -> int:
    """Layer index of a parameter name for layer-wise decay (0 .. num_layers + 1)."""
    bare = name.removeprefix("module.")
    if bare.startswith(("backbone.patch_embed", "backbone.pos_embed", "backbone.cls_token")):
        return 0
    m = _BLOCK.search(bare)
    if m:
        return min(int(m.group(1)) + 1, num_layers + 1)
    return num_layers + 1


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """True for the position embedding, norm weights and biases (every 1-D tensor)."""
    if param.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name:
        return True
    return any("norm" in part for part in name.split(".")[:-1])


def model_depth(model: nn.Module) -> int:
    """Number of backbone transformer blocks, read from the parameter names."""
    ids = [int(m.group(1)) for n, _ in model.named_parameters() if (m := _BLOCK.search(n))]
    return max(ids) + 1 if ids else 0


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: one per (layer, decay/no-decay) with its ``lr_scale``."""
    num_layers = cfg.num_layers if cfg.num_layers is not None else model_depth(model)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid = layer_id(name, num_layers)
        nd = no_weight_decay(name, p)
        key = (lid, nd)
        if key not in groups:
            scale = cfg.layer_decay ** (num_layers + 1 - lid)
            groups[key] = {
                "params": [],
                "names": [],
                "weight_decay": 0.0 if nd else cfg.weight_decay,
                "lr_scale": scale,
                "lr": cfg.lr * scale,
                "initial_lr": cfg.lr * scale,
            }
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` of ``model``."""
    groups = param_groups(model, cfg)
    for g in groups:
        g.pop("names")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


class ModelEMA:
    """Exponential moving average of a model's parameters and buffers (kept in float32)."""

    def __init__(self, model: nn.Module, decay: float = 0.9998) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend in the current weights (warm-started: the decay ramps up over the first steps)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        src = model.state_dict()
        for k, v in self.module.state_dict().items():
            s = src[k].detach()
            if v.dtype.is_floating_point:
                v.mul_(d).add_(s.to(v.dtype), alpha=1 - d)
            else:
                v.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
