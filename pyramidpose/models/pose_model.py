"""Top-down pose model = ViT backbone + heatmap head, described by a typed :class:`ModelConfig`.

Build one with :func:`create_model` (untrained, by name) or :func:`pyramidpose.load_model`
(from a checkpoint). Parameters are named ``backbone.*`` (``backbone.patch_embed``,
``backbone.pos_embed``, ``backbone.blocks.{i}``, ``backbone.last_norm``), ``neck.*`` (feature-pyramid
models only) and ``head.*``, which the layer-wise learning-rate decay of the trainer relies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pyramidpose.errors import ConfigError
from pyramidpose.models.config import (  # noqa: F401 - re-exported: the model's config lives beside it
    MODEL_NAMES,
    MOE_DATASETS,
    ModelConfig,
    NeckConfig,
    config_for,
    preset_fields,
)
from pyramidpose.models.heads import build_head
from pyramidpose.models.necks import build_neck
from pyramidpose.models.pyramid_heads import PyramidHead, aux_heatmap_loss
from pyramidpose.models.vit import ViT


@dataclass
class PoseOutput:
    """What :meth:`PoseModel.forward_train` returns: the heatmaps ``[B, K, H/4, W/4]`` and the
    auxiliary heatmaps of coarser pyramid levels (empty without multi-scale supervision)."""

    heatmaps: torch.Tensor
    aux: list[torch.Tensor]


class PoseModel(nn.Module):
    """ViT backbone + heatmap head: ``forward(x [B,3,H,W]) -> heatmaps [B, K, H/4, W/4]``.

    ``x`` is an ImageNet-normalised float batch. ``config`` holds the :class:`ModelConfig`.
    For ViTPose+ models, :attr:`dataset_index` selects the expert (it can be changed any time).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ViT(
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            input_size=config.input_size,
            mlp_ratio=config.mlp_ratio,
            drop_path=config.drop_path,
            ln_eps=config.ln_eps,
            num_experts=config.num_experts,
            part_features=config.part_features,
            dataset_index=config.dataset_index,
            attention=config.attention,
            window_size=config.window_size,
            patch_ratio=config.patch_ratio,
            knowledge_token=config.knowledge_token,
        )
        self.neck: nn.Module | None = None
        self.aux_weight = 0.0
        if config.neck is not None:
            # Feature pyramid: neck.* between backbone.* and a PyramidHead (head.*); output unchanged.
            ncfg = config.neck
            self.neck = build_neck(ncfg, config.embed_dim, config.depth)
            self.aux_weight = float(ncfg.aux_weight)
            self.head = PyramidHead(
                self.neck.out_channels,
                self.neck.strides,
                config.num_keypoints,
                fuse=ncfg.fuse,
                channels=ncfg.head_channels,
                num_convs=ncfg.head_convs,
                norm=ncfg.head_norm,
                aux=ncfg.aux_weight > 0,
            )
        elif config.head == "simcc":
            from pyramidpose.codecs.coordinates import coordinate_codec
            from pyramidpose.models.regression_heads import SimCCHead

            h, w = config.input_size
            bins = coordinate_codec("simcc", config.input_size).bins  # type: ignore[union-attr]
            self.head = SimCCHead(config.embed_dim, config.num_keypoints, (h // 16, w // 16), bins)
        else:
            self.head = build_head(
                config.head, config.embed_dim, config.num_keypoints, config.head_channels, self.backbone.stride,
                config.head_convs,
            )

    @property
    def dataset_index(self) -> int:
        return self.backbone.dataset_index

    @dataset_index.setter
    def dataset_index(self, value: int) -> None:
        n = max(self.config.num_experts, 1)
        if not 0 <= int(value) < n:
            raise ConfigError(f"dataset index {value} is out of range for a model with {n} expert(s)")
        self.backbone.dataset_index = int(value)
        self.config.dataset_index = int(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmaps ``[B, K, H/4, W/4]``; no side effects (precision is the caller's autocast)."""
        if self.neck is None:
            return self.head(self.backbone(x))
        return self.head(self.neck(self._features(x)), image_size=tuple(x.shape[-2:]))

    def forward_train(self, x: torch.Tensor) -> PoseOutput:
        """The heatmaps and, for a pyramid head with multi-scale supervision, the auxiliary heatmaps
        of the coarser levels (one backbone pass); :meth:`loss_terms` turns them into a loss."""
        if self.neck is None:
            return PoseOutput(self.head(self.backbone(x)), [])
        levels = self.neck(self._features(x))
        return PoseOutput(self.head(levels, image_size=tuple(x.shape[-2:])), self.head.aux_heatmaps(levels))

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        assert self.neck is not None
        indices = self.neck.in_indices
        return [self.backbone(x)] if indices is None else self.backbone.forward_intermediates(x, indices)

    def aux_loss(
        self, output: PoseOutput, target: torch.Tensor, target_weight: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Weighted multi-scale loss of ``output.aux`` against down-sampled ``target`` heatmaps, or
        ``None`` when the model has no auxiliary outputs. Trainers add it to the main loss."""
        if not output.aux or not self.aux_weight:
            return None
        return self.aux_weight * aux_heatmap_loss([a.float() for a in output.aux], target, target_weight)


def create_model(
    name: str,
    *,
    num_keypoints: int = 17,
    input_size: tuple[int, int] = (256, 192),
    head: str = "classic",
    **overrides: Any,
) -> PoseModel:
    """Build an untrained (randomly initialised) model by name.

    Names: ``vitpose-tiny``, ``vitpose-s``, ``vitpose-b``, ``vitpose-l``, ``vitpose-h``; a
    ``-simple`` suffix (or ``head="simple"``) selects the simple decoder. ``overrides`` are any other
    :class:`ModelConfig` fields (``drop_path=0.1``, ``num_experts=6, part_features=192``...).
    """
    return PoseModel(
        config_for(name, num_keypoints=num_keypoints, input_size=input_size, head=head, **overrides)
    )
