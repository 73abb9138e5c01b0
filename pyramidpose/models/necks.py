"""Feature-pyramid necks that sit between a plain ViT backbone and a heatmap head.

A plain ViT produces every block output at one stride (1/16). These necks turn one or several
block outputs into multi-scale features so the head can recover fine detail:

* :class:`SimpleFeaturePyramid` (``"sfp"``): ViTDet style. Only the *last* block; strides 4, 8,
  16 and 32 are made by transposed convolutions, identity and max-pooling, each level followed by a
  1x1 and a 3x3 convolution with norm.
* :class:`MultiLevelFPN` (``"fpn"``): several *intermediate* blocks (e.g. 3, 6, 9, 12 of ViT-B),
  the shallowest resampled to stride 4 and the deepest to stride 32, then the classic FPN top-down
  pathway (lateral 1x1, upsample-and-add, 3x3 output convs; Lin et al., CVPR 2017).
* :class:`BlockFusionNeck` (``"fusion"``): several block outputs projected, concatenated at one
  stride and fused into a *single* map (encoder-decoder style), optionally upsampled to stride 4.

Every neck takes ``list[Tensor]`` of ``[B, C, H/16, W/16]`` block outputs (in the order of
:attr:`in_indices`) and returns ``list[Tensor]`` ordered fine to coarse, with :attr:`strides` and
:attr:`out_channels` describing them. Build one from a config dict with :func:`build_neck`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyramidpose.errors import ConfigError
from pyramidpose.models.config import NECK_TYPES, NeckConfig, default_block_indices  # noqa: F401 - re-exported

BACKBONE_STRIDE = 16


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of a ``[B, C, H, W]`` map (as in ViTDet / ConvNeXt)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.channels = channels  # a plain int: the normalised shape stays a constant in ONNX export

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (self.channels,), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2D norm layer by name: ``"ln"`` (channel LayerNorm), ``"bn"`` (BatchNorm) or ``"gn"``."""
    if kind == "ln":
        return LayerNorm2d(channels)
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(min(32, channels), channels)
    raise ConfigError(f"unknown norm '{kind}': use one of ln, bn, gn")


def conv_norm(in_ch: int, out_ch: int, kernel: int, norm: str, act: bool = False) -> nn.Sequential:
    """Conv (no bias) -> norm [-> GELU]."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        make_norm(norm, out_ch),
    ]
    if act:
        layers.append(nn.GELU())
    return nn.Sequential(*layers)


def resampler(in_ch: int, factor: float, norm: str) -> tuple[nn.Module, int]:
    """Module that rescales a stride-16 map by ``factor`` (4, 2, 1 or 0.5); returns (module, out_ch).

    Upsampling uses 2x2 stride-2 transposed convolutions that halve the channels each time (ViTDet),
    downsampling uses 2x2 max-pooling, and 1 is the identity.
    """
    if factor == 4:
        mid, out = max(in_ch // 2, 1), max(in_ch // 4, 1)
        mod: nn.Module = nn.Sequential(
            nn.ConvTranspose2d(in_ch, mid, 2, stride=2),
            make_norm(norm, mid),
            nn.GELU(),
            nn.ConvTranspose2d(mid, out, 2, stride=2),
        )
        return mod, out
    if factor == 2:
        out = max(in_ch // 2, 1)
        return nn.ConvTranspose2d(in_ch, out, 2, stride=2), out
    if factor == 1:
        return nn.Identity(), in_ch
    if factor == 0.5:
        return nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True), in_ch
    raise ConfigError(f"unsupported pyramid scale factor {factor}: use strides 4, 8, 16 or 32")


def _factors(strides: Sequence[int]) -> list[float]:
    out = []
    for s in strides:
        if s not in (4, 8, 16, 32):
            raise ConfigError(f"unsupported pyramid stride {s}: use a subset of 4, 8, 16, 32")
        out.append(BACKBONE_STRIDE / s)
    return out


class SimpleFeaturePyramid(nn.Module):
    """ViTDet's simple feature pyramid built from the last ViT block only.

    Each level: resample (deconv / identity / max-pool) -> 1x1 conv + norm -> 3x3 conv + norm.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        strides: Sequence[int] = (4, 8, 16, 32),
        norm: str = "ln",
    ) -> None:
        super().__init__()
        self.strides = tuple(int(s) for s in strides)
        self.out_channels = out_channels
        self.in_indices: tuple[int, ...] | None = None  # last block only
        self.levels = nn.ModuleList()
        for factor in _factors(self.strides):
            resample, ch = resampler(in_channels, factor, norm)
            self.levels.append(
                nn.Sequential(
                    resample,
                    conv_norm(ch, out_channels, 1, norm),
                    conv_norm(out_channels, out_channels, 3, norm),
                )
            )

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        x = feats[-1]
        return [level(x) for level in self.levels]


