"""Load and save pose models: official ViTPose ``.pth``, Hugging Face VitPose, pyramidpose's own.

:func:`load_model` accepts

(a) an official mmpose-format ViTPose checkpoint (``{'state_dict': {'backbone.*', 'keypoint_head.*'},
    'meta': ...}``; ViTPose+ ``associate_*`` heads and ``backbone.cls_token`` are dropped);
(b) a Hugging Face VitPose directory (``config.json`` + ``model.safetensors``): the split
    ``query/key/value`` projections are fused back into ``qkv`` and ``head.deconv1/batchnorm1/...``
    are renamed to the official head names;
(c) pyramidpose's own format written by :func:`save_model`: one ``.safetensors`` file whose metadata
    holds the JSON :class:`~pyramidpose.models.pose_model.ModelConfig` (or a directory holding
    ``model.safetensors``).

The architecture (size, decoder, K, experts, input size) is read from tensor shapes, so no config
file is needed for (a). Nothing is ever unpickled with code execution: ``.pth`` files are read with
``torch.load(weights_only=True)``; the non-tensor objects an mmpose ``meta`` dict may hold (numpy
scalars, mmcv classes) are replaced by inert placeholders.

Position embeddings of the official/HF layout keep the cls slot: the official backbone adds
``pos_embed[:, :1]`` to every patch token and the HF port does the same, so the tensors map 1:1.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyramidpose.errors import CheckpointError, ConfigError, format_keys
from pyramidpose.models.pose_model import MOE_DATASETS, ModelConfig, PoseModel
from pyramidpose.models.sapiens import convert_sapiens_state_dict, is_sapiens_state_dict
from pyramidpose.models.vit import VIT_PRESETS, grid_from_num_patches, resize_pos_embed, token_grid
from pyramidpose.utils.npyio import BoundedUnpickler
from pyramidpose.utils.weights_io import CONFIG_KEY, KIND_KEY, read_safetensors, read_weights, write_weights

log = logging.getLogger(__name__)

CONFIG_METADATA_KEY = CONFIG_KEY
#: The weights-file kind of a :class:`PoseModel`.
POSE2D_KIND = "pose2d"
_KEYPOINT_SET_BY_K = {17: "coco", 16: "mpii", 14: "aic", 133: "coco_wholebody"}
_HF_HEAD = {
    "head.deconv1.": "head.deconv_layers.0.",
    "head.batchnorm1.": "head.deconv_layers.1.",
    "head.deconv2.": "head.deconv_layers.3.",
    "head.batchnorm2.": "head.deconv_layers.4.",
    "head.conv.": "head.final_layer.",
}
_HF_BLOCK = {
    "attention.output.dense.": "attn.proj.",
    "layernorm_before.": "norm1.",
    "layernorm_after.": "norm2.",
    "mlp.": "mlp.",
}


# --------------------------------------------------------------------------------------------------
# Reading files safely
# --------------------------------------------------------------------------------------------------


class _Opaque(dict):
    """Inert stand-in for a class a checkpoint's ``meta`` refers to; never runs any file code.

    It accepts whatever the pickle stream does to an object (constructor arguments, dict items,
    list items, state) and just stores it.
    """

    _name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Opaque:
        return dict.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self)
        self.args = args
        self.items_list: list[Any] = []

    def append(self, item: Any) -> None:
        self.items_list.append(item)

    def extend(self, items: Any) -> None:
        self.items_list.extend(items)

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __reduce__(self) -> Any:  # pragma: no cover - never re-pickled
        raise TypeError(f"placeholder for {self._name} cannot be pickled")

    def __repr__(self) -> str:
        return f"<opaque {self._name}>"


def _placeholder(name: str) -> type:
    return type("Opaque_" + re.sub(r"\W", "_", name), (_Opaque,), {"_name": name})


class _RestrictedUnpickler(BoundedUnpickler):
    """Unpickler that resolves only tensor-rebuilding functions; every other global is inert.

    Used (through ``torch.load(pickle_module=...)``, which handles the zip layout and storages) for
    official checkpoints whose ``meta`` holds objects ``weights_only=True`` refuses. No function or
    class named by the file is ever imported or called, so loading cannot execute code.
    """

    _ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("collections", "OrderedDict"),
    }
    seen: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            import importlib

            return getattr(importlib.import_module(module), name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        _RestrictedUnpickler.seen.add(f"{module}.{name}")
        return _placeholder(f"{module}.{name}")


class _RestrictedPickleModule:
    """The ``pickle_module`` protocol ``torch.load`` needs: ``Unpickler`` and ``load``."""

    __name__ = "pyramidpose_restricted_pickle"
    Unpickler = _RestrictedUnpickler

    @staticmethod
    def load(f: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(f, **kwargs).load()


def _torch_load_safely(path: Path) -> Any:
    """``torch.load(weights_only=True)``, falling back to a restricted unpickler for odd metadata.

    A legacy (non-zip) file is one raw pickle stream, read from memory: unpickling from a file
    object lets a length field ask ``read`` for gigabytes before anything is checked. The file's
    first bytes are checked first: an image or a web page is named as such.
    """
    from pyramidpose.utils.sniff import require_checkpoint_file

    require_checkpoint_file(path)
    try:
        with open(path, "rb") as f:
            legacy = f.read(4) != b"PK\x03\x04"
        source: Any = io.BytesIO(path.read_bytes()) if legacy else path
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as first:
        _RestrictedUnpickler.seen = set()
        if legacy:
            source.seek(0)
        try:
            obj = torch.load(
                source, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule
            )
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here means the file is unusable
            raise CheckpointError(f"{path}: cannot be read safely ({first}; then: {exc})") from None
        log.info(
            "%s: replaced non-tensor pickled objects by inert placeholders: %s",
            path, sorted(_RestrictedUnpickler.seen),
        )
        return obj
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch's zip/pickle readers raise many types on bad bytes
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None


def _strip_module(sd: dict[str, Any]) -> dict[str, Any]:
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _tensors_only(sd: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(sd, dict) or not sd:
        raise CheckpointError(f"{path}: holds no state dict of tensors")
    out = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not out:
        raise CheckpointError(f"{path}: holds no tensors")
    return _strip_module(out)


# --------------------------------------------------------------------------------------------------
# Key conversion
# --------------------------------------------------------------------------------------------------


def convert_hf_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers ``VitPoseForPoseEstimation`` state dict to pyramidpose names.

    ``query``/``key``/``value`` weights and biases are concatenated (in that order) into ``qkv``.
    """
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    block = re.compile(r"backbone\.encoder\.layer\.(\d+)\.(.+)")
    for k, v in sd.items():
        if k == "backbone.embeddings.position_embeddings":
            out["backbone.pos_embed"] = v
        elif k.startswith("backbone.embeddings.patch_embeddings.projection."):
            out["backbone.patch_embed.proj." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("backbone.layernorm."):
            out["backbone.last_norm." + k.rsplit(".", 1)[1]] = v
        elif m := block.fullmatch(k):
            i, rest = int(m.group(1)), m.group(2)
            if q := re.fullmatch(r"attention\.attention\.(query|key|value)\.(weight|bias)", rest):
                qkv.setdefault((i, q.group(2)), {})[q.group(1)] = v
                continue
            for src, dst in _HF_BLOCK.items():
                if rest.startswith(src):
                    out[f"backbone.blocks.{i}.{dst}{rest[len(src):]}"] = v
                    break
            else:
                out[k] = v  # reported as unexpected later
        elif any(k.startswith(p) for p in _HF_HEAD):
            src = next(p for p in _HF_HEAD if k.startswith(p))
            out[_HF_HEAD[src] + k[len(src) :]] = v
        else:
            out[k] = v
    for (i, kind), parts in sorted(qkv.items()):
        if set(parts) != {"query", "key", "value"}:
            missing = sorted({"query", "key", "value"} - set(parts))
            raise CheckpointError(f"block {i}: attention {kind} lacks {missing} projection(s)")
        out[f"backbone.blocks.{i}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return out


def convert_official_state_dict(
    sd: dict[str, torch.Tensor], dataset: int = 0
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an official mmpose ViTPose state dict (``keypoint_head.`` -> ``head.``).

    ViTPose+ checkpoints hold the COCO head as ``keypoint_head`` and the heads of the other datasets
    as ``associate_keypoint_heads.{dataset - 1}``; for ``dataset > 0`` that head is used when present
    (as the official ViTPose+ model splitting does). Returns the converted dict and the keys dropped:
    ``backbone.cls_token`` (unused by ViTPose) and the heads not used.
    """
    head = "keypoint_head."
    assoc = f"associate_keypoint_heads.{dataset - 1}."
    if dataset > 0 and any(k.startswith(assoc) for k in sd):
        head = assoc
    out, dropped = {}, []
    for k, v in sd.items():
        if k.startswith(head):
            out["head." + k[len(head) :]] = v
        elif k == "backbone.cls_token" or k.startswith(("associate_", "keypoint_head.")):
            dropped.append(k)
        else:
            out[k] = v
    return out, dropped


def _is_hf(sd: dict[str, Any]) -> bool:
    return any(k.startswith(("backbone.embeddings.", "backbone.encoder.")) for k in sd)


# --------------------------------------------------------------------------------------------------
# Architecture from shapes
# --------------------------------------------------------------------------------------------------


def infer_config(
    sd: dict[str, torch.Tensor],
    *,
    num_heads: int | None = None,
    input_size: tuple[int, int] | None = None,
    **fields: Any,
) -> ModelConfig:
    """Read a :class:`ModelConfig` off a pyramidpose-named state dict's tensor shapes.

    ``num_heads`` is not visible in shapes: it comes from the preset of the same width and depth
    (S/B: 12, L/H: 16) unless given. ``input_size`` defaults to the position grid times 16 (a 4:3
    portrait grid, else a square one). Other ``fields`` override the result.
    """
    try:
        pos = sd["backbone.pos_embed"]
        embed_dim = int(pos.shape[-1])
        depth = len({int(m.group(1)) for k in sd if (m := re.match(r"backbone\.blocks\.(\d+)\.", k))})
        fc1 = sd["backbone.blocks.0.mlp.fc1.weight"]
        final = sd["head.final_layer.weight"]
    except KeyError as exc:
        raise CheckpointError(
            f"not a ViTPose state dict: key {exc} is missing (expected backbone.pos_embed, "
            "backbone.blocks.*, head.final_layer.* after conversion)"
        ) from None
    preset = next(
        (n for n, p in VIT_PRESETS.items() if (p.embed_dim, p.depth) == (embed_dim, depth)), "custom"
    )
    if num_heads is None:
        num_heads = VIT_PRESETS[preset].num_heads if preset != "custom" else max(1, embed_dim // 64)
    elif preset != "custom" and num_heads != VIT_PRESETS[preset].num_heads:
        preset = "custom"
    if input_size is None:
        try:
            grid = grid_from_num_patches(int(pos.shape[1]) - 1)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        input_size = (grid[0] * 16, grid[1] * 16)
    experts = len({k for k in sd if re.fullmatch(r"backbone\.blocks\.0\.mlp\.experts\.\d+\.weight", k)})
    part = int(sd["backbone.blocks.0.mlp.experts.0.weight"].shape[0]) if experts else 0
    classic = "head.deconv_layers.0.weight" in sd
    k = int(final.shape[0])
    head = "classic" if classic else "simple"
    cfg: dict[str, Any] = {
        "name": f"vitpose-{preset}" + ("" if classic else "-simple") if preset != "custom" else "vitpose-custom",
        "backbone": preset,
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": num_heads,
        "mlp_ratio": fc1.shape[0] / embed_dim,
        "head": head,
        "head_channels": int(sd["head.deconv_layers.0.weight"].shape[1]) if classic else 256,
        "num_keypoints": k,
        "keypoint_set": _KEYPOINT_SET_BY_K.get(k, "none"),
        "input_size": tuple(input_size),
        "num_experts": max(experts, 1),
        "part_features": part,
    }
    cfg.update(fields)
    try:
        return ModelConfig(**cfg)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint describes an unsupported model: {exc}") from None


# --------------------------------------------------------------------------------------------------
# Strict loading with readable errors
# --------------------------------------------------------------------------------------------------


_VITPOSE_HINT = "Check that the file is a complete ViTPose checkpoint of the expected size."


def load_state_dict_strict(
    module: nn.Module, sd: dict[str, torch.Tensor], source: str = "checkpoint", hint: str = _VITPOSE_HINT
) -> None:
    """``module.load_state_dict`` that raises :class:`CheckpointError` naming every problem.

    The message lists missing keys, unexpected keys and shape mismatches (BatchNorm
    ``num_batches_tracked`` counters may be absent), then ``hint`` (what the user should check).
    Also used for any model's safetensors file (e.g. :func:`pyramidpose.training.loop.load_checkpoint`).
    """
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {format_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {format_keys(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches ({len(mismatched)}): {format_keys(mismatched)}")
        raise CheckpointError(
            f"{source} does not match the model:\n  " + "\n  ".join(parts)
            + "\n" + hint
        )
    fill = {k: v for k, v in own.items() if k not in sd}  # num_batches_tracked counters only
    if any(t.is_meta for t in own.values()):
        # Built on the meta device (no init cost): adopt the checkpoint tensors in the model's dtype.
        full = {**{k: torch.zeros_like(v, device="cpu") for k, v in fill.items()}, **sd}
        full = {k: v.to(own[k].dtype).contiguous() for k, v in full.items()}
        module.load_state_dict(full, strict=True, assign=True)
    else:
        module.load_state_dict({**fill, **sd}, strict=True)


def load_model_file(
    path: str | os.PathLike[str], kind: str, what: str, build: Callable[[dict[str, Any]], nn.Module], hint: str
) -> nn.Module:
    """The model of a weights file of ``kind`` (:mod:`pyramidpose.utils.weights_io`): ``build`` makes it
    from the stored config, then the weights load strictly; eval mode. Any failure (another kind, a
    config ``build`` rejects, keys or shapes) is a :class:`CheckpointError` naming the file and ``what``."""
    p = Path(path)
    try:
        w = read_weights(p, kind)
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: not a {what} ({exc})") from None
    try:
        model = build(w.config)
    except (KeyError, ValueError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{p}: bad {what} config ({exc})") from None
    load_state_dict_strict(model, w.state_dict, source=str(p), hint=hint)
    return model.eval()


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def read_checkpoint(
    path: str | os.PathLike[str], *, dataset: int = 0
) -> tuple[dict[str, torch.Tensor], ModelConfig, str]:
    """Read any supported checkpoint as ``(state dict in pyramidpose names, ModelConfig, format)``.

    ``format`` is ``"official"``, ``"sapiens"`` (an official Sapiens pose checkpoint, see
    :mod:`pyramidpose.models.sapiens`), ``"hf"`` or ``"pyramidpose"``. ``dataset`` selects the
    per-dataset head of an official ViTPose+ checkpoint (see :func:`convert_official_state_dict`).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or directory")
    if p.is_dir():
        if (p / "config.json").is_file() and (p / "model.safetensors").is_file():
            hf_config = _read_hf_config(p / "config.json")
            if hf_config is not None:
                sd, _ = read_safetensors(p / "model.safetensors")
                return _from_hf(sd, hf_config, p)
        if (p / "model.safetensors").is_file():
            return read_checkpoint(p / "model.safetensors", dataset=dataset)
        raise CheckpointError(
            f"{p}: a model directory needs model.safetensors (pyramidpose) or config.json + "
            "model.safetensors (Hugging Face VitPose)"
        )
    from pyramidpose.utils.sniff import require_checkpoint_file

    kind = require_checkpoint_file(p)  # "photo.jpg is a JPEG image, not a checkpoint", before any loader
    if kind == "onnx":
        raise CheckpointError(f"{p} is an ONNX model: it has no PyTorch weights to read (load_model runs it with onnxruntime)")
    if kind == "safetensors":
        sd, meta = read_safetensors(p)
        if CONFIG_METADATA_KEY in meta:
            kind = meta.get(KIND_KEY, POSE2D_KIND)
            if kind != POSE2D_KIND:
                raise CheckpointError(f"{p}: holds a {kind} model, not a 2D pose model")
            try:
                cfg = ModelConfig.from_dict(json.loads(meta[CONFIG_METADATA_KEY]))
            except (ConfigError, json.JSONDecodeError, TypeError) as exc:
                raise CheckpointError(f"{p}: the stored model config is invalid: {exc}") from None
            return sd, cfg, "pyramidpose"
        sd = _strip_module(sd)
        if _is_hf(sd):
            hf_config = _read_hf_config(p.parent / "config.json") if (p.parent / "config.json").is_file() else {}
            return _from_hf(sd, hf_config or {}, p)
        return _from_official_or_sapiens(sd, p, dataset)
    obj = _torch_load_safely(p)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd = _tensors_only(obj["state_dict"], p)
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        sd = _tensors_only(obj["model"], p)
    else:
        sd = _tensors_only(obj, p)
    if _is_hf(sd):
        return _from_hf(sd, {}, p)
    return _from_official_or_sapiens(sd, p, dataset)


def _read_hf_config(path: Path) -> dict[str, Any] | None:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable JSON ({exc})") from None
    return cfg if isinstance(cfg, dict) and cfg.get("model_type") == "vitpose" else None


def _from_official_or_sapiens(
    sd: dict[str, torch.Tensor], p: Path, dataset: int = 0
) -> tuple[dict[str, torch.Tensor], ModelConfig, str]:
    """An mmpose-layout checkpoint: Sapiens (mmpretrain ViT keys) or ViTPose."""
    if not is_sapiens_state_dict(sd):
        return _from_official(sd, p, dataset)
    try:
        sd, cfg = convert_sapiens_state_dict(sd, source=str(p))
    except CheckpointError as exc:
        raise CheckpointError(str(exc) if str(p) in str(exc) else f"{p}: {exc}") from None
    return sd, cfg, "sapiens"


def _from_official(
    sd: dict[str, torch.Tensor], p: Path, dataset: int = 0
) -> tuple[dict[str, torch.Tensor], ModelConfig, str]:
    sd, dropped = convert_official_state_dict(sd, dataset)
    if dropped:
        log.info("%s: ignoring %d key(s) not used for inference: %s", p, len(dropped), format_keys(dropped, 4))
    try:
        cfg = infer_config(sd)
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from None
    return sd, cfg, "official"


def _from_hf(
    sd: dict[str, torch.Tensor], hf: dict[str, Any], p: Path
) -> tuple[dict[str, torch.Tensor], ModelConfig, str]:
    sd = convert_hf_state_dict(sd)
    bb = hf.get("backbone_config") or {}
    fields: dict[str, Any] = {}
    if "layer_norm_eps" in bb:
        fields["ln_eps"] = float(bb["layer_norm_eps"])
    depth = bb.get("num_hidden_layers")
    out_indices = bb.get("out_indices")
    if out_indices and depth and list(out_indices)[-1] not in (depth, -1):
        raise CheckpointError(
            f"{p}: the head reads backbone stage {list(out_indices)[-1]}, not the last one ({depth}); "
            "only last-stage VitPose models are supported"
        )
    size = bb.get("image_size")
    input_size = (tuple(size) if isinstance(size, (list, tuple)) else (size, size)) if size else None
    try:
        cfg = infer_config(sd, num_heads=bb.get("num_attention_heads"), input_size=input_size, **fields)
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from None
    if input_size is not None:
        # The HF port keeps the position grid of image_size; make sure the shapes agree.
        n = int(sd["backbone.pos_embed"].shape[1]) - 1
        g = token_grid(cfg.input_size)
        if g[0] * g[1] != n:
            raise CheckpointError(f"{p}: image_size {input_size} does not match a {n}-slot position embedding")
    return sd, cfg, "hf"


def _dataset_index(dataset: int | str) -> int:
    if isinstance(dataset, str):
        key = dataset.lower().replace("-", "").replace("_", "")
        table = {k.replace("_", ""): v for k, v in MOE_DATASETS.items()}
        table["wholebody"] = MOE_DATASETS["coco_wholebody"]
        if key not in table:
            raise ConfigError(f"unknown dataset {dataset!r}; expected an index or one of {sorted(MOE_DATASETS)}")
        return table[key]
    return int(dataset)


def load_model(
    path: str | os.PathLike[str],
    device: str | torch.device | None = None,
    *,
    dataset: int | str = 0,
    input_size: tuple[int, int] | None = None,
) -> PoseModel:
    """Load a pose model from any supported checkpoint; returns it in eval mode on ``device``.

    Args:
        path: official ``.pth``, Hugging Face VitPose directory, or pyramidpose ``.safetensors``
            (or a directory holding ``model.safetensors``), an ``.onnx`` file written by
            ``pyramidpose export`` (an :class:`~pyramidpose.models.onnx_model.ONNXPoseModel`
            run by onnxruntime), or a zoo name from
            ``pyramidpose weights list`` (downloaded and cached on first use).
        device: where to put the model (default CPU).
        dataset: ViTPose+ expert to use: index or name (COCO=0, AIC=1, MPII=2, AP-10K=3, APT-36K=4,
            COCO-WholeBody=5). Must be 0 for single-dataset models.
        input_size: run at another crop size ``(H, W)``; the position grid is resized (bicubic) once
            at load time.

    Raises:
        CheckpointError: unreadable file, unknown layout, or weights that do not fit the inferred model
            (the message names missing/unexpected keys and shape mismatches).
    """
    from pyramidpose.models.official import resolve_weights

    index = _dataset_index(dataset)
    path = resolve_weights(path)  # a zoo name ("vitpose-b") becomes its cached download
    if Path(path).is_file():
        from pyramidpose.utils.sniff import require_checkpoint_file

        if require_checkpoint_file(Path(path)) == "onnx":  # exported by pyramidpose export: onnxruntime
            if index != 0 or input_size is not None:
                raise CheckpointError(f"{path}: an exported ONNX model has a fixed expert and input size; "
                                      "export again for another dataset= or input_size=")  # fmt: skip
            from pyramidpose.models.onnx_model import ONNXPoseModel

            return ONNXPoseModel(path, device=device)  # type: ignore[return-value]
    sd, cfg, fmt = read_checkpoint(path, dataset=index)
    if not 0 <= index < cfg.num_experts:
        raise CheckpointError(
            f"{path}: dataset index {index} requested, but the model has {cfg.num_experts} expert(s)"
            + (" (not a ViTPose+ model: use dataset=0)" if cfg.num_experts == 1 else "")
        )
    cfg.dataset_index = index
    if fmt != "pyramidpose" and index in (3, 4) and cfg.num_keypoints == 17:
        cfg.keypoint_set = "ap10k"  # animal layout of AP-10K / APT-36K, not COCO's 17 body keypoints
    if input_size is not None and tuple(input_size) != cfg.input_size:
        new_cfg = ModelConfig.from_dict({**cfg.to_dict(), "input_size": tuple(input_size)})
        sd = dict(sd)
        sd["backbone.pos_embed"] = resize_pos_embed(
            sd["backbone.pos_embed"],
            token_grid(cfg.input_size, cfg.patch_ratio),
            token_grid(new_cfg.input_size, cfg.patch_ratio),
        )
        cfg = new_cfg
    try:
        with torch.device("meta"):
            model = PoseModel(cfg)  # no random init: every tensor comes from the checkpoint
    except (RuntimeError, NotImplementedError):  # a module whose __init__ needs real tensors
        model = PoseModel(cfg)
    load_state_dict_strict(model, sd, source=f"{path} ({fmt} format)")
    model.eval()
    if device is not None:
        model.to(device)
    return model


def save_model(model: PoseModel, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` in the one weights format (:mod:`pyramidpose.utils.weights_io`, kind ``pose2d``):
    one ``.safetensors`` file with its JSON config in the metadata, written atomically.

    A directory ``path`` (or one without a suffix) gets ``model.safetensors`` inside. Returns the file.
    """
    if not isinstance(getattr(model, "config", None), ModelConfig):
        raise ConfigError("save_model needs a PoseModel (a module with a ModelConfig .config)")
    p = Path(path)
    if p.is_dir() or p.suffix == "":
        p = p / "model.safetensors"
    return write_weights(p, model, POSE2D_KIND, model.config.to_dict())


def load_backbone_weights(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = False
) -> dict[str, list[str]]:
    """Load only the ViT backbone weights of ``path`` into ``model.backbone`` (or a bare ViT).

    Reads official ViTPose / MAE / pyramidpose / HF checkpoints. The position grid is resized to the
    model's (bicubic); heads, decoders, ``cls_token``, ``mask_token`` and MAE ``decoder*``/``norm``
    weights are skipped (as the official ViTPose initialisation from MAE does). Returns
    ``{"loaded": [...], "missing": [...], "skipped": [...]}``; with ``strict=True`` any missing
    backbone key is a :class:`CheckpointError`.
    """
    backbone = getattr(model, "backbone", model)
    p = Path(path)
    if p.is_dir() or p.suffix == ".safetensors":
        sd = read_checkpoint(p)[0]
    else:
        obj = _torch_load_safely(p)
        raw = obj.get("state_dict", obj.get("model", obj)) if isinstance(obj, dict) else obj
        sd = _tensors_only(raw, p)
        if _is_hf(sd):
            sd = convert_hf_state_dict(sd)
        else:
            sd = convert_official_state_dict(sd)[0]
    own = backbone.state_dict()
    bb: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for k, v in sd.items():
        name = k[len("backbone.") :] if k.startswith("backbone.") else k
        if name in own:
            bb[name] = v
        else:
            skipped.append(k)
    if "pos_embed" in bb and bb["pos_embed"].shape != own["pos_embed"].shape:
        n = bb["pos_embed"].shape[1] - 1
        try:
            old = grid_from_num_patches(n)
        except ValueError as exc:
            raise CheckpointError(f"{p}: {exc}") from None
        bb["pos_embed"] = resize_pos_embed(bb["pos_embed"], old, backbone.grid)
    bad = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in bb.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if bad:
        raise CheckpointError(f"{p}: backbone shape mismatches ({len(bad)}): {format_keys(bad)}")
    missing = [k for k in own if k not in bb]
    if strict and missing:
        raise CheckpointError(f"{p}: backbone keys missing ({len(missing)}): {format_keys(missing)}")
    if not bb:
        raise CheckpointError(f"{p}: no backbone weights found (keys look like {format_keys(list(sd), 4)})")
    backbone.load_state_dict(bb, strict=False)
    log.info("%s: loaded %d backbone tensors, %d missing, %d skipped", p, len(bb), len(missing), len(skipped))
    return {"loaded": sorted(bb), "missing": missing, "skipped": skipped}
