"""3D pose metrics: MPJPE, P-MPJPE, N-MPJPE, PCK3D / AUC, MPJVE. numpy or torch.

Shapes: ``pred`` and ``gt`` are ``[..., J, 3]`` (any leading dims, e.g. frames). Units are those of
the inputs (meters in this package; multiply by 1000 for the usual mm tables).

Root-relative convention: :func:`mpjpe`, :func:`n_mpjpe`, :func:`pck3d` and :func:`mpjve` take a
``root`` joint index (default 0, the H36M pelvis) and subtract each pose's root from both
prediction and ground truth before comparing (pass ``root=None`` for absolute positions). The root
joint then has zero error and is still counted in the mean (the common Human3.6M protocol, 17
joints). :func:`p_mpjpe` aligns each predicted pose to its ground truth with the optimal similarity
transform (rotation, uniform scale, translation; Procrustes), so it needs no root.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["root_relative", "mpjpe", "p_mpjpe", "n_mpjpe", "pck3d", "auc3d", "mpjve", "procrustes_align"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _norm(x: Any) -> Any:
    return x.norm(dim=-1) if _is_torch(x) else np.linalg.norm(x, axis=-1)


def root_relative(x: Any, root: int | None = 0) -> Any:
    """Subtract joint ``root`` from every joint (no-op for ``root=None``)."""
    return x if root is None else x - x[..., root : root + 1, :]


def _check(pred: Any, gt: Any) -> None:
    if tuple(pred.shape) != tuple(gt.shape) or pred.shape[-1] != 3:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must both be [..., J, 3]")


def mpjpe(pred: Any, gt: Any, root: int | None = 0, reduce: bool = True) -> Any:
    """Mean per-joint position error after root alignment (see module doc)."""
    _check(pred, gt)
    err = _norm(root_relative(pred, root) - root_relative(gt, root))
    return err.mean() if reduce else err


def procrustes_align(pred: Any, gt: Any) -> Any:
    """``pred [..., J, 3]`` mapped by the similarity transform minimising squared error to ``gt``.

    Umeyama / Kabsch with reflection correction: ``s R pred + t``.
    """
    _check(pred, gt)
    torch_in = _is_torch(pred)
    if torch_in:
        import torch

        mu_p, mu_g = pred.mean(-2, keepdim=True), gt.mean(-2, keepdim=True)
        p0, g0 = pred - mu_p, gt - mu_g
        H = p0.transpose(-1, -2) @ g0  # [..., 3, 3]
        U, S, Vh = torch.linalg.svd(H)
        V = Vh.transpose(-1, -2)
        d = torch.sign(torch.det(V @ U.transpose(-1, -2)))
        D = torch.ones_like(S)
        D = torch.cat([D[..., :2], d[..., None]], -1)
        R = V @ torch.diag_embed(D) @ U.transpose(-1, -2)
        var_p = (p0**2).sum((-1, -2))
        s = (S * D).sum(-1) / var_p.clamp(min=1e-12)
        return s[..., None, None] * (p0 @ R.transpose(-1, -2)) + mu_g
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    mu_p, mu_g = pred.mean(-2, keepdims=True), gt.mean(-2, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g
    H = np.swapaxes(p0, -1, -2) @ g0
    U, S, Vh = np.linalg.svd(H)
    V = np.swapaxes(Vh, -1, -2)
    d = np.sign(np.linalg.det(V @ np.swapaxes(U, -1, -2)))
    D = np.ones_like(S)
    D[..., 2] = d
    R = V @ (D[..., :, None] * np.swapaxes(U, -1, -2))
    s = (S * D).sum(-1) / np.maximum((p0**2).sum((-1, -2)), 1e-12)
    return s[..., None, None] * (p0 @ np.swapaxes(R, -1, -2)) + mu_g


def p_mpjpe(pred: Any, gt: Any, reduce: bool = True) -> Any:
    """MPJPE after per-pose similarity Procrustes alignment of ``pred`` onto ``gt``."""
    err = _norm(procrustes_align(pred, gt) - gt)
    return err.mean() if reduce else err


def n_mpjpe(pred: Any, gt: Any, root: int | None = 0, reduce: bool = True) -> Any:
    """MPJPE after root alignment and the per-pose optimal uniform scale of ``pred``
    (``s = <pred, gt> / <pred, pred>``, Rhodin et al. 2018)."""
    _check(pred, gt)
    p, g = root_relative(pred, root), root_relative(gt, root)
    num = (p * g).sum((-1, -2))
    den = (p * p).sum((-1, -2))
    den = den.clamp(min=1e-12) if _is_torch(den) else np.maximum(den, 1e-12)
    s = num / den
    return mpjpe(s[..., None, None] * p, g, root=None, reduce=reduce)


def pck3d(pred: Any, gt: Any, threshold: float = 0.15, root: int | None = 0) -> Any:
    """Fraction of joints within ``threshold`` (same unit as the poses; 150 mm default) after
    root alignment."""
    err = mpjpe(pred, gt, root=root, reduce=False)
    ok = err <= threshold
    return ok.float().mean() if _is_torch(ok) else ok.mean()


def auc3d(pred: Any, gt: Any, max_threshold: float = 0.15, steps: int = 31, root: int | None = 0) -> float:
    """Area under the PCK3D curve for thresholds ``0..max_threshold`` (normalised to [0, 1])."""
    err = mpjpe(pred, gt, root=root, reduce=False)
    if _is_torch(err):
        err = err.detach().cpu().numpy()
    ths = np.linspace(0.0, max_threshold, steps)
    return float(np.mean([(err <= t).mean() for t in ths]))


def mpjve(pred: Any, gt: Any, root: int | None = 0, reduce: bool = True) -> Any:
    """Mean per-joint velocity error: MPJPE of first differences along the frame axis (``-3``).

    Inputs ``[..., F, J, 3]`` with ``F >= 2``; root-relative unless ``root=None``. Divide by the
    frame interval for units per second.
    """
    _check(pred, gt)
    if pred.shape[-3] < 2:
        raise ValueError("MPJVE needs at least two frames")
    p, g = root_relative(pred, root), root_relative(gt, root)
    vp = p[..., 1:, :, :] - p[..., :-1, :, :]
    vg = g[..., 1:, :, :] - g[..., :-1, :, :]
    err = _norm(vp - vg)
    return err.mean() if reduce else err