class MultiLevelFPN(nn.Module):
    """FPN over intermediate ViT blocks with the classic top-down pathway.

    Block ``in_indices[i]`` is layer-normalised and resampled from stride 16 to ``strides[i]`` (shallow blocks to fine
    strides), then: lateral 1x1 conv -> top-down (upsample coarser result, add) -> 3x3 output conv.
    """

    def __init__(
        self,
        in_channels: int,
        in_indices: Sequence[int],
        out_channels: int = 256,
        strides: Sequence[int] = (4, 8, 16, 32),
        norm: str = "ln",
    ) -> None:
        super().__init__()
        if len(in_indices) != len(strides):
            raise ConfigError(
                f"fpn neck: {len(in_indices)} in_indices but {len(strides)} strides; give one block per level"
            )
        if list(strides) != sorted(strides):
            raise ConfigError(f"fpn neck: strides must be increasing (fine to coarse), got {list(strides)}")
        self.strides = tuple(int(s) for s in strides)
        self.out_channels = out_channels
        self.in_indices: tuple[int, ...] | None = tuple(int(i) for i in in_indices)
        # raw (un-normalised) block outputs differ in scale from block to block: norm each input
        self.in_norms = nn.ModuleList(LayerNorm2d(in_channels) for _ in self.in_indices)
        self.resample = nn.ModuleList()
        self.lateral = nn.ModuleList()
        self.output = nn.ModuleList()
        for factor in _factors(self.strides):
            resample, ch = resampler(in_channels, factor, norm)
            self.resample.append(resample)
            self.lateral.append(conv_norm(ch, out_channels, 1, norm))
            self.output.append(conv_norm(out_channels, out_channels, 3, norm))

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        if len(feats) != len(self.lateral):
            raise ValueError(f"MultiLevelFPN expects {len(self.lateral)} block outputs, got {len(feats)}")
        laterals = [
            lat(res(nrm(f))) for f, nrm, res, lat in zip(feats, self.in_norms, self.resample, self.lateral)
        ]
        # top-down: start from the coarsest level and add the upsampled result into the finer one
        merged = [laterals[-1]]
        for lat in reversed(laterals[:-1]):
            up = F.interpolate(merged[0], size=lat.shape[-2:], mode="nearest")
            merged.insert(0, lat + up)
        return [out(m) for out, m in zip(self.output, merged)]


class BlockFusionNeck(nn.Module):
    """Fuse several block outputs into one map (encoder-decoder style).

    Each block output is layer-normalised and projected by a 1x1 conv, all are concatenated at stride 16 and fused by a
    1x1 + 3x3 conv; the fused map is then upsampled with deconvolutions to ``out_stride``.
    """

    def __init__(
        self,
        in_channels: int,
        in_indices: Sequence[int],
        out_channels: int = 256,
        out_stride: int = 4,
        norm: str = "ln",
    ) -> None:
        super().__init__()
        if out_stride not in (4, 8, 16):
            raise ConfigError(f"fusion neck: out_stride must be 4, 8 or 16, got {out_stride}")
        self.strides = (int(out_stride),)
        self.out_channels = out_channels
        self.in_indices: tuple[int, ...] | None = tuple(int(i) for i in in_indices)
        n = len(self.in_indices)
        self.in_norms = nn.ModuleList(LayerNorm2d(in_channels) for _ in range(n))
        self.project = nn.ModuleList(conv_norm(in_channels, out_channels, 1, norm) for _ in range(n))
        self.fuse = nn.Sequential(
            conv_norm(n * out_channels, out_channels, 1, norm, act=True),
            conv_norm(out_channels, out_channels, 3, norm, act=True),
        )
        ups: list[nn.Module] = []
        stride = BACKBONE_STRIDE
        while stride > out_stride:
            ups += [
                nn.ConvTranspose2d(out_channels, out_channels, 4, stride=2, padding=1, bias=False),
                make_norm(norm, out_channels),
                nn.GELU(),
            ]
            stride //= 2
        self.upsample = nn.Sequential(*ups)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        if len(feats) != len(self.project):
            raise ValueError(f"BlockFusionNeck expects {len(self.project)} block outputs, got {len(feats)}")
        x = torch.cat([p(nrm(f)) for p, nrm, f in zip(self.project, self.in_norms, feats)], dim=1)
        return [self.upsample(self.fuse(x))]


def build_neck(cfg: NeckConfig | dict[str, Any], in_channels: int, depth: int) -> nn.Module:
    """Build the neck described by ``cfg`` for a backbone of ``in_channels`` width and ``depth`` blocks."""
    cfg = NeckConfig.from_dict(cfg)
    if cfg.type == "sfp":
        return SimpleFeaturePyramid(in_channels, cfg.channels, cfg.strides, cfg.norm)
    indices = cfg.resolved_indices(depth)
    if cfg.type == "fpn":
        return MultiLevelFPN(in_channels, indices, cfg.channels, cfg.strides, cfg.norm)
    return BlockFusionNeck(in_channels, indices, cfg.channels, cfg.out_stride, cfg.norm)
