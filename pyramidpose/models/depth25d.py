"""2.5D pose: 2D heatmaps plus per-joint depth relative to the pelvis, from one crop.

:class:`Pose25D` adds a depth branch to a plain (no neck) :class:`~pyramidpose.models.pose_model.PoseModel`:
a second classic head on the same backbone features predicts one *location map* per joint (VNect's
idea, Mehta et al. 2017): at every heatmap pixel, the joint's depth relative to the pelvis, in
meters. The depth of joint k is the map read where the joint is (:func:`read_depth`, weighting the
map by the joint's heatmap: the target heatmap in training, the predicted one at test time).

:func:`reconstruct` turns 2D keypoints (image pixels), relative depths and a root depth into
camera-frame 3D joints by back-projection through the camera intrinsics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pyramidpose.models.heads import ClassicHead

__all__ = ["Pose25D", "read_depth", "reconstruct"]


class Pose25D(nn.Module):
    """``forward(x) -> (heatmaps [B, K, h, w], depth maps [B, K, h, w] in meters)``."""

    def __init__(self, pose: nn.Module, channels: int = 128) -> None:
        super().__init__()
        if getattr(pose, "neck", None) is not None:
            raise ValueError("Pose25D needs a plain ViTPose model (no feature-pyramid neck)")
        self.config = cfg = pose.config
        # the pose model's parts at the top level: parameter names (backbone.*, head.*) as the
        # trainer's layer-wise learning-rate decay expects
        self.backbone, self.head = pose.backbone, pose.head
        self.depth_head = ClassicHead(cfg.embed_dim, cfg.num_keypoints, channels)
        nn.init.normal_(self.depth_head.final_layer.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(x)
        return self.head(feats), self.depth_head(feats)


def read_depth(depth_maps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-joint depth ``[B, K]``: the depth maps averaged with the (clamped, normalised) heatmap weights."""
    w = weights.float().clamp(min=0)
    w = w / w.flatten(2).sum(-1).clamp(min=1e-6)[..., None, None]
    return (depth_maps.float() * w).flatten(2).sum(-1)


def reconstruct(uv: np.ndarray, rel_depth: np.ndarray, K: np.ndarray, root_depth: float) -> np.ndarray:
    """Camera-frame 3D joints ``[J, 3]`` (same unit as the depths) from pixels ``uv [J, 2]``, depths
    relative to the root ``[J]`` and the root's absolute depth."""
    from pyramidpose.geometry.cameras import back_project

    return back_project(np.asarray(uv, np.float64), root_depth + np.asarray(rel_depth, np.float64), K)
