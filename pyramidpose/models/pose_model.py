"""Top-down pose model = ViT backbone + heatmap head, described by a typed :class:`ModelConfig`.

Build one with :func:`create_model` (untrained, by name) or :func:`pyramidpose.load_model`
(from a checkpoint). Parameters are named ``backbone.*`` (``backbone.patch_embed``,
``backbone.pos_embed``, ``backbone.blocks.{i}``, ``backbone.last_norm``), ``neck.*`` (feature-pyramid
models only) and ``head.*``, which the layer-wise learning-rate decay of the trainer relies on.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pyramidpose.errors import ConfigError
from pyramidpose.models.heads import build_head
from pyramidpose.models.vit import ATTENTION_KINDS, PATCH_RATIOS, VIT_PRESETS, ViT

#: Dataset index of each ViTPose+ expert (the ``dataset_source`` of the official MoE models).
MOE_DATASETS: dict[str, int] = {
    "coco": 0,
    "aic": 1,
    "mpii": 2,
    "ap10k": 3,
    "apt36k": 4,
    "coco_wholebody": 5,
}


@dataclass
class ModelConfig:
    """Everything needed to rebuild a :class:`PoseModel` (saved as JSON beside the weights).

    Attributes:
        name: model name (``vitpose-b``, ``vitpose-s-simple``...); informative only.
        backbone: size preset (``tiny``, ``s``, ``b``, ``l``, ``h``) or ``custom``.
        embed_dim, depth, num_heads: backbone size (filled from the preset when it is not ``custom``).
        mlp_ratio: FFN width over ``embed_dim``.
        head: ``classic`` (2 deconvs), ``simple`` (bilinear x4 + 3x3 conv) or ``simcc`` (coordinate
            classification, :class:`pyramidpose.models.regression_heads.SimCCHead`; output
            ``[B, K, 2W + 2H]`` instead of heatmaps).
        head_channels: deconv width of the classic head.
        head_convs: 1x1 conv + BN + ReLU layers after the deconvs of the classic head (Sapiens: 2).
        num_keypoints: heatmap channels K.
        keypoint_set: name for :func:`pyramidpose.skeletons.get_keypoint_set` (flip pairs, drawing).
        input_size: crop size ``(H, W)``; heatmaps are ``(H/4, W/4)``.
        num_experts, part_features: ViTPose+ MoE FFN (1 expert = plain ViTPose).
        dataset_index: which expert runs (COCO=0, AIC=1, MPII=2, AP-10K=3, APT-36K=4, WholeBody=5).
        drop_path: stochastic depth rate of the last block.
        ln_eps: LayerNorm epsilon (1e-6 in ViTPose).
        codec: default heatmap codec of the model (``udp`` for the official ViTPose weights).
        target: what the head's output means: ``heatmap``, ``sikr`` (logit maps decoded by
            expectation, :mod:`pyramidpose.codecs.integral`) or ``simcc`` (with the ``simcc`` head).
        neck: feature-pyramid neck + pyramid head settings (a :class:`pyramidpose.models.necks.NeckConfig`
            mapping, e.g. ``{"type": "fpn", "channels": 256}``); ``None`` = plain ViTPose head.
        attention: attention of each backbone block, ``global``/``window``/``shifted``/``pooled``
            (one per block; empty = all global, plain ViTPose). See :mod:`pyramidpose.models.vit`.
        window_size: window ``(h, w)`` in tokens of the window kinds.
        patch_ratio: overlapping patch embedding: 1 = plain (stride 16), 2 = stride 8, 4 = stride 4.
        knowledge_token: the backbone carries ViTPose's knowledge token (``backbone.knowledge_token``),
            learned with a frozen teacher and appended to the tokens (see ``training/distill.py``).
    """

    name: str = "vitpose-b"
    backbone: str = "b"
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    head: str = "classic"
    head_channels: int = 256
    head_convs: int = 0
    num_keypoints: int = 17
    keypoint_set: str = "coco"
    input_size: tuple[int, int] = (256, 192)
    num_experts: int = 1
    part_features: int = 0
    dataset_index: int = 0
    drop_path: float = 0.0
    ln_eps: float = 1e-6
    codec: str = "udp"
    target: str = "heatmap"
    neck: dict | None = field(default=None)
    attention: tuple[str, ...] = ()
    window_size: tuple[int, int] = (8, 6)
    patch_ratio: int = 1
    knowledge_token: bool = False

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.attention = tuple(str(a) for a in self.attention)
        self.window_size = (int(self.window_size[0]), int(self.window_size[1]))
        if self.attention and len(self.attention) != self.depth:
            raise ConfigError(
                f"attention lists {len(self.attention)} block kind(s) for a {self.depth}-block backbone; "
                "give one per block (or none for all global)"
            )
        bad = sorted({a for a in self.attention if a not in ATTENTION_KINDS})
        if bad:
            raise ConfigError(f"unknown attention kind(s) {bad}; expected {list(ATTENTION_KINDS)}")
        if min(self.window_size) < 1:
            raise ConfigError(f"window_size {self.window_size} must be two positive token counts (h, w)")
        if self.head_convs < 0 or (self.head_convs and self.head != "classic"):
            raise ConfigError(f"head_convs {self.head_convs}: extra convs exist for the classic head only (>= 0)")
        if self.patch_ratio not in PATCH_RATIOS:
            raise ConfigError(f"patch_ratio must be one of {list(PATCH_RATIOS)}, got {self.patch_ratio}")
        if self.knowledge_token and any(a != "global" for a in self.attention):
            raise ConfigError("knowledge_token needs global attention in every block")
        if self.patch_ratio != 1 and self.neck is not None:
            raise ConfigError("patch_ratio > 1 works with the plain heads only (the pyramid necks assume stride 16)")
        if self.backbone != "custom":
            if self.backbone not in VIT_PRESETS:
                raise ConfigError(
                    f"unknown backbone preset {self.backbone!r}; expected one of {sorted(VIT_PRESETS)} or 'custom'"
                )
        if self.head not in ("classic", "simple", "simcc"):
            raise ConfigError(f"unknown head {self.head!r}; expected 'classic', 'simple' or 'simcc'")
        if self.target not in ("heatmap", "sikr", "simcc") or (self.target == "simcc") != (self.head == "simcc"):
            raise ConfigError(f"target {self.target!r} with head {self.head!r}: the simcc target goes with the simcc head")
        if self.head == "simcc" and self.neck is not None:
            raise ConfigError("the simcc head reads the backbone map; it does not combine with a neck")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if any(s % 16 for s in self.input_size):
            raise ConfigError(f"input_size {self.input_size} must be multiples of 16")
        if self.num_experts > 1 and not 0 < self.part_features < self.embed_dim:
            raise ConfigError(f"a MoE model needs 0 < part_features < {self.embed_dim}")
        if not 0 <= self.dataset_index < max(self.num_experts, 1):
            raise ConfigError(
                f"dataset_index {self.dataset_index} is out of range for a model with {self.num_experts} expert(s)"
            )
        if self.neck is not None:
            # feature-pyramid neck + pyramid head (pyramidpose.models.necks); stored as a plain dict
            from pyramidpose.models.necks import NeckConfig

            neck = NeckConfig.from_dict(self.neck)
            neck.resolved_indices(self.depth)
            self.neck = neck.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``input_size`` as a list)."""
        d = dataclasses.asdict(self)
        for key in ("input_size", "attention", "window_size"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown model config field(s) {unknown}; known: {sorted(names)}")
        d = dict(d)
        for key in ("input_size", "attention", "window_size"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


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
            drop_path_rate=config.drop_path,
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
            from pyramidpose.models.necks import NeckConfig, build_neck
            from pyramidpose.models.pyramid_heads import PyramidHead

            ncfg = NeckConfig.from_dict(config.neck)
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
        if not self.training and not torch.is_grad_enabled() and x.device.type == "cpu":
            if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
                # Inference under bf16 autocast: run a twin whose matmul/conv weights are already
                # bf16 instead of re-casting ~all parameters on every call (same numerics).
                return self._low_precision_twin(torch.bfloat16)._forward_impl(x)
        return self._forward_impl(x)

    def train(self, mode: bool = True) -> PoseModel:
        """Switch mode; entering training drops the cached bf16 inference twin (training makes it
        stale and it would hold a second copy of the weights), leaving it drops the auxiliary
        heatmaps of the last training pass (they pin autograd state and cannot be deep-copied)."""
        if mode:
            self.__dict__.pop("_twin_cache", None)
        elif getattr(self.head, "aux_outputs", None):
            self.head.aux_outputs = []
        return super().train(mode)

    def _low_precision_twin(self, dtype: torch.dtype) -> PoseModel:
        """A cached copy with Linear/Conv weights in ``dtype`` (norms stay fp32, as autocast runs
        them); rebuilt whenever a parameter or buffer of this model changes."""
        tensors = [*self.parameters(), *self.buffers()]
        key = (dtype, self.dataset_index, tuple((t.data_ptr(), t._version) for t in tensors))
        cache = self.__dict__.get("_twin_cache")
        if cache is None or cache[0] != key:
            self.__dict__["_twin_cache"] = None  # not copied into the twin
            twin = copy.deepcopy(self)
            for m in twin.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                    m.to(dtype)
            self.__dict__["_twin_cache"] = cache = (key, twin.eval())
        return cache[1]

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        if self.neck is None:
            return self.head(self.backbone(x))
        indices = self.neck.in_indices
        feats = [self.backbone(x)] if indices is None else self.backbone.forward_intermediates(x, indices)
        return self.head(self.neck(feats), image_size=tuple(x.shape[-2:]))

    def auxiliary_loss(self, target: torch.Tensor, target_weight: torch.Tensor | None = None) -> torch.Tensor | None:
        """Weighted multi-scale (auxiliary heatmap) loss of the last training forward pass, or
        ``None`` when the model has no auxiliary outputs. Trainers add it to the main loss."""
        aux = getattr(self.head, "aux_outputs", None)
        if not aux or not self.aux_weight:
            return None
        from pyramidpose.models.pyramid_heads import aux_heatmap_loss

        return self.aux_weight * aux_heatmap_loss(aux, target, target_weight)


def _parse_name(name: str) -> tuple[str, str | None]:
    n = name.lower().strip()
    head = None
    if n.endswith("-simple"):
        n, head = n[: -len("-simple")], "simple"
    if n.startswith("vitpose-"):
        n = n[len("vitpose-") :]
    aliases = {"small": "s", "base": "b", "large": "l", "huge": "h"}
    n = aliases.get(n, n)
    if n not in VIT_PRESETS:
        raise ConfigError(
            f"unknown model {name!r}; expected one of "
            + ", ".join(f"vitpose-{p}[-simple]" for p in VIT_PRESETS)
        )
    return n, head


MODEL_NAMES: tuple[str, ...] = tuple(
    f"vitpose-{p}{s}" for p in VIT_PRESETS for s in ("", "-simple")
)


def config_for(
    name: str,
    *,
    num_keypoints: int = 17,
    input_size: tuple[int, int] = (256, 192),
    head: str = "classic",
    **overrides: Any,
) -> ModelConfig:
    """The :class:`ModelConfig` :func:`create_model` would build (see there)."""
    preset, name_head = _parse_name(name)
    p = VIT_PRESETS[preset]
    kind = name_head or head
    fields = {
        "name": f"vitpose-{preset}" + ("-simple" if kind == "simple" else ""),
        "backbone": preset,
        "embed_dim": p.embed_dim,
        "depth": p.depth,
        "num_heads": p.num_heads,
        "head": kind,
        "num_keypoints": num_keypoints,
        "input_size": tuple(input_size),
    }
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown model option(s) {unknown}; known: {sorted(known)}")
    fields.update(overrides)
    if any(k in overrides for k in ("embed_dim", "depth", "num_heads")) and "backbone" not in overrides:
        fields["backbone"] = "custom"
    return ModelConfig(**fields)


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
