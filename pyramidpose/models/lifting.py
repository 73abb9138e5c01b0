"""2D-to-3D lifting networks: the simple-baseline residual MLP and a temporal dilated conv model.

Both take 2D keypoints normalised by image size (:func:`normalize_screen`, VideoPose3D's
convention: ``x / w * 2 - 1``, ``y / w * 2 - h / w``) and predict **root-relative** 3D joints in the
camera frame (meters; joint ``root_index`` is forced to the origin).

- :class:`SimpleBaseline` (Martinez et al., ICCV 2017): ``[B, J_in, 2] -> [B, J_out, 3]``; a
  linear stem, ``num_blocks`` residual blocks of (Linear, BatchNorm, ReLU, Dropout) x 2, a linear
  head.
- :class:`TemporalLifter` (Pavllo et al., CVPR 2019): ``[B, T, J_in, 2] -> [B, T - RF + 1, J_out, 3]``
  with dilated 1D convolutions (filter widths ``(3, 3, 3)`` -> receptive field 27, ``(3,)*4`` -> 81,
  ``(3,)*5`` -> 243). ``causal=True`` aligns each output with the LAST frame of its window (live
  use, no look-ahead); otherwise with the centre frame. :meth:`TemporalLifter.forward_window` is
  the fast strided training form for a single window of exactly RF frames (same weights, same
  result as the dilated form); :meth:`TemporalLifter.lift_sequence` pads a whole sequence (edge
  replication) so there is one output per input frame.

Build from a plain dict with :func:`build_lifter` (the dict is saved next to checkpoints).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pyramidpose.errors import ConfigError

__all__ = [
    "LifterConfig",
    "SimpleBaseline",
    "TemporalLifter",
    "build_lifter",
    "normalize_screen",
    "input_features",
    "RECEPTIVE_FIELDS",
]

RECEPTIVE_FIELDS = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}


def normalize_screen(xy: Any, width: float, height: float) -> Any:
    """Pixels -> VideoPose3D screen coordinates: x in [-1, 1], y scaled by the same factor."""
    scale = 2.0 / width
    if isinstance(xy, torch.Tensor):
        off = torch.tensor([1.0, height / width], dtype=xy.dtype, device=xy.device)
        return xy * scale - off
    return np.asarray(xy) * scale - np.array([1.0, height / width])


@dataclass
class LifterConfig:
    """Architecture of a lifter. ``kind``: ``"mlp"`` or ``"temporal"``."""

    kind: str = "temporal"
    in_joints: int = 17
    out_joints: int = 17
    input_layout: str = "coco"
    output_layout: str = "h36m"
    root_index: int = 0
    hidden: int = 1024  # MLP width
    num_blocks: int = 2  # MLP residual blocks
    channels: int = 256  # temporal conv channels
    receptive_field: int = 27
    causal: bool = False
    dropout: float = 0.25
    # "image": the image-normalised 2D only; "image+centred": also the same pose centred on its
    # hip midpoint and scaled to unit RMS radius (translation/scale invariant shape cue; the image
    # coordinates are kept for perspective and trajectory)
    input_features: str = "image+centred"
    center_joints: tuple[int, ...] = (11, 12)  # joints averaged for the centre (COCO hips)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _root_relative(y: torch.Tensor, root: int) -> torch.Tensor:
    return y - y[..., root : root + 1, :]


def input_features(x: torch.Tensor, cfg: LifterConfig) -> torch.Tensor:
    """``[..., J, 2]`` image-normalised 2D -> ``[..., F]`` network input (see ``input_features``)."""
    flat = x.flatten(-2)
    if cfg.input_features == "image":
        return flat
    if cfg.input_features != "image+centred":
        raise ConfigError(f"unknown input_features {cfg.input_features!r}; use 'image' or 'image+centred'")
    c = x[..., list(cfg.center_joints), :].mean(-2, keepdim=True)
    d = x - c
    r = d.pow(2).sum(-1).mean(-1, keepdim=True).add(1e-8).sqrt()[..., None]
    return torch.cat([flat, (d / r).flatten(-2)], -1)


def _in_dim(cfg: LifterConfig) -> int:
    return cfg.in_joints * 2 * (2 if cfg.input_features == "image+centred" else 1)


def _small_head(layer: nn.Module) -> None:
    # start near the zero pose: outputs are meters, and a unit-variance start costs many steps
    with torch.no_grad():
        layer.weight.mul_(0.1)
        layer.bias.zero_()


class _ResBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SimpleBaseline(nn.Module):
    """Residual MLP lifter, single frame: ``[B, J_in, 2] -> [B, J_out, 3]`` (root-relative)."""

    def __init__(self, cfg: LifterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = nn.Sequential(
            nn.Linear(_in_dim(cfg), cfg.hidden), nn.BatchNorm1d(cfg.hidden), nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
        )  # fmt: skip
        self.blocks = nn.Sequential(*[_ResBlock(cfg.hidden, cfg.dropout) for _ in range(cfg.num_blocks)])
        self.head = nn.Linear(cfg.hidden, cfg.out_joints * 3)
        _small_head(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        h = self.stem(input_features(x, self.cfg).reshape(-1, _in_dim(self.cfg)))
        y = self.head(self.blocks(h)).reshape(*lead, self.cfg.out_joints, 3)
        return _root_relative(y, self.cfg.root_index)


class TemporalLifter(nn.Module):
    """Dilated temporal convolutions over 2D keypoint sequences (see module doc)."""

    def __init__(self, cfg: LifterConfig) -> None:
        super().__init__()
        if cfg.receptive_field not in RECEPTIVE_FIELDS:
            raise ValueError(f"receptive_field must be one of {sorted(RECEPTIVE_FIELDS)}, got {cfg.receptive_field}")
        self.cfg = cfg
        self.filter_widths = RECEPTIVE_FIELDS[cfg.receptive_field]
        C = cfg.channels
        fw = self.filter_widths
        self.expand = nn.Conv1d(_in_dim(cfg), C, fw[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(C)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for w in fw[1:]:
            self.convs.append(nn.Conv1d(C, C, w, bias=False))
            self.bns.append(nn.BatchNorm1d(C))
            self.convs.append(nn.Conv1d(C, C, 1, bias=False))
            self.bns.append(nn.BatchNorm1d(C))
        self.drop = nn.Dropout(cfg.dropout)
        self.relu = nn.ReLU(inplace=True)
        self.shrink = nn.Conv1d(C, cfg.out_joints * 3, 1)
        _small_head(self.shrink)

    @property
    def receptive_field(self) -> int:
        return int(np.prod(self.filter_widths))

    def _run(self, x: torch.Tensor, strided: bool) -> torch.Tensor:
        B, T = x.shape[:2]
        h = input_features(x, self.cfg).transpose(1, 2)  # [B, C_in, T]
        fw = self.filter_widths
        if strided:
            h = nn.functional.conv1d(h, self.expand.weight, stride=fw[0])
        else:
            h = self.expand(h)
        h = self.drop(self.relu(self.expand_bn(h)))
        dilation = fw[0]
        for i, w in enumerate(fw[1:]):
            pad = (w - 1) * dilation // 2
            if strided:
                # residual: the centre (or last, causal) element of each group of w
                res = h[:, :, (w - 1) if self.cfg.causal else w // 2 :: w]
                h = nn.functional.conv1d(h, self.convs[2 * i].weight, stride=w)
            else:
                shift = pad if self.cfg.causal else 0
                res = h[:, :, pad + shift : h.shape[2] - pad + shift]
                h = nn.functional.conv1d(h, self.convs[2 * i].weight, dilation=dilation)
            h = self.drop(self.relu(self.bns[2 * i](h)))
            h = res + self.drop(self.relu(self.bns[2 * i + 1](self.convs[2 * i + 1](h))))
            dilation *= w
        y = self.shrink(h).transpose(1, 2)  # [B, T_out, J*3]
        y = y.reshape(B, y.shape[1], self.cfg.out_joints, 3)
        return _root_relative(y, self.cfg.root_index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dilated form: ``[B, T, J_in, 2] -> [B, T - RF + 1, J_out, 3]`` (``T >= RF``)."""
        if x.shape[1] < self.receptive_field:
            raise ValueError(f"need at least {self.receptive_field} frames, got {x.shape[1]}")
        return self._run(x, strided=False)

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        """Strided training form for windows of exactly RF frames: ``[B, RF, J, 2] -> [B, J, 3]``."""
        if x.shape[1] != self.receptive_field:
            raise ValueError(f"windows must have {self.receptive_field} frames, got {x.shape[1]}")
        return self._run(x, strided=True)[:, 0]

    def pad_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Edge-pad ``[B, T, J, 2]`` in time so the dilated form returns ``T`` outputs."""
        p = self.receptive_field - 1
        left = p if self.cfg.causal else p // 2
        right = p - left
        return torch.cat([x[:, :1].expand(-1, left, -1, -1), x, x[:, -1:].expand(-1, right, -1, -1)], 1)

    @torch.no_grad()
    def lift_sequence(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Whole sequence ``[T, J, 2]`` -> ``[T, J_out, 3]`` (eval mode, chunked in time)."""
        xp = self.pad_sequence(x[None])
        rf = self.receptive_field
        outs = []
        T = x.shape[0]
        for s in range(0, T, chunk):
            e = min(T, s + chunk)
            outs.append(self.forward(xp[:, s : e + rf - 1])[0])
        return torch.cat(outs, 0)


def build_lifter(cfg: LifterConfig | dict) -> nn.Module:
    """Build a lifter from a :class:`LifterConfig` (or its dict form, as saved beside checkpoints)."""
    if isinstance(cfg, dict):
        known = set(LifterConfig.__dataclass_fields__)
        unknown = set(cfg) - known
        if unknown:
                raise ConfigError(f"unknown lifter config field(s) {sorted(unknown)}; known: {sorted(known)}")
        cfg = LifterConfig(**cfg)
    if cfg.kind == "mlp":
        return SimpleBaseline(cfg)
    if cfg.kind == "temporal":
        return TemporalLifter(cfg)
    raise ConfigError(f"unknown lifter kind {cfg.kind!r}; use 'mlp' or 'temporal'")
