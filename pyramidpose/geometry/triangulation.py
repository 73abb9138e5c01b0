"""Triangulation of 3D points from two or more calibrated views.

:func:`triangulate_dlt` is the confidence-weighted direct linear transform: each view contributes
two rows ``w (u P_3 - P_1)``, ``w (v P_3 - P_2)`` and the point is the smallest right singular
vector. :func:`triangulate_ransac` picks, per point, the view subset with most inliers by
reprojection error (outlier views, e.g. a detector swapping left and right in one camera) and
refits on the inliers. Points are undistorted before DLT when ``dists`` is given.

Inputs: ``points2d [V, N, 2]`` pixels, ``P [V, 3, 4]`` projection matrices ``K [R | t]``,
``weights [V, N]`` (confidence; 0 = missing). numpy or torch (torch keeps gradients through SVD).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from pyramidpose.geometry.cameras import _is_torch, _lib, undistort

__all__ = ["triangulate_dlt", "triangulate_batched", "triangulate_ransac", "reprojection_errors", "project_with_P"]


def project_with_P(X: Any, P: Any) -> Any:
    """Project world points ``[N, 3]`` with ``P [V, 3, 4]`` -> pixels ``[V, N, 2]``."""
    lib = _lib(X)
    ones = lib.ones_like(X[..., :1])
    Xh = lib.concatenate([X, ones], -1) if lib is np else lib.cat([X, ones], -1)
    x = Xh[None] @ (P.transpose(-1, -2) if _is_torch(P) else np.swapaxes(P, -1, -2))
    z = x[..., 2:3]
    z = lib.where(lib.abs(z) < 1e-12, 1e-12 + 0 * z, z)
    return x[..., :2] / z


def _undistort_views(points2d: Any, Ks: Any | None, dists: Any | None) -> Any:
    if dists is None:
        return points2d
    if Ks is None:
        raise ValueError("undistorting needs the intrinsics Ks as well as dists")
    out = []
    for v in range(points2d.shape[0]):
        K, pts = Ks[v], points2d[v]
        x = (pts[:, 0] - K[0, 2] - K[0, 1] * (pts[:, 1] - K[1, 2]) / K[1, 1]) / K[0, 0]
        y = (pts[:, 1] - K[1, 2]) / K[1, 1]
        lib = _lib(pts)
        xy = undistort(lib.stack([x, y], -1), dists[v])
        u = K[0, 0] * xy[:, 0] + K[0, 1] * xy[:, 1] + K[0, 2]
        w = K[1, 1] * xy[:, 1] + K[1, 2]
        out.append(lib.stack([u, w], -1))
    return _lib(points2d).stack(out, 0)


def triangulate_dlt(
    points2d: Any, P: Any, weights: Any | None = None, *, Ks: Any | None = None, dists: Any | None = None
) -> Any:
    """Confidence-weighted DLT. ``points2d [V, N, 2]``, ``P [V, 3, 4]`` -> ``X [N, 3]``.

    Needs at least two views with positive weight per point; points seen by fewer come back NaN.
    Each view's rows are normalised to unit norm before weighting, so weights are relative
    confidences independent of the camera's pixel scale.
    """
    lib = _lib(points2d)
    V, N = points2d.shape[0], points2d.shape[1]
    if P.shape[0] != V:
        raise ValueError(f"{V} views of 2D points but {P.shape[0]} projection matrices")
    if V < 2:
        raise ValueError("triangulation needs at least two views")
    pts = _undistort_views(points2d, Ks, dists)
    if weights is None:
        weights = lib.ones_like(pts[..., 0])
    u, v = pts[..., 0:1], pts[..., 1:2]  # [V, N, 1]
    P1, P2, P3 = P[:, None, 0, :], P[:, None, 1, :], P[:, None, 2, :]  # [V, 1, 4]
    r1 = u * P3 - P1
    r2 = v * P3 - P2  # [V, N, 4]
    if lib is np:
        n1 = np.linalg.norm(r1, axis=-1, keepdims=True) + 1e-12
        n2 = np.linalg.norm(r2, axis=-1, keepdims=True) + 1e-12
    else:
        n1 = r1.norm(dim=-1, keepdim=True) + 1e-12
        n2 = r2.norm(dim=-1, keepdim=True) + 1e-12
    w = weights[..., None]
    A = lib.stack([r1 / n1 * w, r2 / n2 * w], 1)  # [V, 2, N, 4]
    A = A.reshape(2 * V, N, 4) if lib is np else A.reshape(2 * V, N, 4)
    A = np.transpose(A, (1, 0, 2)) if lib is np else A.permute(1, 0, 2)  # [N, 2V, 4]
    if lib is np:
        _, _, vh = np.linalg.svd(A)
    else:
        _, _, vh = lib.linalg.svd(A, full_matrices=False)
    Xh = vh[:, -1, :]
    X = Xh[:, :3] / Xh[:, 3:4]
    seen = (weights > 0).sum(0) if lib is np else (weights > 0).sum(0)
    bad = seen < 2
    if lib is np:
        X = np.where(bad[:, None], np.nan, X)
    else:
        X = lib.where(bad[:, None], lib.full_like(X, float("nan")), X)
    return X


def reprojection_errors(X: Any, points2d: Any, P: Any, *, Ks: Any | None = None, dists: Any | None = None) -> Any:
    """Pixel distance ``[V, N]`` between each view's 2D point and the reprojection of ``X [N, 3]``."""
    pts = _undistort_views(points2d, Ks, dists)
    d = project_with_P(X, P) - pts
    return (d**2).sum(-1) ** 0.5


