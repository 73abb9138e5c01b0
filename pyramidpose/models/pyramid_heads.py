"""Heatmap heads that fuse a feature pyramid at stride 4.

:class:`PyramidHead` takes the neck's list of maps (fine to coarse, with known strides), brings
every level to stride 4 (bilinear upsampling), fuses them by addition or by concatenation + 1x1
conv, refines with 3x3 convs and predicts K heatmaps at ``H/4 x W/4``. The output is the same
tensor shape the classic ViTPose decoder gives, so codecs, losses, evaluation and prediction work
unchanged.

Multi-scale supervision (``aux=True``): each coarser level also gets a 1x1 heatmap predictor.
:meth:`PyramidHead.forward` returns only the stride-4 heatmaps; :meth:`PyramidHead.aux_heatmaps`
computes the auxiliary ones from the same levels (``PoseModel.forward_train`` returns both) and
:func:`aux_heatmap_loss` turns them into a loss against down-sampled targets. The head keeps no
state between calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyramidpose.errors import ConfigError
from pyramidpose.models.necks import make_norm

HEAD_STRIDE = 4


class PyramidHead(nn.Module):
    """Fuse pyramid levels at stride 4 into ``num_keypoints`` heatmaps.

    Args:
        in_channels: channels of every pyramid level (the neck's ``out_channels``).
        strides: stride of each level, fine to coarse, as given by the neck.
        num_keypoints: number of heatmaps K.
        fuse: ``"add"`` (1x1 projection per level, then sum) or ``"concat"`` (concat, then 1x1).
        channels: width of the fused map and of the refinement convs.
        num_convs: number of 3x3 conv + norm + ReLU refinement layers after fusion.
        norm: ``"bn"``, ``"ln"`` or ``"gn"``.
        aux: predict auxiliary heatmaps at every level coarser than stride 4.
    """

    def __init__(
        self,
        in_channels: int,
        strides: Sequence[int],
        num_keypoints: int,
        fuse: str = "add",
        channels: int = 256,
        num_convs: int = 2,
        norm: str = "bn",
        aux: bool = False,
    ) -> None:
        super().__init__()
        if fuse not in ("add", "concat"):
            raise ConfigError(f"pyramid head: fuse must be 'add' or 'concat', got '{fuse}'")
        if not strides or min(strides) < HEAD_STRIDE:
            raise ConfigError(f"pyramid head: level strides must be >= {HEAD_STRIDE}, got {list(strides)}")
        self.strides = tuple(int(s) for s in strides)
        self.fuse_mode = fuse
        self.num_keypoints = num_keypoints
        n = len(self.strides)
        if fuse == "add":
            self.proj = nn.ModuleList(nn.Conv2d(in_channels, channels, 1) for _ in range(n))
            fused_in = channels
        else:
            self.proj = nn.ModuleList()
            fused_in = n * in_channels
        self.fuse = nn.Sequential(
            nn.Conv2d(fused_in, channels, 1, bias=False), make_norm(norm, channels), nn.ReLU(inplace=True)
        )
        convs: list[nn.Module] = []
        for _ in range(num_convs):
            convs += [
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                make_norm(norm, channels),
                nn.ReLU(inplace=True),
            ]
        self.convs = nn.Sequential(*convs)
        self.final = nn.Conv2d(channels, num_keypoints, 1)
        self.aux_strides = tuple(s for s in self.strides if s > HEAD_STRIDE) if aux else ()
        self.aux_heads = nn.ModuleList(nn.Conv2d(in_channels, num_keypoints, 1) for _ in self.aux_strides)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Heatmap predictors start near zero (normal std 0.001, zero bias), as the ViTPose heads."""
        for conv in [self.final, *self.aux_heads]:
            nn.init.normal_(conv.weight, std=0.001)
            nn.init.zeros_(conv.bias)

    def forward(self, feats: Sequence[Tensor], image_size: tuple[int, int] | None = None) -> Tensor:
        """Heatmaps ``[B, K, H/4, W/4]`` from pyramid levels ``feats`` (fine to coarse).

        ``image_size`` (H, W) fixes the output size; otherwise it is inferred from the finest level.
        """
        if len(feats) != len(self.strides):
            raise ValueError(f"PyramidHead expects {len(self.strides)} levels, got {len(feats)}")
        if image_size is not None:
            size = (image_size[0] // HEAD_STRIDE, image_size[1] // HEAD_STRIDE)
        else:
            ratio = self.strides[0] // HEAD_STRIDE
            size = (feats[0].shape[-2] * ratio, feats[0].shape[-1] * ratio)
        if self.fuse_mode == "add":
            x = sum(_resize(p(f), size) for p, f in zip(self.proj, feats))
        else:
            x = torch.cat([_resize(f, size) for f in feats], dim=1)
        x = self.convs(self.fuse(x))
        return self.final(x)

    def aux_heatmaps(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Auxiliary heatmaps of the levels coarser than stride 4 (empty when ``aux`` is off)."""
        coarse = [f for f, s in zip(feats, self.strides) if s > HEAD_STRIDE]
        return [h(f) for h, f in zip(self.aux_heads, coarse)]


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def downsample_targets(target: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize stride-4 target heatmaps ``[B, K, h, w]`` to a coarser ``size`` (area averaging,
    rescaled so each map keeps its peak value near 1)."""
    small = F.adaptive_avg_pool2d(target, size)
    peak = target.flatten(2).amax(-1).clamp_min(1e-6)
    small_peak = small.flatten(2).amax(-1).clamp_min(1e-6)
    return small * (peak / small_peak)[..., None, None]


def aux_heatmap_loss(
    aux_outputs: Sequence[Tensor], target: Tensor, target_weight: Tensor | None = None
) -> Tensor:
    """Mean over levels of the keypoint-weighted MSE between auxiliary heatmaps and down-sampled
    targets. ``target`` is ``[B, K, H/4, W/4]``, ``target_weight`` ``[B, K]`` or ``[B, K, 1]``."""
    if not aux_outputs:
        return target.new_zeros(())
    losses = []
    for pred in aux_outputs:
        tgt = downsample_targets(target, tuple(pred.shape[-2:]))
        err = (pred - tgt).pow(2).mean(dim=(-2, -1))  # [B, K]
        if target_weight is not None:
            err = err * target_weight.reshape(err.shape).to(err.dtype)
        losses.append(0.5 * err.mean())
    return torch.stack(losses).mean()
