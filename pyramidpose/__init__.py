"""pyramidpose: human pose estimation with ViTPose refined by feature pyramids.

The top-level names are imported lazily so that ``import pyramidpose`` (and the ``eval`` command)
does not pay for importing torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Pose": "pyramidpose.api",
    "load_model": "pyramidpose.models.checkpoints",
    "save_model": "pyramidpose.models.checkpoints",
    "create_model": "pyramidpose.models.pose_model",
    "coco_keypoint_eval": "pyramidpose.evaluation.coco_eval",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyramidpose' has no attribute {name!r}")
