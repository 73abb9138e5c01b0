"""Sapiens pose models (Khirodkar et al. 2024): plain ViTs at 1024x768 with a heatmap head.

A Sapiens pose model is, layer for layer, a ViTPose-style top-down model, so it is built as a
:class:`~pyramidpose.models.pose_model.PoseModel`:

* backbone: ViT with 16x16 patches (padding 2: a 64x48 token grid at 1024x768), learned position
  embedding *without* a class token, pre-norm blocks (LayerNorm eps 1e-6, fused ``qkv`` with bias,
  exact GELU, MLP ratio 4) and a final LayerNorm. Sizes (width, depth, heads) of the release:
  0.3B = 1024/24/16, 0.6B = 1280/32/16, 1B = 1536/40/24, 2B = 1920/48/32;
* head: two 4x4 stride-2 deconvolutions (768 channels, BN, ReLU), two 1x1 convolutions (768, BN,
  ReLU), a 1x1 conv to K heatmaps at stride 4 (256x192 for 1024x768 input); UDP codec;
* keypoints: the 308-keypoint Goliath layout (:data:`pyramidpose.skeletons.GOLIATH`), or COCO 17 /
  WholeBody 133 for the other released heads (read off the checkpoint).

Official pose checkpoints (mmpose layout: ``backbone.patch_embed.projection``, ``backbone.layers.{i}.
{ln1,attn.qkv,attn.proj,ln2,ffn.layers.0.0,ffn.layers.1}``, ``backbone.ln1``, ``head.deconv_layers``,
``head.conv_layers``, ``head.final_layer``) are recognised by their keys and converted; the
architecture comes from tensor shapes. Our ViT adds the first position slot to every token (ViTPose's
convention), so the converted position embedding gets a zero first slot: the sum is unchanged.
The official weights are not downloadable here; see docs/variants.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from pyramidpose.errors import CheckpointError, format_keys
from pyramidpose.models.pose_model import ModelConfig, PoseModel
from pyramidpose.models.vit import grid_from_num_patches


@dataclass(frozen=True)
class SapiensPreset:
    embed_dim: int
    depth: int
    num_heads: int


#: Backbone sizes of the released Sapiens models (mlp ratio 4, patch 16).
SAPIENS_PRESETS: dict[str, SapiensPreset] = {
    "0.3b": SapiensPreset(1024, 24, 16),
    "0.6b": SapiensPreset(1280, 32, 16),
    "1b": SapiensPreset(1536, 40, 24),
    "2b": SapiensPreset(1920, 48, 32),
}
SAPIENS_INPUT_SIZE = (1024, 768)
SAPIENS_HEAD_CHANNELS = 768
_KEYPOINT_SET_BY_K = {308: "goliath", 17: "coco", 133: "coco_wholebody"}


def sapiens_config(
    size: str = "1b", *, num_keypoints: int = 308, input_size: tuple[int, int] = SAPIENS_INPUT_SIZE, **overrides: Any
) -> ModelConfig:
    """The :class:`ModelConfig` of a Sapiens pose model of a preset ``size`` (``0.3b`` ... ``2b``)."""
    key = size.lower().removeprefix("sapiens-").removeprefix("sapiens_")
    if key not in SAPIENS_PRESETS:
        raise CheckpointError(f"unknown Sapiens size {size!r}; expected one of {sorted(SAPIENS_PRESETS)}")
    p = SAPIENS_PRESETS[key]
    fields: dict[str, Any] = {
        "name": f"sapiens-{key}",
        "backbone": "custom",
        "embed_dim": p.embed_dim,
        "depth": p.depth,
        "num_heads": p.num_heads,
        "head": "classic",
        "head_channels": SAPIENS_HEAD_CHANNELS,
        "head_convs": 2,
        "num_keypoints": num_keypoints,
        "keypoint_set": _KEYPOINT_SET_BY_K.get(num_keypoints, "none"),
        "input_size": tuple(input_size),
        "codec": "udp",
    }
    fields.update(overrides)
    return ModelConfig(**fields)


def create_sapiens(size: str = "1b", **kwargs: Any) -> PoseModel:
    """An untrained Sapiens pose model (see :func:`sapiens_config`)."""
    return PoseModel(sapiens_config(size, **kwargs))


# --------------------------------------------------------------------------------------------------
# Official checkpoints
# --------------------------------------------------------------------------------------------------

_BLOCK = {
    "ln1": "norm1",
    "ln2": "norm2",
    "attn.qkv": "attn.qkv",
    "attn.proj": "attn.proj",
    "ffn.layers.0.0": "mlp.fc1",
    "ffn.layers.1": "mlp.fc2",
}
_LAYER = re.compile(r"backbone\.layers\.(\d+)\.(.+)\.(weight|bias)")


def is_sapiens_state_dict(sd: dict[str, Any]) -> bool:
    """Whether ``sd`` has the official Sapiens (mmpretrain ViT) key layout."""
    return "backbone.patch_embed.projection.weight" in sd or any(k.startswith("backbone.layers.") for k in sd)


def official_keys(cfg: ModelConfig) -> list[str]:
    """Every key an official Sapiens pose checkpoint of ``cfg`` holds (BN counters excluded)."""
    keys = ["backbone.patch_embed.projection.weight", "backbone.patch_embed.projection.bias", "backbone.pos_embed"]
    for i in range(cfg.depth):
        keys += [f"backbone.layers.{i}.{name}.{p}" for name in _BLOCK for p in ("weight", "bias")]
    keys += ["backbone.ln1.weight", "backbone.ln1.bias"]
    bn = ("weight", "bias", "running_mean", "running_var")
    for j in (0, 3):
        keys.append(f"head.deconv_layers.{j}.weight")
        keys += [f"head.deconv_layers.{j + 1}.{p}" for p in bn]
    for j in range(0, 3 * cfg.head_convs, 3):
        keys += [f"head.conv_layers.{j}.weight", f"head.conv_layers.{j}.bias"]
        keys += [f"head.conv_layers.{j + 1}.{p}" for p in bn]
    keys += ["head.final_layer.weight", "head.final_layer.bias"]
    return keys


def infer_sapiens_config(sd: dict[str, torch.Tensor], **fields: Any) -> ModelConfig:
    """Read a Sapiens :class:`ModelConfig` off an official state dict's tensor shapes."""
    try:
        proj = sd["backbone.patch_embed.projection.weight"]
        pos = sd["backbone.pos_embed"]
        final = sd["head.final_layer.weight"]
    except KeyError as exc:
        raise CheckpointError(
            f"not a Sapiens pose state dict: key {exc} is missing (expected backbone.patch_embed.projection, "
            "backbone.pos_embed, backbone.layers.*, head.final_layer)"
        ) from None
    embed_dim = int(proj.shape[0])
    layers = {int(m.group(1)) for k in sd if (m := _LAYER.fullmatch(k))}
    depth = max(layers) + 1 if layers else 0
    if depth == 0:
        raise CheckpointError("not a Sapiens pose state dict: no backbone.layers.{i}.* tensors")
    preset = next((n for n, p in SAPIENS_PRESETS.items() if (p.embed_dim, p.depth) == (embed_dim, depth)), None)
    heads = SAPIENS_PRESETS[preset].num_heads if preset else max(1, embed_dim // 64)
    n = int(pos.shape[1])
    try:
        grid = grid_from_num_patches(n)
    except ValueError:
        try:
            grid = grid_from_num_patches(n - 1)  # a class-token slot in front
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
    fc1 = sd.get("backbone.layers.0.ffn.layers.0.0.weight")
    deconv = sd.get("head.deconv_layers.0.weight")
    convs = len({int(m.group(1)) for k in sd if (m := re.fullmatch(r"head\.conv_layers\.(\d+)\.weight", k))
                 and sd[k].ndim == 4})  # fmt: skip
    k = int(final.shape[0])
    cfg: dict[str, Any] = {
        "name": f"sapiens-{preset}" if preset else "sapiens-custom",
        "backbone": "custom",
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": heads,
        "mlp_ratio": (fc1.shape[0] / embed_dim) if fc1 is not None else 4.0,
        "head": "classic",
        "head_channels": int(deconv.shape[1]) if deconv is not None else SAPIENS_HEAD_CHANNELS,
        "head_convs": convs,
        "num_keypoints": k,
        "keypoint_set": _KEYPOINT_SET_BY_K.get(k, "none"),
        "input_size": (grid[0] * 16, grid[1] * 16),
        "codec": "udp",
    }
    cfg.update(fields)
    try:
        return ModelConfig(**cfg)
    except Exception as exc:  # noqa: BLE001 - ConfigError or a bad shape-derived value
        raise CheckpointError(f"checkpoint describes an unsupported Sapiens model: {exc}") from None


def convert_sapiens_state_dict(sd: dict[str, torch.Tensor], source: str = "checkpoint") -> tuple[
    dict[str, torch.Tensor], ModelConfig
]:  # fmt: skip
    """Official Sapiens pose state dict -> (pyramidpose names, config).

    Missing and unexpected keys are named in the *official* layout (what the user's file has);
    ``backbone.cls_token`` is dropped (pose models do not use it).
    """
    sd = {k: v for k, v in sd.items() if k != "backbone.cls_token"}
    cfg = infer_sapiens_config(sd)
    expected = official_keys(cfg)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in set(expected) and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {format_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {format_keys(unexpected)}")
        raise CheckpointError(
            f"{source} (Sapiens layout, inferred {cfg.name}: width {cfg.embed_dim}, {cfg.depth} layers, "
            f"K={cfg.num_keypoints}) does not match:\n  " + "\n  ".join(parts)
            + "\nCheck that the file is a complete Sapiens pose checkpoint (not a pretraining-only backbone)."
        )
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith("backbone.patch_embed.projection."):
            out["backbone.patch_embed.proj." + k.rsplit(".", 1)[1]] = v
        elif k == "backbone.pos_embed":
            g = cfg.input_size[0] // 16 * (cfg.input_size[1] // 16)
            grid_slots = v[:, -g:]  # drop a class-token slot if there is one
            out[k] = torch.cat([grid_slots.new_zeros(1, 1, v.shape[-1]), grid_slots], dim=1)
        elif k.startswith("backbone.ln1."):
            out["backbone.last_norm." + k.rsplit(".", 1)[1]] = v
        elif m := _LAYER.fullmatch(k):
            out[f"backbone.blocks.{m.group(1)}.{_BLOCK[m.group(2)]}.{m.group(3)}"] = v
        else:
            out[k] = v  # head.* keeps its names
    return out, cfg
