"""OpenPose-style multi-stage head: heatmaps + part affinity fields, refined stage by stage.

A trunk turns the backbone map (stride 16, or a pyramid neck's stride-4 map) into a stride-4
feature map ``F``. Stage 1 predicts keypoint heatmaps and limb fields from ``F``; every later stage
predicts them again from ``F`` concatenated with the previous stage's maps (Cao et al. 2019, with
both outputs per stage). All stages are returned for intermediate supervision; the last one is the
prediction.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class PafStage(nn.Module):
    """Convolutions -> ``num_keypoints + 2 * num_limbs`` maps."""

    def __init__(self, cin: int, channels: int, num_out: int, depth: int = 3) -> None:
        super().__init__()
        layers = [_conv(cin, channels)] + [_conv(channels, channels) for _ in range(depth - 1)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(channels, num_out, 1)
        nn.init.normal_(self.out.weight, std=0.001)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class PafHead(nn.Module):
    """``[B, C, h, w]`` (stride ``in_stride``) -> list of ``[B, K + 2L, H/4, W/4]``, one per stage.

    Args:
        in_channels: backbone (or neck) channels; in_stride: 16 (plain ViT) or 4 (neck).
        num_keypoints, num_limbs: K and L; channels: trunk and stage width; stages: how many.
    """

    def __init__(
        self, in_channels: int, num_keypoints: int, num_limbs: int, channels: int = 128, stages: int = 3,
        in_stride: int = 16,
    ) -> None:  # fmt: skip
        super().__init__()
        ups = []
        cin = in_channels
        stride = in_stride
        while stride > 4:
            ups += [
                nn.ConvTranspose2d(cin, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
            ]
            ups.append(nn.ReLU(inplace=True))
            cin, stride = channels, stride // 2
        ups.append(_conv(cin, channels))
        self.trunk = nn.Sequential(*ups)
        n_out = num_keypoints + 2 * num_limbs
        self.stages = nn.ModuleList(
            [PafStage(channels, channels, n_out)]
            + [PafStage(channels + n_out, channels, n_out) for _ in range(stages - 1)]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.trunk(x)
        outs = [self.stages[0](f)]
        for stage in self.stages[1:]:
            outs.append(stage(torch.cat([f, outs[-1]], dim=1)))
        return outs
