"""Pose backends and person detectors behind the protocols of :mod:`.base`, one file per model.

* :func:`load_backend` - a preset name of :data:`PRESETS` (``None``: :data:`DEFAULT_PRESET`) or a
  checkpoint path (a bottom-up PAF model file, ``kind: paf`` in its metadata, run by :mod:`.paf`; any
  other file or folder :func:`pyramidpose.load_model` reads, run by :mod:`.vitpose`);
* :func:`load_detector` - a detector name of :data:`DETECTORS`, a :class:`~.base.PersonDetector`, or
  any callable ``image -> (boxes, scores)``.

Adding a model is one file ``backends/<name>.py`` with ``load(**options) -> PoseBackend`` (and/or
``load_detector(**options) -> PersonDetector``) plus one entry in :data:`PRESETS` (or
:data:`DETECTORS`). Modules are imported only when their model is loaded, so optional packages
(mediapipe files, ai-edge-litert, ...) are never needed at import time.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyramidpose.errors import ConfigError
from pyramidpose.inference.backends.base import (
    CallableDetector,
    DetectAndFollow,
    Landmarks,
    PersonDetector,
    PoseBackend,
    SessionOptions,
    VideoSession,
)


@dataclass(frozen=True)
class Preset:
    """A named model: the backend module under ``pyramidpose.inference.backends``, the options its
    ``load`` gets, and the person detector it goes with (``None``: bottom-up, no detector)."""

    module: str
    options: dict[str, Any] = field(default_factory=dict)
    detector: str | None = "blazepose"
    description: str = ""


#: Named models for ``load_backend(name)``.
PRESETS: dict[str, Preset] = {
    "accurate": Preset("movenet", {"variant": "thunder"}, "nanodet",
                       "embedded MoveNet Thunder (ONNX) on NanoDet person boxes (the default)"),
    "fast": Preset("movenet", {"variant": "lightning"}, "nanodet",
                   "embedded MoveNet Lightning (ONNX, about 3x faster) on NanoDet person boxes"),
    "bottomup": Preset("movenet_multipose", {}, None, "embedded MoveNet MultiPose (ONNX): up to 6 people, no detector"),
    "blazepose": Preset("blazepose", {"preset": "accurate"}, "blazepose",
                        "embedded BlazePose-full: aligned crop + flip test + detector-guided crop"),
    "blazepose-fast": Preset("blazepose", {"preset": "fast"}, "blazepose", "embedded BlazePose-full, no flip test"),
    "blazepose-multiscale": Preset("blazepose", {"preset": "multiscale"}, "blazepose",
                                   "embedded BlazePose-full, 3 crop scales + flip test"),
}  # fmt: skip
#: The default, chosen by measurement (docs/embedded_models.md): COCO keypoint AP on coco-mini val
#: 0.513 with ground-truth boxes, 0.456 with NanoDet boxes (BlazePose: 0.26 / 0.21).
DEFAULT_PRESET = "accurate"
#: The default on VIDEO frames when no model is named (images keep :data:`DEFAULT_PRESET`): about 3x
#: the frames per second of ``accurate`` for AP 0.85 vs 0.87 against ``accurate`` detecting every
#: frame on the street clip (``benchmarks/bench_pipeline.py``, docs/embedded_models.md).
DEFAULT_VIDEO_PRESET = "fast"

#: Person detectors for ``load_detector(name)``: name -> module with ``load_detector(**options)``.
DETECTORS: dict[str, str] = {"nanodet": "nanodet", "blazepose": "blazepose", "hog": "hog"}


def _module(name: str) -> Any:
    return importlib.import_module(f"pyramidpose.inference.backends.{name}")


def load_backend(
    model: str | os.PathLike[str] | None = None, *, device: str | None = None, **options: Any
) -> PoseBackend:
    """The pose backend of a preset name (``None``: the default) or of a checkpoint path.

    ``options`` override the preset's (e.g. ``num_threads``) or, for a checkpoint, go to
    :class:`~.vitpose.ViTPoseBackend` (``dataset``, ``decode``, ``flip_test``, ``batch_size``...).
    """
    name = DEFAULT_PRESET if model is None else str(model)
    if name in PRESETS:
        preset = PRESETS[name]
        return _module(preset.module).load(**{**preset.options, **options})
    from pyramidpose.models.paf_model import is_paf_checkpoint

    if is_paf_checkpoint(name):
        return _module("paf").load(name, device=device, **options)
    return _module("vitpose").load(name, device=device, **options)


def load_detector(
    detector: str | PersonDetector | Callable[..., Any] = "nanodet", **options: Any
) -> PersonDetector:
    """A person detector by name (:data:`DETECTORS`), or a detector object / plug-in callable (checked)."""
    if isinstance(detector, str):
        if detector not in DETECTORS:
            raise ConfigError(f"unknown detector '{detector}'; choose from {', '.join(DETECTORS)}")
        return _module(DETECTORS[detector]).load_detector(**options)
    if callable(getattr(detector, "detect", None)):
        return detector  # type: ignore[return-value]
    return CallableDetector(detector)


__all__ = [
    "DETECTORS", "DEFAULT_PRESET", "DEFAULT_VIDEO_PRESET", "PRESETS", "CallableDetector", "DetectAndFollow", "Landmarks", "PersonDetector",
    "PoseBackend", "Preset", "SessionOptions", "VideoSession", "load_backend", "load_detector",
]  # fmt: skip
