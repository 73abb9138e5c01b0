"""Top-down crop geometry: person boxes -> crop centre/scale -> affine crop matrices, and back.

This module imports nothing from pyramidpose, so the data pipeline, the codecs and the inference
code can all use it without import cycles.

Conventions (the one place they are stated):

* **Sizes are** ``(H, W)`` **everywhere** (model input, heatmaps, crops), as in the model config.
  Points, centres and scales are ``(x, y)`` / ``(w, h)``.
* Boxes are ``xywh`` in image pixels (COCO).
* A crop is described by a **centre** ``(cx, cy)`` and a **scale** ``(sw, sh)`` given **in pixels**
  (the size of the image region the crop covers; MMPose 1.x ``bbox_scale``). MMPose 0.x and the
  ViTPose code store ``scale / 200`` instead; multiply their scale by 200 to get ours.
* Coordinates are continuous with pixel centres at integers (pixel ``i`` covers ``[i-0.5, i+0.5]``).
* Two crop conventions:

  - **MSRA** (``udp=False``; HRNet's ``get_affine_transform``): a similarity that maps the centre to
    ``(W/2, H/2)`` and the region width ``sw`` onto ``W`` pixels;
  - **UDP** (``udp=True``; unbiased data processing, Huang et al. 2020, MMPose ``get_warp_matrix``):
    maps the centre to ``((W-1)/2, (H-1)/2)`` and the region onto ``W-1`` by ``H-1`` pixel
    *intervals*, so that flipping the crop is exactly flipping the image about the box centre.
* Rotation ``rot`` is in degrees with MSRA's sign convention, the same for both crop types.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def box_to_center_scale(
    boxes: np.ndarray | Sequence[float], aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Centres and pixel scales of crops around ``xywh`` boxes (MMPose ``_box2cs``).

    The box is grown along its short side to the model's ``aspect_ratio`` (input width / height),
    then both sides are multiplied by ``padding``.

    Args:
        boxes: ``(N, 4)`` or ``(4,)`` boxes ``x, y, w, h``.
        aspect_ratio: model input width / height (0.75 for 256x192).
        padding: context factor (1.25 in ViTPose/MMPose).

    Returns:
        ``centers (N, 2)`` and ``scales (N, 2)`` in pixels (or ``(2,)`` each for a single box).
    """
    b = np.asarray(boxes, dtype=np.float64)
    single = b.ndim == 1
    b = b.reshape(-1, 4)
    x, y, w, h = b.T
    centers = np.stack([x + w * 0.5, y + h * 0.5], axis=-1)
    w = w.copy()
    h = h.copy()
    wide = w > aspect_ratio * h
    h[wide] = w[wide] / aspect_ratio
    w[~wide] = h[~wide] * aspect_ratio
    scales = np.stack([w, h], axis=-1) * padding
    return (centers[0], scales[0]) if single else (centers, scales)


def get_affine_matrix(
    center: np.ndarray | Sequence[float],
    scale: np.ndarray | Sequence[float],
    size: tuple[int, int],
    rot: float = 0.0,
    *,
    udp: bool = False,
    inverse: bool = False,
) -> np.ndarray:
    """2x3 matrix mapping image pixels into a crop of ``size = (H, W)`` (or back if ``inverse``).

    ``udp=False`` gives HRNet/MSRA's ``get_affine_transform`` (a similarity using the scale width);
    ``udp=True`` gives the unbiased UDP warp (``get_warp_matrix``), which maps the region to
    ``(W-1, H-1)`` pixel intervals with the centre at ``((W-1)/2, (H-1)/2)``.
    """
    cx, cy = (float(v) for v in center)
    sw, sh = (float(v) for v in scale)
    h_out, w_out = size
    theta = np.deg2rad(rot)
    cos, sin = np.cos(theta), np.sin(theta)
    if udp:
        sx, sy = (w_out - 1.0) / sw, (h_out - 1.0) / sh
        dx, dy = (w_out - 1.0) / 2.0, (h_out - 1.0) / 2.0
    else:
        sx = sy = w_out / sw
        dx, dy = w_out / 2.0, h_out / 2.0
    # dst = S @ R(-rot) @ (p - c) + d
    a = np.array([[sx * cos, sx * sin], [-sy * sin, sy * cos]])
    m = np.concatenate([a, (np.array([dx, dy]) - a @ np.array([cx, cy]))[:, None]], axis=1)
    if inverse:
        m = cv2.invertAffineTransform(m)
    return m.astype(np.float64)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to points ``(..., 2)``."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def image_to_crop(
    points: np.ndarray,
    center: np.ndarray | Sequence[float],
    scale: np.ndarray | Sequence[float],
    size: tuple[int, int],
    rot: float = 0.0,
    *,
    udp: bool,
) -> np.ndarray:
    """Image pixels ``(..., 2)`` -> pixels of the crop of ``size = (H, W)`` (with the crop's matrix)."""
    return affine_points(points, get_affine_matrix(center, scale, size, rot, udp=udp))


def crop_to_image(
    points: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    size: tuple[int, int],
    *,
    udp: bool,
) -> np.ndarray:
    """Points ``(N, K, 2)`` on a ``size = (H, W)`` grid spanning each crop -> image pixels.

    The grid is the model input or the heatmap (the same region at a lower resolution); crops
    without rotation. MSRA: ``x * s / W + c - s / 2``; UDP: ``x * s / (W - 1) + c - s / 2``.
    """
    c = np.asarray(points, dtype=np.float64)
    ctr = np.asarray(centers, dtype=np.float64)[..., None, :]
    sc = np.asarray(scales, dtype=np.float64)[..., None, :]
    wh = np.asarray(size[::-1], dtype=np.float64)
    denom = wh - 1.0 if udp else wh
    return c * sc / denom + ctr - sc * 0.5


def warp_crop(
    image: np.ndarray,
    center: np.ndarray | Sequence[float],
    scale: np.ndarray | Sequence[float],
    size: tuple[int, int],
    rot: float = 0.0,
    *,
    udp: bool = False,
) -> np.ndarray:
    """Cut the crop ``(H, W, C)`` of ``size = (H, W)`` for one person (bilinear, zero outside the image)."""
    m = get_affine_matrix(center, scale, size, rot, udp=udp)
    return cv2.warpAffine(
        np.ascontiguousarray(image), m, (int(size[1]), int(size[0])), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip
