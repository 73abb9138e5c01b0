"""Heatmap super-resolution: a small SRCNN-style network from stride-16/8 heatmaps to stride 4.

SRCNN (Dong et al. 2014) upsamples an image by interpolation and then lets three convolutions (patch
extraction, non-linear mapping, reconstruction; 9-1-5 kernels) restore the detail. Here the "image"
is one keypoint heatmap: every channel of a ``[B, K, h, w]`` stack goes through the same network as
a one-channel image (the network is keypoint-agnostic, so one model serves any keypoint set), and the
convolutions predict a residual on top of the interpolated map.

Geometry: the interpolation follows the heatmap codec (:func:`upsample_heatmaps`). Under UDP the
heatmap pixel grid spans the crop's pixel *intervals*, so a stride-16 map maps to a stride-4 one with
``align_corners=True``; under MSRA a crop point ``x`` sits at ``x / stride`` in every grid. The network is small (1,649 parameters with
the defaults) and cheap next to the pose model (see ``docs/variants.md``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pyramidpose.errors import ConfigError
from pyramidpose.models.checkpoints import load_model_file
from pyramidpose.utils.weights_io import write_weights

SR_KIND = "heatmap_sr"


@dataclass
class HeatmapSRConfig:
    """Everything needed to rebuild a :class:`HeatmapSR` (stored beside its weights).

    Attributes:
        factor: upsampling factor, 4 (stride 16 -> 4) or 2 (stride 8 -> 4).
        udp: heatmap geometry of the codec (UDP: ``align_corners=True`` interpolation).
        channels: widths of the two hidden layers (SRCNN: 64, 32; heatmaps need far fewer).
        kernels: kernel sizes of the three layers (SRCNN's basic 9-1-5).
        mode: interpolation before the convolutions, ``bilinear`` or ``bicubic``.
    """

    factor: int = 4
    udp: bool = True
    channels: tuple[int, int] = (16, 8)
    kernels: tuple[int, int, int] = (9, 1, 5)
    mode: str = "bicubic"

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)  # type: ignore[assignment]
        self.kernels = tuple(int(k) for k in self.kernels)  # type: ignore[assignment]
        if self.factor not in (2, 4):
            raise ConfigError(f"heatmap SR factor must be 2 (stride 8 -> 4) or 4 (stride 16 -> 4), got {self.factor}")
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ConfigError(f"heatmap SR channels must be two positive widths, got {self.channels}")
        if len(self.kernels) != 3 or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ConfigError(f"heatmap SR kernels must be three odd sizes, got {self.kernels}")
        if self.mode not in ("bilinear", "bicubic"):
            raise ConfigError(f"heatmap SR mode must be 'bilinear' or 'bicubic', got {self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"], d["kernels"] = list(self.channels), list(self.kernels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeatmapSRConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown heatmap SR field(s) {unknown}; known: {sorted(names)}")
        return cls(**d)


def upsample_heatmaps(heatmaps: torch.Tensor, size: tuple[int, int], *, udp: bool, mode: str = "bilinear") -> torch.Tensor:
    """Interpolate ``[B, K, h, w]`` heatmaps to ``size (H, W)`` in the codec's geometry.

    UDP: output pixel ``j`` samples input position ``j (w - 1) / (W - 1)`` (``align_corners=True``).
    MSRA (pyramidpose's encoders put an input-crop point ``x`` at ``x / stride``): ``j w / W``, which no
    ``align_corners`` setting of :func:`torch.nn.functional.interpolate` gives. Outside the input
    grid the border value is repeated.
    """
    if udp:
        return F.interpolate(heatmaps, size=size, mode=mode, align_corners=True)
    h, w = heatmaps.shape[-2:]
    ys = torch.arange(size[0], dtype=heatmaps.dtype, device=heatmaps.device) * (h / size[0])
    xs = torch.arange(size[1], dtype=heatmaps.dtype, device=heatmaps.device) * (w / size[1])
    gy = 2 * ys / max(h - 1, 1) - 1
    gx = 2 * xs / max(w - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).expand(heatmaps.shape[0], -1, -1, -1)
    return F.grid_sample(heatmaps, grid, mode=mode, padding_mode="border", align_corners=True)


class HeatmapSR(nn.Module):
    """``forward(low [B, K, h, w]) -> [B, K, h * factor, w * factor]`` (channel-shared SRCNN)."""

    def __init__(self, config: HeatmapSRConfig | None = None) -> None:
        super().__init__()
        self.config = config or HeatmapSRConfig()
        c1, c2 = self.config.channels
        k1, k2, k3 = self.config.kernels
        self.extract = nn.Conv2d(1, c1, k1, padding=k1 // 2)
        self.mapping = nn.Conv2d(c1, c2, k2, padding=k2 // 2)
        self.reconstruct = nn.Conv2d(c2, 1, k3, padding=k3 // 2)
        nn.init.zeros_(self.reconstruct.weight)  # starts as plain interpolation
        nn.init.zeros_(self.reconstruct.bias)

    def output_size(self, low_size: tuple[int, int]) -> tuple[int, int]:
        """Stride-4 heatmap size ``(H, W)`` for a low-resolution ``(h, w)``.

        Under UDP, ``(h - 1) * factor + 1`` would be the exact grid; pyramidpose's heatmaps are
        always ``input / 4`` so this is ``h * factor`` in both geometries.
        """
        return low_size[0] * self.config.factor, low_size[1] * self.config.factor

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        if low.ndim != 4:
            raise ValueError(f"expected [B, K, h, w] heatmaps, got shape {tuple(low.shape)}")
        b, k, h, w = low.shape
        up = upsample_heatmaps(
            low.reshape(b * k, 1, h, w), self.output_size((h, w)), udp=self.config.udp, mode=self.config.mode
        )
        out = self.refine(up)
        return out.reshape(b, k, *out.shape[-2:])

    def refine(self, up: torch.Tensor) -> torch.Tensor:
        """The convolutions alone, on already interpolated one-channel maps ``[N, 1, H, W]`` (any
        size: training runs them on patches around the keypoints, as SRCNN trains on sub-images)."""
        x = F.relu(self.extract(up))
        x = F.relu(self.mapping(x))
        return up + self.reconstruct(x)


def save_heatmap_sr(model: HeatmapSR, path: str | os.PathLike[str]) -> Path:
    """Save in the one weights format (:mod:`pyramidpose.utils.weights_io`, kind ``heatmap_sr``)."""
    return write_weights(path, model, SR_KIND, model.config.to_dict())


def load_heatmap_sr(path: str | os.PathLike[str]) -> HeatmapSR:
    """Load a model written by :func:`save_heatmap_sr` (strict keys and shapes; eval mode)."""
    return load_model_file(path, SR_KIND, "heatmap SR model", lambda c: HeatmapSR(HeatmapSRConfig.from_dict(c)),
                           hint="Check that the file was written by save_heatmap_sr.")  # type: ignore[return-value]
