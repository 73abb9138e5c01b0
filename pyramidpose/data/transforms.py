"""Top-down geometry: person boxes to crops, the crop affine matrix, keypoint flips, augmentation.

Conventions (used everywhere in pyramidpose):

* Boxes are ``xywh`` in image pixels (COCO).
* A crop is described by a **centre** ``(cx, cy)`` and a **scale** ``(sw, sh)`` given **in pixels**
  (the size of the image region that the crop covers; MMPose 1.x ``bbox_scale``). MMPose 0.x and
  the ViTPose code store ``scale / 200`` instead; multiply their scale by 200 to get ours.
* Coordinates are continuous with pixel centres at integers (pixel ``i`` covers ``[i-0.5, i+0.5]``).
* Two crop conventions:
  - **MSRA** (``udp=False``; HRNet's ``get_affine_transform``): a similarity that maps the centre to
    ``(W/2, H/2)`` and the region width ``sw`` onto ``W`` pixels;
  - **UDP** (``udp=True``; unbiased data processing, Huang et al. 2020, MMPose ``get_warp_matrix``):
    maps the centre to ``((W-1)/2, (H-1)/2)`` and the region onto ``W-1`` by ``H-1`` pixel *intervals*,
    so that flipping the crop is exactly flipping the image about the box centre.
* Rotation ``rot`` is in degrees with MSRA's sign convention, the same for both crop types.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pyramidpose.skeletons import KeypointSet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Keypoint names (substrings) that belong to the lower body for half-body augmentation.
_LOWER_BODY = ("hip", "knee", "ankle", "heel", "toe", "foot", "pelvis")


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


def center_scale_to_box(centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The ``xywh`` box covered by a crop (inverse of :func:`box_to_center_scale` without padding)."""
    c = np.asarray(centers, dtype=np.float64)
    s = np.asarray(scales, dtype=np.float64)
    return np.concatenate([c - s / 2, s], axis=-1)


def get_affine_matrix(
    center: np.ndarray | Sequence[float],
    scale: np.ndarray | Sequence[float],
    output_size: tuple[int, int],
    rot: float = 0.0,
    *,
    udp: bool = False,
    inverse: bool = False,
) -> np.ndarray:
    """2x3 matrix mapping image pixels into a crop of ``output_size = (W, H)`` (or back if ``inverse``).

    ``udp=False`` gives HRNet/MSRA's ``get_affine_transform`` (a similarity using the scale width);
    ``udp=True`` gives the unbiased UDP warp (``get_warp_matrix``), which maps the region to
    ``(W-1, H-1)`` pixel intervals with the centre at ``((W-1)/2, (H-1)/2)``.
    """
    cx, cy = (float(v) for v in center)
    sw, sh = (float(v) for v in scale)
    w_out, h_out = output_size
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


def warp_crop(
    image: np.ndarray,
    center: np.ndarray | Sequence[float],
    scale: np.ndarray | Sequence[float],
    output_size: tuple[int, int],
    rot: float = 0.0,
    *,
    udp: bool = False,
) -> np.ndarray:
    """Cut the crop ``(H, W, C)`` for one person (bilinear, zero outside the image)."""
    m = get_affine_matrix(center, scale, output_size, rot, udp=udp)
    return cv2.warpAffine(
        image, m, (int(output_size[0]), int(output_size[1])), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip


def normalize_crops(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB crops ``(N, H, W, 3)`` (or ``(H, W, 3)``) -> float32 ``(N, 3, H, W)`` ImageNet-normalised."""
    c = np.asarray(crops)
    if c.ndim == 3:
        c = c[None]
    x = c.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def flip_keypoints(
    keypoints: np.ndarray,
    image_width: float,
    flip_index: np.ndarray | Sequence[int] | KeypointSet,
    visibility: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror keypoints ``(..., K, D)`` horizontally in an image of width ``image_width``.

    ``x -> image_width - 1 - x`` (pixel centres at integers), then left/right keypoints are swapped
    with ``flip_index`` (a permutation, or a :class:`KeypointSet`). ``visibility (..., K)`` is permuted
    the same way. Returns ``(keypoints, visibility)``.
    """
    perm = flip_index.flip_index() if isinstance(flip_index, KeypointSet) else np.asarray(flip_index)
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    kp[..., 0] = image_width - 1 - kp[..., 0]
    kp = kp[..., perm, :]
    vis = None if visibility is None else np.asarray(visibility)[..., perm]
    return kp, vis


def random_scale_rotation(
    rng: np.random.Generator,
    scale_factor: float = 0.35,
    rot_factor: float = 40.0,
    rot_prob: float = 0.6,
) -> tuple[float, float]:
    """Random (scale multiplier, rotation in degrees) as in the HRNet/ViTPose training pipeline.

    Scale: ``clip(1 + N(0, sf), 1 - sf, 1 + sf)``; rotation: ``clip(N(0, rf), -2rf, 2rf)`` with
    probability ``rot_prob``, else 0. Multiply the crop scale by the first and pass the second as
    ``rot`` to :func:`get_affine_matrix` / :func:`warp_crop`.
    """
    s = float(np.clip(rng.normal() * scale_factor + 1.0, 1.0 - scale_factor, 1.0 + scale_factor))
    r = 0.0
    if rng.random() <= rot_prob:
        r = float(np.clip(rng.normal() * rot_factor, -2.0 * rot_factor, 2.0 * rot_factor))
    return s, r


def upper_body_mask(keypoint_set: KeypointSet) -> np.ndarray:
    """Bool ``(K,)``: True for upper-body keypoints (everything but hips, legs, feet)."""
    return np.array([not any(t in n for t in _LOWER_BODY) for n in keypoint_set.keypoints])


def half_body_box(
    keypoints: np.ndarray,
    visibility: np.ndarray,
    keypoint_set: KeypointSet,
    aspect_ratio: float,
    rng: np.random.Generator,
    *,
    min_keypoints: int = 2,
    padding: float = 1.5,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Half-body augmentation: a crop around the visible upper or lower body (MMPose convention).

    Picks the upper body with probability 0.5 (falling back to the other half when it has fewer than
    ``min_keypoints`` visible keypoints), fits a box to those keypoints, grows it to ``aspect_ratio``
    and by ``padding``. Returns ``(center (2,), scale (2,))`` in pixels, or ``None`` when neither half
    has enough visible keypoints.
    """
    kp = np.asarray(keypoints, dtype=np.float64)[:, :2]
    vis = np.asarray(visibility) > 0
    upper = upper_body_mask(keypoint_set)
    halves = [vis & upper, vis & ~upper]
    if rng.random() >= 0.5:
        halves.reverse()
    chosen = next((h for h in halves if h.sum() >= min_keypoints), None)
    if chosen is None:
        return None
    pts = kp[chosen]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center = pts.mean(axis=0)
    w, h = hi - lo
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w, h]) * padding
