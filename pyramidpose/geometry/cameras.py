"""Pinhole cameras with radial/tangential distortion: project and back-project, numpy or torch.

Conventions (OpenCV): extrinsics map world to camera, ``X_cam = R X_world + t``; the camera
looks along +Z, x to the right, y down. Intrinsics ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]``.
Distortion ``(k1, k2, p1, p2, k3)`` (Brown-Conrady, as OpenCV) applies to normalised coordinates.

Every function accepts numpy arrays or torch tensors (same type in, same type out) and leading
batch dimensions: points ``[..., N, 3]`` with ``K [..., 3, 3]``, ``R [..., 3, 3]``, ``t [..., 3]``.

:func:`look_at` and :func:`random_virtual_camera` build cameras around a subject in a **Y-up**
world (the CMU mocap frame of :mod:`pyramidpose.data.mocap`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Camera",
    "world_to_camera",
    "camera_to_world",
    "distort",
    "undistort",
    "project",
    "project_points",
    "back_project",
    "projection_matrix",
    "look_at",
    "random_virtual_camera",
]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _T(m: Any) -> Any:
    """Swap the last two axes (numpy or torch)."""
    return m.transpose(-1, -2) if _is_torch(m) else np.swapaxes(m, -1, -2)


def _like(a: Any, ref: Any) -> Any:
    """Convert ``a`` to the array type / dtype / device of ``ref``."""
    if _is_torch(ref):
        import torch

        return torch.as_tensor(a, dtype=ref.dtype, device=ref.device)
    return np.asarray(a, dtype=np.result_type(ref, np.float32))


def world_to_camera(X: Any, R: Any, t: Any) -> Any:
    """``X_cam = R X + t`` for points ``[..., N, 3]``."""
    R, t = _like(R, X), _like(t, X)
    return X @ _T(R) + t[..., None, :]


def camera_to_world(Xc: Any, R: Any, t: Any) -> Any:
    """Inverse of :func:`world_to_camera`: ``X = R^T (X_cam - t)``."""
    R, t = _like(R, Xc), _like(t, Xc)
    return (Xc - t[..., None, :]) @ R


def distort(xy: Any, dist: Any | None) -> Any:
    """Apply (k1, k2, p1, p2, k3) distortion to normalised image coordinates ``[..., N, 2]``."""
    if dist is None:
        return xy
    d = _like(dist, xy)
    k1, k2, p1, p2 = d[..., 0:1], d[..., 1:2], d[..., 2:3], d[..., 3:4]
    k3 = d[..., 4:5] if d.shape[-1] > 4 else 0 * k1
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    lib = _lib(xy)
    return lib.stack([xd, yd], -1)


def undistort(xy_d: Any, dist: Any | None, iterations: int = 20) -> Any:
    """Invert :func:`distort` by fixed-point iteration (accurate for moderate distortion)."""
    if dist is None:
        return xy_d
    xy = xy_d
    for _ in range(iterations):
        err = distort(xy, dist) - xy_d
        xy = xy - err
    return xy


def _lib(x: Any) -> Any:
    if _is_torch(x):
        import torch

        return torch
    return np


def project(Xc: Any, K: Any, dist: Any | None = None, eps: float = 1e-6) -> Any:
    """Project camera-frame points ``[..., N, 3]`` to pixels ``[..., N, 2]``.

    Points at or behind the camera (``Z <= eps``) are projected with ``Z`` clamped to ``eps``.
    """
    K = _like(K, Xc)
    z = Xc[..., 2:3]
    z = z.clamp(min=eps) if _is_torch(z) else np.maximum(z, eps)
    xy = distort(Xc[..., :2] / z, dist)
    u = K[..., 0:1, 0:1] * xy[..., 0:1] + K[..., 0:1, 1:2] * xy[..., 1:2] + K[..., 0:1, 2:3]
    v = K[..., 1:2, 1:2] * xy[..., 1:2] + K[..., 1:2, 2:3]
    lib = _lib(Xc)
    return lib.concatenate([u, v], -1) if lib is np else lib.cat([u, v], -1)


def project_points(X: Any, K: Any, R: Any, t: Any, dist: Any | None = None) -> Any:
    """World points ``[..., N, 3]`` -> pixels ``[..., N, 2]`` (extrinsics, then intrinsics)."""
    return project(world_to_camera(X, R, t), K, dist)


def back_project(uv: Any, depth: Any, K: Any, R: Any | None = None, t: Any | None = None,
                 dist: Any | None = None) -> Any:
    """Pixels ``[..., N, 2]`` with camera depths ``Z [..., N]`` -> 3D points ``[..., N, 3]``.

    Returns camera-frame points, or world points when ``R`` and ``t`` are given.
    """
    K = _like(K, uv)
    fx, fy = K[..., 0:1, 0], K[..., 1:2, 1]
    s, cx, cy = K[..., 0:1, 1], K[..., 0:1, 2], K[..., 1:2, 2]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - s * y) / fx
    lib = _lib(uv)
    xy = undistort(lib.stack([x, y], -1), dist)
    Xc = lib.stack([xy[..., 0] * depth, xy[..., 1] * depth, depth + 0 * xy[..., 0]], -1)
    if R is None or t is None:
        return Xc
    return camera_to_world(Xc, R, t)


def projection_matrix(K: Any, R: Any, t: Any) -> Any:
    """3x4 matrix ``P = K [R | t]`` (batched), for undistorted points."""
    K, R, t = _like(K, R), R, _like(t, R)
    lib = _lib(R)
    Rt = lib.concatenate([R, t[..., None]], -1) if lib is np else lib.cat([R, t[..., None]], -1)
    return K @ Rt


@dataclass
class Camera:
    """A calibrated camera (numpy float64). ``R, t``: world -> camera; ``dist``: k1 k2 p1 p2 k3."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    dist: np.ndarray | None = None
    width: int = 1000
    height: int = 1000
    name: str = field(default="")

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates, ``-R^T t``."""
        return -self.R.T @ self.t

    @property
    def P(self) -> np.ndarray:
        return projection_matrix(self.K, self.R, self.t)

    def world_to_camera(self, X: Any) -> Any:
        return world_to_camera(X, self.R, self.t)

    def project(self, X: Any) -> Any:
        """World points ``[..., N, 3]`` -> pixels ``[..., N, 2]``."""
        return project_points(X, self.K, self.R, self.t, self.dist)

    def back_project(self, uv: Any, depth: Any, world: bool = True) -> Any:
        if world:
            return back_project(uv, depth, self.K, self.R, self.t, self.dist)
        return back_project(uv, depth, self.K, dist=self.dist)


def look_at(center: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 1.0, 0.0)) -> tuple:
    """Rotation ``R`` and translation ``t`` of a camera at ``center`` looking at ``target``.

    ``up`` is the world up direction (Y up by default); the image y axis points down.
    """
    center = np.asarray(center, dtype=np.float64)
    f = np.asarray(target, dtype=np.float64) - center
    f /= np.linalg.norm(f)
    r = np.cross(f, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(r) < 1e-8:  # looking straight along up: pick any right vector
        r = np.cross(f, np.array([1.0, 0.0, 0.0]))
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    R = np.stack([r, d, f])
    return R, -R @ center


def random_virtual_camera(
    rng: np.random.Generator,
    target: np.ndarray,
    *,
    azimuth_deg: tuple[float, float] = (0.0, 360.0),
    elevation_deg: tuple[float, float] = (-10.0, 35.0),
    distance_m: tuple[float, float] = (3.5, 8.0),
    focal_px: tuple[float, float] = (700.0, 1500.0),
    image_size: tuple[int, int] = (1000, 1000),
    principal_jitter_px: float = 20.0,
    target_jitter_m: float = 0.3,
) -> Camera:
    """A camera at random azimuth/elevation/distance around ``target`` (Y-up world), looking at
    ``target`` (+ a little jitter), with a random focal length (pixels) and principal point near
    the image centre. The default ranges keep a standing adult mostly inside a 1000x1000 image.
    """
    az = math.radians(rng.uniform(*azimuth_deg))
    el = math.radians(rng.uniform(*elevation_deg))
    dist = rng.uniform(*distance_m)
    tgt = np.asarray(target, dtype=np.float64) + rng.normal(0.0, target_jitter_m / 2, 3) * (target_jitter_m > 0)
    offset = dist * np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    R, t = look_at(tgt + offset, tgt)
    f = rng.uniform(*focal_px)
    w, h = image_size
    cx, cy = w / 2 + rng.uniform(-1, 1) * principal_jitter_px, h / 2 + rng.uniform(-1, 1) * principal_jitter_px
    K = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    return Camera(K=K, R=R, t=t, dist=None, width=w, height=h)
