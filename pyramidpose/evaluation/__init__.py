"""Evaluation: COCO keypoint AP/AR (identical to pycocotools), pose NMS, single-person metrics.

Names are imported lazily so that importing this package stays cheap (numpy only, never torch).
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "coco_keypoint_eval": "pyramidpose.evaluation.coco_eval",
    "format_stats": "pyramidpose.evaluation.coco_eval",
    "oks_nms": "pyramidpose.evaluation.nms",
    "soft_oks_nms": "pyramidpose.evaluation.nms",
    "parametric_pose_nms": "pyramidpose.evaluation.nms",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyramidpose.evaluation' has no attribute {name!r}")
