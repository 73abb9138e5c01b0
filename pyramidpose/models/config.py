"""Model configuration (pure Python, no torch): backbone presets, the typed neck section and
:class:`ModelConfig`, the one description of a pose network. It is saved as JSON beside the weights
and it is the ``model`` section of a training config (:mod:`pyramidpose.training.config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pyramidpose.errors import ConfigError

#: Neck types of :mod:`pyramidpose.models.necks`.
NECK_TYPES = ("sfp", "fpn", "fusion")


@dataclass(frozen=True)
class ViTPreset:
    """Width, depth and number of attention heads of a named backbone size."""

    embed_dim: int
    depth: int
    num_heads: int


#: Official ViTPose sizes, plus ``tiny`` for CPU training and tests (not an official model).
VIT_PRESETS: dict[str, ViTPreset] = {
    "tiny": ViTPreset(192, 6, 3),
    "s": ViTPreset(384, 12, 12),
    "b": ViTPreset(768, 12, 12),
    "l": ViTPreset(1024, 24, 16),
    "h": ViTPreset(1280, 32, 16),
}


#: Attention kinds of a backbone block (:mod:`pyramidpose.models.vit`).
ATTENTION_KINDS: tuple[str, ...] = ("global", "window", "shifted", "pooled")
#: Overlapping patch embedding ratios: 1 = plain (stride 16), 2 = stride 8, 4 = stride 4.
PATCH_RATIOS: tuple[int, ...] = (1, 2, 4)

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
class NeckConfig:
    """Typed neck + pyramid-head settings (the ``model.neck`` mapping of a YAML config).

    ``in_indices`` are 0-based block indices (ViT-B blocks 3, 6, 9, 12 are ``[2, 5, 8, 11]``); when
    empty, four evenly spaced blocks ending with the last are used. ``aux_weight > 0`` turns on
    multi-scale supervision (auxiliary heatmaps at the coarser pyramid levels).
    """

    type: str = "sfp"
    channels: int = 256
    strides: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    in_indices: list[int] = field(default_factory=list)
    norm: str = "ln"
    out_stride: int = 4  # fusion neck only
    # pyramid head
    fuse: str = "add"
    head_channels: int = 256
    head_convs: int = 2
    head_norm: str = "bn"
    aux_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.type not in NECK_TYPES:
            raise ConfigError(f"model.neck.type '{self.type}' is not one of {list(NECK_TYPES)}")
        if self.fuse not in ("add", "concat"):
            raise ConfigError(f"model.neck.fuse '{self.fuse}' must be 'add' or 'concat'")
        for name in ("channels", "head_channels"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"model.neck.{name} must be positive")
        if self.aux_weight < 0:
            raise ConfigError("model.neck.aux_weight must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | NeckConfig | None) -> NeckConfig:
        """Validate a mapping into a :class:`NeckConfig`; unknown keys raise :class:`ConfigError`."""
        if isinstance(data, NeckConfig):
            return data
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"model.neck: unknown key(s) {unknown}; allowed: {sorted(names)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved_indices(self, depth: int) -> list[int]:
        """Block indices this neck reads (0-based), checked against the backbone ``depth``."""
        if self.type == "sfp":
            return [depth - 1]
        n = len(self.strides) if self.type == "fpn" else 4
        idx = list(self.in_indices) or default_block_indices(depth, n)
        bad = [i for i in idx if not -depth <= i < depth]
        if bad:
            raise ConfigError(f"model.neck.in_indices {bad} out of range for a backbone with {depth} blocks")
        return [i % depth for i in idx]


def default_block_indices(depth: int, n: int = 4) -> list[int]:
    """``n`` evenly spaced 0-based block indices ending with the last (12 blocks -> 2, 5, 8, 11)."""
    return [int(depth * (k + 1) / n + 0.5) - 1 for k in range(n)]


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
        codec: heatmap codec of the model, ``udp`` (ViTPose) or ``msra`` (targets and decoding).
        sigma: Gaussian sigma of the target heatmaps, in heatmap pixels.
        target: what the head's output means: ``heatmap``, ``sikr`` (logit maps decoded by
            expectation, :mod:`pyramidpose.codecs.integral`) or ``simcc`` (with the ``simcc`` head).
        neck: feature-pyramid neck + pyramid head settings (:class:`NeckConfig`; a mapping such as
            ``{"type": "fpn", "channels": 256}`` is converted); ``None`` = plain ViTPose head.
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
    sigma: float = 2.0
    target: str = "heatmap"
    neck: NeckConfig | None = None
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
            raise ConfigError(
                f"target {self.target!r} with head {self.head!r}: the simcc target and the simcc head go together"
            )
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
        if self.codec not in ("udp", "msra"):
            raise ConfigError(f"unknown codec {self.codec!r}; expected 'udp' or 'msra'")
        if self.neck is not None:
            # feature-pyramid neck + pyramid head (pyramidpose.models.necks)
            self.neck = NeckConfig.from_dict(self.neck)
            self.neck.resolved_indices(self.depth)

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


def preset_fields(name: str, head: str | None = None) -> dict[str, Any]:
    """The :class:`ModelConfig` fields a model name fixes: ``name``, ``backbone``, ``embed_dim``,
    ``depth``, ``num_heads`` and ``head`` (``vitpose-s-simple`` -> the S backbone, simple head)."""
    preset, name_head = _parse_name(name)
    p = VIT_PRESETS[preset]
    kind = name_head or head or "classic"
    return {
        "name": f"vitpose-{preset}" + ("-simple" if kind == "simple" else ""),
        "backbone": preset,
        "embed_dim": p.embed_dim,
        "depth": p.depth,
        "num_heads": p.num_heads,
        "head": kind,
    }


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
    _, name_head = _parse_name(name)
    kind = name_head or head
    fields = {
        **preset_fields(name, kind),
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