def triangulate_ransac(
    points2d: np.ndarray,
    P: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    threshold_px: float = 10.0,
    Ks: np.ndarray | None = None,
    dists: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC over views (numpy): for each point try every pair of views, keep the hypothesis with
    most views within ``threshold_px`` (ties: lower total error), refit by DLT on its inliers.

    Returns ``(X [N, 3], inliers [V, N] bool)``. Exhaustive over pairs (V is small in practice).
    """
    points2d = np.asarray(points2d, dtype=np.float64)
    V, N = points2d.shape[:2]
    pts = _undistort_views(points2d, Ks, dists)
    w = np.ones((V, N)) if weights is None else np.asarray(weights, dtype=np.float64)
    best_in = np.zeros((V, N), dtype=bool)
    best_score = np.full(N, -np.inf)
    for a, b in itertools.combinations(range(V), 2):
        X = triangulate_dlt(pts[[a, b]], P[[a, b]], w[[a, b]])
        err = reprojection_errors(np.nan_to_num(X), pts, P)
        inl = (err < threshold_px) & (w > 0) & np.isfinite(X).all(-1)[None]
        score = inl.sum(0) - 1e-6 * np.where(inl, err, 0).sum(0)
        better = score > best_score
        best_score = np.where(better, score, best_score)
        best_in[:, better] = inl[:, better]
    X = triangulate_dlt(pts, P, w * best_in)
    return X, best_in


def triangulate_batched(points2d: Any, P: Any, weights: Any | None = None) -> Any:
    """Batched DLT with per-sample cameras: ``points2d [B, V, N, 2]``, ``P [B, V, 3, 4]``,
    ``weights [B, V, N]`` -> ``X [B, N, 3]`` (numpy or torch; torch is differentiable)."""
    lib = _lib(points2d)
    B, V, N = points2d.shape[:3]
    if weights is None:
        weights = lib.ones_like(points2d[..., 0])
    u, v = points2d[..., 0:1], points2d[..., 1:2]  # [B, V, N, 1]
    P1, P2, P3 = P[:, :, None, 0, :], P[:, :, None, 1, :], P[:, :, None, 2, :]  # [B, V, 1, 4]
    r1, r2 = u * P3 - P1, v * P3 - P2  # [B, V, N, 4]
    if lib is np:
        r1 = r1 / (np.linalg.norm(r1, axis=-1, keepdims=True) + 1e-12)
        r2 = r2 / (np.linalg.norm(r2, axis=-1, keepdims=True) + 1e-12)
    else:
        r1 = r1 / (r1.norm(dim=-1, keepdim=True) + 1e-12)
        r2 = r2 / (r2.norm(dim=-1, keepdim=True) + 1e-12)
    w = weights[..., None]
    A = lib.stack([r1 * w, r2 * w], 2)  # [B, V, 2, N, 4]
    if lib is np:
        A = np.transpose(A.reshape(B, 2 * V, N, 4), (0, 2, 1, 3))
        _, _, vh = np.linalg.svd(A)
    else:
        A = A.reshape(B, 2 * V, N, 4).permute(0, 2, 1, 3)
        _, _, vh = lib.linalg.svd(A, full_matrices=False)
    Xh = vh[..., -1, :]
    return Xh[..., :3] / Xh[..., 3:4]
