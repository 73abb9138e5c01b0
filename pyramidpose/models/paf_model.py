"""Bottom-up pose model: ViT backbone (optionally a feature-pyramid neck) + multi-stage PAF head.

``forward(x [B, 3, H, W]) -> [B, K + 2L, H/4, W/4]`` (the last stage: K heatmaps, then the limb
fields in :class:`~pyramidpose.codecs.paf.PafCodec` order); ``forward_stages`` returns every stage
for intermediate supervision. Build with :func:`create_paf_model`, save and load with
:func:`save_paf_model` / :func:`load_paf_model` (safetensors + JSON config with ``kind: paf``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyramidpose.codecs.paf import PafCodec
from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.models.checkpoints import load_model_file
from pyramidpose.models.paf_head import PafHead
from pyramidpose.models.vit import VIT_PRESETS, ViT
from pyramidpose.utils.weights_io import read_weights, write_weights

KIND = "paf"


@dataclass
class PafModelConfig:
    """Everything needed to rebuild a :class:`PafModel`.

    Attributes:
        backbone: ViT preset (``tiny``, ``s``, ``b``...); input_size: ``(H, W)``, multiples of 16.
        keypoint_set: layout (keypoints and limbs of the codec).
        channels, stages: PAF head width and number of refinement stages.
        neck: optional feature-pyramid neck mapping (:class:`pyramidpose.models.necks.NeckConfig`);
            its stride-4 map then feeds the head.
        sigma, limb_width: the codec's target settings (output pixels).
        drop_path: stochastic depth of the backbone.
    """

    backbone: str = "tiny"
    input_size: tuple[int, int] = (256, 256)
    keypoint_set: str = "coco"
    channels: int = 128
    stages: int = 3
    neck: dict | None = field(default=None)
    sigma: float = 2.0
    limb_width: float = 1.0
    drop_path: float = 0.0

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if self.backbone not in VIT_PRESETS:
            raise ConfigError(
                f"unknown backbone preset {self.backbone!r}; expected one of {sorted(VIT_PRESETS)}"
            )
        if any(s % 16 for s in self.input_size):
            raise ConfigError(f"input_size {self.input_size} must be multiples of 16")
        if self.stages < 1:
            raise ConfigError(f"stages must be at least 1, got {self.stages}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PafModelConfig:
        from pyramidpose.training.config import dataclass_from_dict

        return dataclass_from_dict(cls, dict(d), "model")

    def codec(self, heatmap_size: tuple[int, int] | None = None) -> PafCodec:
        """The codec of this model (maps a quarter of the input unless ``heatmap_size`` is given)."""
        size = heatmap_size or (self.input_size[0] // 4, self.input_size[1] // 4)
        return PafCodec(heatmap_size=size, stride=4, keypoint_set=self.keypoint_set, sigma=self.sigma,
                        limb_width=self.limb_width)  # fmt: skip


class PafModel(nn.Module):
    """ViT (+ neck) + :class:`PafHead`."""

    def __init__(self, config: PafModelConfig) -> None:
        super().__init__()
        self.config = config
        p = VIT_PRESETS[config.backbone]
        self.backbone = ViT(
            embed_dim=p.embed_dim, depth=p.depth, num_heads=p.num_heads, input_size=config.input_size,
            drop_path=config.drop_path,
        )  # fmt: skip
        codec = config.codec()
        self.num_keypoints = codec.num_keypoints
        self.neck: nn.Module | None = None
        self.level = 0
        in_channels, in_stride = p.embed_dim, 16
        if config.neck is not None:
            from pyramidpose.models.necks import NeckConfig, build_neck

            self.neck = build_neck(NeckConfig.from_dict(config.neck), p.embed_dim, p.depth)
            self.level = min(range(len(self.neck.strides)), key=lambda i: self.neck.strides[i])  # finest map
            in_channels, in_stride = self.neck.out_channels, self.neck.strides[self.level]
        self.head = PafHead(
            in_channels, codec.num_keypoints, len(codec.limbs), config.channels, config.stages, in_stride
        )

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's maps ``[B, K + 2L, H/4, W/4]`` (for intermediate supervision)."""
        if self.neck is None:
            return self.head(self.backbone(x))
        idx = self.neck.in_indices
        feats = [self.backbone(x)] if idx is None else self.backbone.forward_intermediates(x, idx)
        return self.head(self.neck(feats)[self.level])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1]


def create_paf_model(**kwargs: Any) -> PafModel:
    """An untrained :class:`PafModel`; ``kwargs`` are :class:`PafModelConfig` fields."""
    return PafModel(PafModelConfig.from_dict(kwargs))


def save_paf_model(model: PafModel, path: str | os.PathLike[str]) -> Path:
    """Save in the one weights format (:mod:`pyramidpose.utils.weights_io`, kind ``paf``; atomic)."""
    return write_weights(path, model, KIND, model.config.to_dict())


def is_paf_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a weights file of kind ``paf`` (:func:`save_paf_model`)."""
    p = Path(path)
    if p.suffix != ".safetensors" or not p.is_file():
        return False
    try:
        return read_weights(p).kind == KIND
    except CheckpointError:  # not a readable weights file: not ours
        return False


def load_paf_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> PafModel:
    """Rebuild a :class:`PafModel` from :func:`save_paf_model`'s file (strict keys and shapes)."""
    model = load_model_file(path, KIND, "PAF model", lambda c: PafModel(PafModelConfig.from_dict(c)),
                            hint="Check that the file was written by save_paf_model.")  # fmt: skip
    return model.to(device)  # type: ignore[return-value]
