"""Top-down data augmentation and input normalisation: keypoint flips, random scale/rotation,
half-body crops, ImageNet normalisation.

Crop geometry (boxes -> centre/scale -> affine crop matrices, sizes ``(H, W)``) lives in
:mod:`pyramidpose.geometry.crops`, where its conventions are stated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyramidpose.skeletons import KeypointSet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Keypoint names (substrings) that belong to the lower body for half-body augmentation.
_LOWER_BODY = ("hip", "knee", "ankle", "heel", "toe", "foot", "pelvis")


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
