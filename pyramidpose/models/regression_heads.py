"""Heads that regress or classify coordinates instead of heatmaps.

* SIKR (:mod:`pyramidpose.codecs.integral`) needs no head of its own: any heatmap head's output is
  read as logit maps and decoded by expectation.
* :class:`SimCCHead`: per-keypoint 1D classification over the x and y bins of
  :class:`~pyramidpose.codecs.simcc.SimCCCodec` (RTMPose's layout without the gated attention unit):
  a 3x3 conv to one feature map per keypoint, flattened, an MLP to a hidden vector, then one linear
  layer per axis.
"""

from __future__ import annotations

import torch
from torch import nn


class SimCCHead(nn.Module):
    """``[B, C, h, w] -> [B, K, Wb + Hb]`` (x logits then y logits).

    Args:
        in_channels: backbone channels C; num_keypoints: K.
        feature_size: the backbone map ``(h, w)`` (input / 16 for ViTPose).
        bins: ``(Wb, Hb)`` of the codec (input size times its split ratio).
        hidden: width of the per-keypoint hidden vector.
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        feature_size: tuple[int, int],
        bins: tuple[int, int],
        hidden: int = 256,
    ) -> None:
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 3, padding=1)
        self.mlp = nn.Sequential(
            nn.Linear(feature_size[0] * feature_size[1], hidden), nn.LayerNorm(hidden), nn.GELU()
        )
        self.cls_x = nn.Linear(hidden, bins[0])
        self.cls_y = nn.Linear(hidden, bins[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.mlp(self.final_layer(x).flatten(2))  # [B, K, hidden]
        return torch.cat([self.cls_x(f), self.cls_y(f)], dim=-1)
