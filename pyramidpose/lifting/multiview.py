"""Multi-view consistency: weak supervision of a lifter from 2D poses in calibrated views only.

For every sample, each view ``a`` gives a root-relative 3D prediction ``pred_a`` (its own camera
frame). The loss

1. triangulates, from the 2D observations of all views (no 3D labels), the root joint and the two
   ends of a reference bone (default pelvis -> thorax), giving the root's world position and the
   reference bone length ``L``;
2. rescales ``pred_a`` so its reference bone has length ``L`` (scale normalisation; the factor is
   clamped to [1/4, 4] so a degenerate early prediction cannot explode);
3. moves it into every view ``b`` (``X_b = R_b R_a^T s pred_a + (R_b root_w + t_b)``), projects it
   with ``K_b`` and compares with view ``b``'s 2D pose (squared error in image-size-normalised
   units, i.e. pixels * 2 / width; the mean per-joint Euclidean distance, which is more robust
   than its square early in training) -- ``b != a`` is the cross-view term, ``b == a`` the own-view
   term;
4. adds ``scale_weight * log(|ref bone of pred_a| / L)^2`` so the raw prediction is metric too.
"""

from __future__ import annotations

import torch

from pyramidpose.geometry.triangulation import triangulate_batched

__all__ = ["multiview_consistency_loss"]


def multiview_consistency_loss(
    pred: torch.Tensor,
    obs2d: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    image_width: float,
    *,
    root: int = 0,
    ref_bone: tuple[int, int] = (0, 8),
    self_weight: float = 1.0,
    scale_weight: float = 0.1,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weak multi-view loss (see module doc).

    Shapes: ``pred [B, V, J, 3]`` (view ``a``'s prediction in camera ``a``), ``obs2d [B, V, J, 2]``
    pixels, ``K/R [B, V, 3, 3]``, ``t [B, V, 3]``. Returns ``(loss, {"cross": .., "self": ..,
    "scale": ..})``.
    """
    pred = pred.float()
    B, V, J, _ = pred.shape
    P = K @ torch.cat([R, t[..., None]], -1)  # [B, V, 3, 4]
    with torch.no_grad():
        pts = obs2d[:, :, [root, ref_bone[0], ref_bone[1]]]
        X = triangulate_batched(pts.double(), P.double()).float()  # [B, 3, 3]
        root_w = X[:, 0]
        L = (X[:, 2] - X[:, 1]).norm(dim=-1).clamp(min=1e-3)  # [B]
    bone = (pred[:, :, ref_bone[1]] - pred[:, :, ref_bone[0]]).norm(dim=-1).clamp(min=1e-4)  # [B, V]
    scaled = pred * (L[:, None] / bone).clamp(0.25, 4.0)[..., None, None]
    # world = R_a^T X_a (root-relative, so no translation) + root_w
    world = torch.einsum("bvji,bvnj->bvni", R, scaled) + root_w[:, None, None, :]  # [B, Va, J, 3]
    cam = torch.einsum("bwij,bvnj->bvwni", R, world) + t[:, None, :, None, :]  # [B, Va, Vb, J, 3]
    z = cam[..., 2:3].clamp(min=0.1)
    xy = cam[..., :2] / z
    Kb = K[:, None]  # [B, 1, Vb, 3, 3]
    u = Kb[..., 0, 0, None] * xy[..., 0] + Kb[..., 0, 1, None] * xy[..., 1] + Kb[..., 0, 2, None]
    v = Kb[..., 1, 1, None] * xy[..., 1] + Kb[..., 1, 2, None]
    proj = torch.stack([u, v], -1)  # [B, Va, Vb, J, 2]
    err = ((proj - obs2d[:, None]) * (2.0 / image_width)).pow(2).sum(-1).add(1e-12).sqrt().mean(-1)  # [B, Va, Vb]
    eye = torch.eye(V, dtype=torch.bool, device=pred.device)
    cross = err[:, ~eye].mean() if V > 1 else err.new_zeros(())
    own = err[:, eye].mean()
    scale = torch.log(bone / L[:, None]).pow(2).mean()
    loss = cross + self_weight * own + scale_weight * scale
    return loss, {"cross": float(cross.detach()), "self": float(own.detach()), "scale": float(scale.detach())}
