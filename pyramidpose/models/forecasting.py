"""Pose forecasting models: observed poses ``[B, T_in, K, D]`` -> future poses ``[B, T_out, K, D]``.

Two architectures, both predicting a residual over the last observed pose (so an untrained model
starts as the zero-velocity baseline, and learning only has to add the motion):

- :class:`DCTMLPForecaster`, after siMLPe (Guo et al., WACV 2023): a DCT over time turns the observed
  sequence into temporal frequency coefficients; a fully connected layer mixes the joints/coordinates
  (spatial), a stack of blocks mixes along the coefficients (temporal FC + LayerNorm + residual), a
  second spatial FC maps back; an inverse DCT returns to frames and the first ``T_out`` frames are
  added to the last observed pose.
- :class:`TransformerForecaster`, with ``tokens="frame"`` (one token per frame): the observed frames
  are followed by ``T_out`` copies of the last pose (all relative to the last pose), embedded, given
  learned positions, and passed through a pre-norm transformer encoder; a zero-initialised head
  reads the future tokens. With ``tokens="joint"`` (one token per joint, 17 tokens instead of 75, so
  about 4x cheaper): each joint's observed trajectory relative to the last pose is embedded as one
  token with a learned joint embedding, attention mixes the joints, and a zero-initialised head
  maps each token to that joint's ``T_out`` future offsets.

Both work for 2D keypoints (``dims=2``) as well as 3D joints. Build them with
:func:`build_forecaster` from a :class:`ForecasterConfig`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from pyramidpose.errors import ConfigError

ARCHS = ("dct_mlp", "transformer")


@dataclass
class ForecasterConfig:
    """Shape and size of a forecaster. Fields not used by ``arch`` are ignored.

    Attributes:
        arch: ``"dct_mlp"`` (siMLPe-style) or ``"transformer"`` (frame tokens).
        num_joints, dims: pose shape K x D (17 x 3 for H36M joints in meters, D = 2 for keypoints).
        t_in, t_out: observed and predicted frames (50 and 25 at 25 fps: 2 s in, 1 s out).
        hidden: dct_mlp spatial width (0 = K * D as in siMLPe).
        num_layers: dct_mlp temporal blocks / transformer layers.
        d_model, num_heads, ff_dim: transformer width, heads and feed-forward width.
        dropout: transformer dropout.
        tokens: transformer tokens, ``"frame"`` (one per frame) or ``"joint"`` (one per joint).
    """

    arch: str = "dct_mlp"
    num_joints: int = 17
    dims: int = 3
    t_in: int = 50
    t_out: int = 25
    hidden: int = 0
    num_layers: int = 16
    d_model: int = 128
    num_heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1
    tokens: str = "frame"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown forecaster arch '{self.arch}'; known: {', '.join(ARCHS)}")
        if self.dims not in (2, 3):
            raise ConfigError(f"forecaster dims must be 2 or 3, got {self.dims}")
        for name in ("num_joints", "t_in", "t_out", "num_layers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"forecaster {name} must be >= 1, got {getattr(self, name)}")
        if self.arch == "dct_mlp" and self.t_out > self.t_in:
            raise ConfigError(f"dct_mlp needs t_out <= t_in (got {self.t_out} > {self.t_in})")
        if self.tokens not in ("frame", "joint"):
            raise ConfigError(f"transformer tokens must be 'frame' or 'joint', got '{self.tokens}'")
        if self.arch == "transformer" and self.d_model % self.num_heads:
            raise ConfigError(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForecasterConfig:
        """Build from a mapping; unknown keys are a :class:`ConfigError` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown forecaster config keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``[n, n]``: ``coeffs = D @ x`` over time, ``x = D.T @ coeffs``."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    t = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    m = torch.cos(math.pi * (2 * t + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.float()


class _TemporalBlock(nn.Module):
    """siMLPe block: FC along the temporal (DCT) axis, LayerNorm over channels, residual."""

    def __init__(self, length: int, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(length, length)
        self.norm = nn.LayerNorm(channels)
        nn.init.xavier_uniform_(self.fc.weight, gain=1e-8)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, C]
        y = self.fc(x.transpose(1, 2)).transpose(1, 2)
        return x + self.norm(y)


class DCTMLPForecaster(nn.Module):
    """siMLPe-style MLP on DCT coefficients of the observed sequence (see module docstring)."""

    def __init__(self, cfg: ForecasterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.num_joints * cfg.dims
        h = cfg.hidden or c
        self.register_buffer("dct", dct_matrix(cfg.t_in), persistent=False)
        self.spatial_in = nn.Linear(c, h)
        self.blocks = nn.Sequential(*[_TemporalBlock(cfg.t_in, h) for _ in range(cfg.num_layers)])
        self.spatial_out = nn.Linear(h, c)
        nn.init.xavier_uniform_(self.spatial_out.weight, gain=1e-8)
        nn.init.zeros_(self.spatial_out.bias)

    def forward(self, observed: torch.Tensor) -> torch.Tensor:
        b, t, k, d = observed.shape
        x = observed.reshape(b, t, k * d)
        coeffs = torch.matmul(self.dct.to(x.dtype), x)  # [B, T_in, C]: DCT over time
        y = self.spatial_out(self.blocks(self.spatial_in(coeffs)))
        frames = torch.matmul(self.dct.t().to(y.dtype), y)[:, : self.cfg.t_out]  # inverse DCT
        return observed[:, -1:] + frames.reshape(b, self.cfg.t_out, k, d).to(observed.dtype)


class TransformerForecaster(nn.Module):
    """Transformer over frame tokens or joint tokens (see module docstring)."""

    def __init__(self, cfg: ForecasterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k, d = cfg.num_joints, cfg.dims
        if cfg.tokens == "frame":
            n_tokens, token_in, token_out = cfg.t_in + cfg.t_out, k * d, k * d
        else:
            n_tokens, token_in, token_out = k, cfg.t_in * d, cfg.t_out * d
        self.embed = nn.Linear(token_in, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, cfg.d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model,
            cfg.num_heads,
            cfg.ff_dim,
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, token_out)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, observed: torch.Tensor) -> torch.Tensor:
        b, t, k, d = observed.shape
        t_out = self.cfg.t_out
        last = observed[:, -1:]
        rel = observed - last
        if self.cfg.tokens == "frame":
            flat = rel.reshape(b, t, k * d)
            tokens = torch.cat([flat, flat.new_zeros(b, t_out, k * d)], dim=1)  # future = last pose
            x = self.norm(self.encoder(self.embed(tokens) + self.pos))[:, t:]
            delta = self.head(x).reshape(b, t_out, k, d)
        else:
            tokens = rel.permute(0, 2, 1, 3).reshape(b, k, t * d)  # one token per joint trajectory
            x = self.norm(self.encoder(self.embed(tokens) + self.pos))
            delta = self.head(x).reshape(b, k, t_out, d).permute(0, 2, 1, 3)
        return last + delta.to(observed.dtype)


def build_forecaster(cfg: ForecasterConfig) -> nn.Module:
    """The forecaster described by ``cfg``."""
    if cfg.arch == "dct_mlp":
        return DCTMLPForecaster(cfg)
    if cfg.arch == "transformer":
        return TransformerForecaster(cfg)
    raise ConfigError(f"unknown forecaster arch '{cfg.arch}'; known: {', '.join(ARCHS)}")
