"""Keypoint heatmap losses (mmpose's conventions)."""

from __future__ import annotations

import torch
from torch import nn


def keypoint_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    target_weight: torch.Tensor | None = None,
    ohkm_topk: int | None = None,
) -> torch.Tensor:
    """Mean squared heatmap error, mmpose's ``JointsMSELoss`` convention.

    ``pred`` and ``target`` are [B, K, H, W]; ``target_weight`` is [B, K] (or [B, K, 1]). Each
    keypoint's squared error is averaged over its pixels and multiplied by the square of its weight
    (mmpose multiplies prediction and target by the weight before the difference), then the mean is
    taken over batch and keypoints and halved (mmpose's 0.5 factor). With ``ohkm_topk`` only the
    ``k`` largest per-keypoint losses of each instance are averaged (online hard keypoint mining).
    Computed in float32 whatever the autocast dtype of ``pred``.
    """
    b, k = pred.shape[:2]
    pred = pred.float().reshape(b, k, -1)
    target = target.float().reshape(b, k, -1)
    per_kpt = ((pred - target) ** 2).mean(dim=2)  # [B, K]
    if target_weight is not None:
        w = target_weight.float().reshape(b, k)
        per_kpt = per_kpt * w * w
    if ohkm_topk is not None:
        topk = min(int(ohkm_topk), k)
        hard, _ = per_kpt.topk(topk, dim=1)
        return 0.5 * hard.mean()
    return 0.5 * per_kpt.mean()


class KeypointMSELoss(nn.Module):
    """:func:`keypoint_mse` as a module, configured from :class:`~pyramidpose.training.config.LossConfig`."""

    def __init__(
        self, use_target_weight: bool = True, ohkm: bool = False, ohkm_topk: int = 8, loss_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.ohkm_topk = ohkm_topk if ohkm else None
        self.loss_weight = loss_weight

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        w = target_weight if self.use_target_weight else None
        return self.loss_weight * keypoint_mse(pred, target, w, self.ohkm_topk)
