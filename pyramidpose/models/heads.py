"""ViTPose heatmap decoders.

Parameter names follow the official mmpose ``TopdownHeatmapSimpleHead`` (``deconv_layers.{0,1,3,4}``
and ``final_layer``), so an official ``keypoint_head.*`` state dict maps by renaming the prefix only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassicHead(nn.Module):
    """Two ``ConvTranspose2d(4, stride 2, padding 1, no bias) + BatchNorm + ReLU`` blocks, then a
    1x1 conv to ``num_keypoints``: ``[B, C, h, w] -> [B, K, 4h, 4w]``.

    ``deconv_layers`` indices: 0 deconv, 1 BN, 2 ReLU, 3 deconv, 4 BN, 5 ReLU (as in mmpose).
    ``num_deconvs`` 1 (stride-8 features of overlapping patches) or 0 (stride 4) upsample less, so the
    heatmaps stay at stride 4. ``num_convs`` > 0 adds ``conv_layers`` (1x1 conv + BN + ReLU each,
    indices 0, 1, 2, 3...) before the final layer, as the Sapiens head (mmpose ``HeatmapHead``).
    """

    def __init__(
        self, in_channels: int, num_keypoints: int, channels: int = 256, num_deconvs: int = 2, num_convs: int = 0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_deconvs):
            layers += [
                nn.ConvTranspose2d(in_channels if i == 0 else channels, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
        self.deconv_layers = nn.Sequential(*layers)
        width = in_channels if num_deconvs == 0 else channels
        if num_convs:
            convs: list[nn.Module] = []
            for _ in range(num_convs):
                convs += [nn.Conv2d(width, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
                width = channels
            self.conv_layers = nn.Sequential(*convs)
        channels = width
        self.final_layer = nn.Conv2d(channels, num_keypoints, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0.001) deconvs and final conv, zero bias, unit BatchNorm (as mmpose)."""
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last runs the deconvolutions on oneDNN's fast NHWC path (the ViT map already is)
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.deconv_layers(x)
        if hasattr(self, "conv_layers"):
            x = self.conv_layers(x)
        return self.final_layer(x).contiguous()


class SimpleHead(nn.Module):
    """ViTPose simple decoder: ReLU, bilinear x4 upsampling, 3x3 conv to ``num_keypoints``."""

    def __init__(self, in_channels: int, num_keypoints: int, scale_factor: int = 4) -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 3, padding=1)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        x = F.interpolate(
            F.relu(x), scale_factor=self.scale_factor, mode="bilinear", align_corners=False
        )
        return self.final_layer(x).contiguous()


def build_head(
    kind: str, in_channels: int, num_keypoints: int, channels: int = 256, in_stride: int = 16, num_convs: int = 0
) -> nn.Module:
    """``"classic"`` -> :class:`ClassicHead` (``num_convs`` extra 1x1 convs), ``"simple"`` ->
    :class:`SimpleHead`; both bring ``in_stride`` features (16, 8 or 4) to stride-4 heatmaps."""
    if in_stride not in (4, 8, 16):
        raise ValueError(f"head input stride must be 4, 8 or 16, got {in_stride}")
    if kind == "classic":
        return ClassicHead(
            in_channels, num_keypoints, channels, num_deconvs={16: 2, 8: 1, 4: 0}[in_stride], num_convs=num_convs
        )
    if kind == "simple":
        return SimpleHead(in_channels, num_keypoints, scale_factor=in_stride // 4)
    raise ValueError(f"unknown head {kind!r}: expected 'classic' or 'simple'")
