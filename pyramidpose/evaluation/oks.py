"""Object keypoint similarity (OKS): the one implementation, used by COCO evaluation, OKS-NMS,
soft-OKS-NMS, tracking and PCK matching.

``OKS = mean_k exp(-d_k^2 / (2 * s * (2 sigma_k)^2))`` over the keypoints that count, where ``d_k`` is
the distance between the two poses' keypoint ``k`` and ``s`` the scale (an area). The users differ
only in the scale and in which keypoints count, and those are parameters here:

* ``scale = max(area, area_floor) + eps``: COCO evaluation uses the annotation area plus
  ``np.spacing(1)`` (pycocotools); OKS-NMS the mean of both areas plus ``np.spacing(1)`` (HRNet /
  MMPose); tracking the area floored at 1; PCK matching the area floored at 1e-6 plus ``np.spacing(1)``.
* ``visible``: keypoints that count (labelled, or confident in both poses); a pair without any has OKS 0.

The per-keypoint terms are computed with pycocotools' operations in its order
(``d^2 / var / scale / 2``), so COCO evaluation stays identical to pycocotools to the last bit.
Pure numpy.
"""

from __future__ import annotations

import numpy as np

#: The epsilon pycocotools adds to the area.
EPS = np.spacing(1)
_COCO_SIGMAS_X10 = (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89)  # fmt: skip


def default_sigmas() -> np.ndarray:
    """COCO's 17 OKS sigmas, computed exactly as pycocotools does (``array([.26, .25, ...]) / 10``), so
    that every OKS value is identical to the last bit.

    The same values as :data:`pyramidpose.skeletons.COCO` (a test checks it); written out here so that
    ``pyramidpose eval`` does not import the skeleton module (dataclasses) at start-up.
    """
    return np.array(_COCO_SIGMAS_X10) / 10.0


def oks_scale(area: np.ndarray | float, area_floor: float | None = None, eps: float = EPS) -> np.ndarray:
    """The OKS scale ``max(area, area_floor) + eps`` (no floor when ``area_floor`` is None)."""
    a = np.asarray(area, dtype=np.float64)
    if area_floor is not None:
        a = np.maximum(a, area_floor)
    return a + eps if eps else a


def keypoint_similarity(
    d2: np.ndarray, variances: np.ndarray, scale: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Per-keypoint terms ``exp(-d2 / variances / scale / 2)`` (pycocotools' operation order).

    ``variances`` is ``(2 sigma)^2`` per keypoint, ``scale`` broadcasts against ``d2``. With ``out``,
    ``d2`` is overwritten (it is the work buffer) and the result goes to ``out``.
    """
    if out is None:
        return np.exp(-(d2 / variances / scale / 2))
    d2 /= variances
    d2 /= scale
    d2 /= 2
    return np.exp(np.negative(d2, out=d2), out=out)


def mean_over_visible(terms: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    """Mean of ``terms`` over the last axis, over the ``visible`` keypoints only (0 where none is)."""
    if visible is None:
        return terms.mean(-1)
    n = visible.sum(-1)
    return np.where(n > 0, (terms * visible).sum(-1) / np.maximum(n, 1), 0.0)


def oks(
    a: np.ndarray,
    b: np.ndarray,
    sigmas: np.ndarray,
    area: np.ndarray | float,
    *,
    visible: np.ndarray | None = None,
    area_floor: float | None = None,
    eps: float = EPS,
) -> np.ndarray:
    """OKS between poses ``a`` and ``b`` (``(..., K, 2+)``, broadcast against each other; only x, y
    are used) with the scale from ``area`` (broadcast to the pose dimensions, see :func:`oks_scale`).
    ``visible`` (``(..., K)`` bool) restricts the mean; ``None`` averages every keypoint."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = ((a[..., :2] - b[..., :2]) ** 2).sum(-1)
    var = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    if d2.shape[-1] != len(var):
        raise ValueError(f"{d2.shape[-1]} keypoints but {len(var)} sigmas")
    terms = keypoint_similarity(d2, var, oks_scale(area, area_floor, eps)[..., None])
    return mean_over_visible(terms, visible)
