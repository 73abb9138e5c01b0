"""Small deterministic heatmap models with a ViTPose-like interface, for inference tests."""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pyramidpose.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from pyramidpose.skeletons import COCO


@dataclass
class StandinConfig:
    input_size: tuple[int, int] = (64, 48)
    num_keypoints: int = 17
    keypoint_set: str = "coco"
    codec: str = "udp"


class BrightnessModel(nn.Module):
    """Every heatmap is the crop's red channel (0..1) resampled to 1/4 size in the UDP geometry.

    ``align_corners=True`` maps heatmap pixel ``j`` to input pixel ``j (W-1)/(w-1)``, exactly the
    UDP relation, so a bright Gaussian blob in the image is decoded where it is.
    """

    def __init__(self, input_size: tuple[int, int] = (64, 48), num_keypoints: int = 17) -> None:
        super().__init__()
        self.config = StandinConfig(input_size=input_size, num_keypoints=num_keypoints)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = x[:, :1] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        hm = F.interpolate(red, size=(h, w), mode="bilinear", align_corners=True) * self.scale
        return hm.expand(-1, self.config.num_keypoints, -1, -1)


class MirrorConvModel(nn.Module):
    """A random conv net that is exactly flip-equivariant for COCO's left/right pairs.

    Kernels of paired channels are mirror images, midline channels have symmetric kernels, and the
    resampling is symmetric, so ``model(flip(x))`` is ``model(x)`` mirrored with the pairs swapped.
    """

    def __init__(self, input_size: tuple[int, int] = (64, 48), seed: int = 0) -> None:
        super().__init__()
        self.config = StandinConfig(input_size=input_size)
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(17, 3, 7, 7, generator=g) * 0.2
        for a, b in COCO.flip_pairs:
            w[b] = w[a].flip(-1)
        mids = [i for i in range(17) if i not in {p for pair in COCO.flip_pairs for p in pair}]
        for i in mids:
            w[i] = 0.5 * (w[i] + w[i].flip(-1))
        self.conv = nn.Conv2d(3, 17, 7, padding=3, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        y = F.interpolate(self.conv(x), size=(h, w), mode="bilinear", align_corners=True)
        return torch.sigmoid(y)


def tiny_official_bytes() -> bytes:
    """A tiny ViTPose checkpoint in the official mmpose layout (``keypoint_head.*``, a ``meta`` entry)."""
    from pyramidpose.models.pose_model import create_model

    m = create_model("vitpose-tiny")
    sd = {("keypoint_head." + k[5:] if k.startswith("head.") else k): v for k, v in m.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"state_dict": sd, "meta": {"epoch": 210}}, buf)
    return buf.getvalue()
