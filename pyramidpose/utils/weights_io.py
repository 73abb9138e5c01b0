"""The one weights format of pyramidpose, for every model kind.

A weights file is one ``.safetensors`` file: the tensors of the state dict, and in the string
metadata ``format = "pyramidpose"``, ``pyramidpose_kind`` (``pose2d``, ``lifter``, ``forecaster``...;
other model families add their own) and ``pyramidpose_config``, the JSON config the model is
rebuilt from. It is written atomically and read without unpickling anything.

Files written before this format still load (:func:`read_weights`): 2D pose files whose metadata
has the config but no kind are ``pose2d``; lifter/forecaster files kept their config in a JSON file
beside the weights (``best.safetensors`` + ``best.json``), which the legacy reader takes when the
caller says which kind it expects.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pyramidpose.errors import CheckpointError
from pyramidpose.utils.io import atomic_path

FORMAT = "pyramidpose"
CONFIG_KEY = "pyramidpose_config"
KIND_KEY = "pyramidpose_kind"
#: Kind of a file written before kinds existed that has its config in the metadata (2D pose models).
LEGACY_METADATA_KIND = "pose2d"


@dataclass
class Weights:
    """What :func:`read_weights` returns."""

    state_dict: dict[str, torch.Tensor]
    kind: str
    config: dict[str, Any]
    legacy: bool = False  # read from the old sidecar-JSON layout


def write_weights(
    path: str | os.PathLike[str], state: torch.nn.Module | Mapping[str, torch.Tensor], kind: str, config: dict[str, Any]
) -> Path:
    """Write ``state`` (a module or a state dict) with its ``kind`` and JSON ``config``, atomically."""
    from safetensors.torch import save_file

    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    meta = {"format": FORMAT, KIND_KEY: str(kind), CONFIG_KEY: json.dumps(_finite(config), allow_nan=False)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def _finite(obj: Any) -> Any:
    """``obj`` with non-finite floats (a metric that was NaN) as ``None``: strict JSON has no NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a safetensors file; :class:`CheckpointError` if unreadable."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    return tensors, meta


def read_weights(path: str | os.PathLike[str], kind: str | None = None) -> Weights:
    """Read a weights file; ``kind`` (when given) must match the file's.

    Old files: metadata with a config but no kind read as ``pose2d``; files without metadata (old
    lifters and forecasters) read their config from the JSON beside them (same name, ``.json``).
    """
    path = Path(path)
    tensors, meta = read_safetensors(path)
    if CONFIG_KEY in meta:
        try:
            config = json.loads(meta[CONFIG_KEY])
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path}: the stored config is not valid JSON ({exc}).") from None
        found = meta.get(KIND_KEY, LEGACY_METADATA_KIND)
        if kind is not None and found != kind:
            raise CheckpointError(f"{path}: holds a {found} model, not a {kind} model.")
        return Weights(tensors, found, config)
    return Weights(tensors, kind or "unknown", read_legacy_sidecar(path), legacy=True)


def read_legacy_sidecar(path: Path) -> dict[str, Any]:
    """The config of an old lifter/forecaster file: the JSON file beside the weights."""
    js = path.with_suffix(".json")
    if not js.is_file():
        raise CheckpointError(
            f"{path}: no config inside the file and no {js.name} beside it; cannot rebuild the model."
        )
    try:
        config = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{js}: invalid JSON ({exc}).") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{js}: expected a JSON object with the model config.")
    return config
