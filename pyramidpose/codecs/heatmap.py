"""Gaussian heatmap codecs: MSRA, UDP, DARK and DARK-UDP (batched numpy), and :class:`HeatmapCodec`.

:class:`HeatmapCodec` is the one object the dataset (targets) and the top-down predictor (decoding)
share: model input size, heatmap size (both ``(H, W)``, the convention of
:mod:`pyramidpose.geometry.crops`), Gaussian sigma, crop geometry (UDP or MSRA) and the arg-max
refinement. Encoding turns keypoints given in **model-input (crop) pixels** into target heatmaps;
decoding turns predicted heatmaps into **heatmap-space** coordinates and maxima;
:meth:`HeatmapCodec.to_image` maps those back to image pixels through the crop centre and pixel scale.

Two geometries (see :mod:`pyramidpose.geometry.crops`):

* MSRA (``udp=False``): input -> heatmap divides by the stride ``input / heatmap`` (e.g. 4);
* UDP (``udp=True``): input -> heatmap multiplies by ``(heatmap - 1) / (input - 1)`` (pixel
  intervals, not pixel counts), which removes the half-pixel bias of flipping and resizing.

Refinements of the arg-max, and the decode-method names the command line uses (``DECODE_METHODS``):

=============  =================================================================  ========  ==========
name           refinement of the arg-max                                          geometry  refinement
=============  =================================================================  ========  ==========
``msra``       quarter-pixel shift towards the higher neighbour (HRNet)           MSRA      ``quarter``
``dark``       DARK: Taylor step on the log of the Gaussian-blurred heatmap       MSRA      ``dark``
``udp``        quarter-pixel shift                                                UDP       ``quarter``
``dark_udp``   DARK-UDP: blur, clip to [1e-3, 50], log, Newton step (ViTPose)     UDP       ``dark``
=============  =================================================================  ========  ==========
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pyramidpose.geometry.crops import crop_to_image, image_to_crop, warp_crop

#: Decode-method name -> (UDP geometry, refinement).
DECODE_METHODS: dict[str, tuple[bool, str]] = {
    "msra": (False, "quarter"), "dark": (False, "dark"), "udp": (True, "quarter"), "dark_udp": (True, "dark"),
}  # fmt: skip
REFINEMENTS = ("dark", "quarter")


def is_udp(method: str) -> bool:
    """Whether decoding ``method`` uses the UDP geometry (and so needs UDP crops)."""
    try:
        return DECODE_METHODS[method][0]
    except KeyError:
        raise ValueError(f"unknown decode method '{method}'; choose from {', '.join(DECODE_METHODS)}") from None


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def _xy(size: tuple[int, int]) -> np.ndarray:
    """An ``(H, W)`` size as the float ``(W, H)`` vector that multiplies ``(x, y)`` points."""
    return np.asarray(size[::-1], np.float64)


def _as_batch(keypoints: np.ndarray, visible: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, bool]:
    kp = np.asarray(keypoints, dtype=np.float64)
    single = kp.ndim == 2
    if single:
        kp = kp[None]
    vis = np.ones(kp.shape[:2]) if visible is None else np.asarray(visible, dtype=np.float64).reshape(kp.shape[:2])
    return kp[..., :2], vis, single


def _gaussian_targets(
    mu: np.ndarray, vis: np.ndarray, heatmap_size: tuple[int, int], sigma: float, window_center: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Separable Gaussians centred at ``mu (N, K, 2)`` (heatmap pixels).

    With ``window_center`` (integer, ``(N, K, 2)``) the Gaussian is cut to the ``6 sigma + 1`` square
    window around it (the classic encoders); without, it covers the whole heatmap. The weight is 0 for
    invisible keypoints and for windows entirely outside the heatmap.
    """
    h, w = heatmap_size
    radius = int(np.ceil(3 * sigma)) if window_center is None else int(3 * sigma)
    anchor = np.floor(mu + 0.5) if window_center is None else window_center
    ul = anchor - radius
    br = anchor + radius + 1
    inside = (ul[..., 0] < w) & (ul[..., 1] < h) & (br[..., 0] > 0) & (br[..., 1] > 0)
    weights = ((vis > 0) & inside).astype(np.float32)
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    gx = np.exp(-((xs - mu[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, K, W)
    gy = np.exp(-((ys - mu[..., 1:2]) ** 2) / (2 * sigma**2))  # (N, K, H)
    if window_center is not None:
        gx = gx * (np.abs(xs - window_center[..., 0:1]) <= radius)
        gy = gy * (np.abs(ys - window_center[..., 1:2]) <= radius)
    heatmaps = gy[..., :, None] * gx[..., None, :] * weights[..., None, None]
    return heatmaps.astype(np.float32), weights


def encode_msra(
    keypoints: np.ndarray,
    visible: np.ndarray | None,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float = 2.0,
    *,
    unbiased: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """MSRA Gaussian targets (HRNet/SimpleBaseline).

    Args:
        keypoints: ``(K, 2)`` or ``(N, K, 2)`` keypoints in input-crop pixels.
        visible: ``(K,)``/``(N, K)`` visibility (> 0 = labelled), or ``None`` for all visible.
        input_size, heatmap_size: ``(H, W)`` of the model input and of the heatmaps.
        sigma: Gaussian standard deviation in heatmap pixels (2 for 64x48 heatmaps).
        unbiased: ``False`` centres the Gaussian on the nearest heatmap pixel, cut to a
            ``6 sigma + 1`` window (the original encoder); ``True`` centres it at the exact sub-pixel
            position over the whole heatmap (DARK's unbiased encoding).

    Returns:
        ``heatmaps (K, H, W)`` / ``(N, K, H, W)`` float32 and ``weights (K,)`` / ``(N, K)``: 0 for
        invisible keypoints and those whose Gaussian falls outside the heatmap.
    """
    kp, vis, single = _as_batch(keypoints, visible)
    stride = _xy(input_size) / _xy(heatmap_size)
    mu = kp / stride
    if unbiased:
        hm, wt = _gaussian_targets(mu, vis, heatmap_size, sigma, None)
    else:
        centre = np.floor(mu + 0.5)
        hm, wt = _gaussian_targets(centre, vis, heatmap_size, sigma, centre)
    return (hm[0], wt[0]) if single else (hm, wt)


def encode_udp(
    keypoints: np.ndarray,
    visible: np.ndarray | None,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """UDP Gaussian targets, as ViTPose trains with (``target_type='GaussianHeatmap'``, UDP encoding).

    Keypoints are mapped with the UDP scale ``(heatmap - 1) / (input - 1)``; the Gaussian is centred
    at the exact sub-pixel position and cut to the ``6 sigma + 1`` window around the nearest heatmap
    pixel. Arguments and returns as :func:`encode_msra`.
    """
    kp, vis, single = _as_batch(keypoints, visible)
    scale = (_xy(heatmap_size) - 1) / (_xy(input_size) - 1)
    mu = kp * scale
    hm, wt = _gaussian_targets(mu, vis, heatmap_size, sigma, np.floor(mu + 0.5))
    return (hm[0], wt[0]) if single else (hm, wt)


def encode_udp_combined(
    keypoints: np.ndarray,
    visible: np.ndarray | None,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    radius_factor: float = 0.0546875,
) -> tuple[np.ndarray, np.ndarray]:
    """UDP's combined classification + offset target (Huang et al. 2020, "CombinedTarget").

    Per keypoint three maps: a binary disc of radius ``r = radius_factor * max(W, H)`` around the
    keypoint, and the x / y offsets ``(mu - p) / r`` from every pixel ``p`` to the keypoint. Returns
    ``targets (K, 3, H, W)`` / ``(N, K, 3, H, W)`` and weights (0 for invisible keypoints, whose maps are 0).
    ViTPose itself trains with the Gaussian :func:`encode_udp`; this is the UDP paper's alternative.
    """
    kp, vis, single = _as_batch(keypoints, visible)
    h, w = heatmap_size
    scale = (_xy(heatmap_size) - 1) / (_xy(input_size) - 1)
    mu = kp * scale
    radius = radius_factor * max(w, h)
    ox = (mu[..., 0, None, None] - np.arange(w)[None, :]) / radius  # (N, K, 1, W)
    oy = (mu[..., 1, None, None] - np.arange(h)[:, None]) / radius  # (N, K, H, 1)
    ox, oy = np.broadcast_arrays(ox, oy)
    cls = (ox**2 + oy**2 <= 1).astype(np.float64)
    weights = (vis > 0).astype(np.float32)
    out = np.stack([cls, ox, oy], axis=2) * weights[..., None, None, None]
    out = out.astype(np.float32)
    return (out[0], weights[0]) if single else (out, weights)


def decode_udp_combined(
    targets: np.ndarray, blur_kernel: int = 11, radius_factor: float = 0.0546875
) -> tuple[np.ndarray, np.ndarray]:
    """Decode combined targets ``(..., K, 3, H, W)``: arg-max of the blurred classification map plus the
    predicted offset at that pixel. A network's ``3K`` channels (classification, x, y per keypoint, as
    in MMPose) reshape to this with ``.reshape(..., K, 3, H, W)``. Returns heatmap coordinates (UDP
    geometry) and the classification maxima."""
    t = np.asarray(targets, dtype=np.float32)
    if t.ndim < 4 or t.shape[-3] != 3:
        raise ValueError(f"combined targets must have shape (..., K, 3, H, W), got {t.shape}")
    h, w = t.shape[-2:]
    ks = 2 * blur_kernel + 1
    cls = t[..., 0, :, :]
    flat = np.ascontiguousarray(cls.reshape(-1, h, w))
    blurred = np.stack([cv2.GaussianBlur(m, (ks, ks), 0) for m in flat]).reshape(cls.shape)
    coords, maxvals = get_heatmap_maximum(blurred)
    x, y = coords[..., 0].astype(np.int64), coords[..., 1].astype(np.int64)
    radius = radius_factor * max(w, h)
    coords = coords + radius * np.stack([_gather(t[..., 1, :, :], x, y), _gather(t[..., 2, :, :], x, y)], -1)
    return coords.astype(np.float32), maxvals


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def get_heatmap_maximum(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arg-max location ``(..., K, 2)`` (x, y; float) and maximum ``(..., K)`` of each heatmap."""
    hm = np.asarray(heatmaps)
    *lead, h, w = hm.shape
    flat = hm.reshape(*lead, h * w)
    idx = flat.argmax(axis=-1)
    vals = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    return coords, vals.astype(np.float32)


def _gather(hm: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``hm[..., y, x]`` for integer index arrays shaped like ``hm.shape[:-2]``."""
    *lead, h, w = hm.shape
    flat = hm.reshape(*lead, h * w)
    return np.take_along_axis(flat, (y * w + x)[..., None], axis=-1)[..., 0]


def refine_quarter(coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Shift arg-max coordinates by a quarter pixel towards the higher neighbour (per axis)."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    h, w = hm.shape[-2:]
    out = np.array(coords, dtype=np.float32, copy=True)
    px = out[..., 0].astype(np.int64)
    py = out[..., 1].astype(np.int64)
    okx = (px > 0) & (px < w - 1)
    oky = (py > 0) & (py < h - 1)
    cx, cy = np.clip(px, 1, w - 2), np.clip(py, 1, h - 2)
    dx = _gather(hm, cx + 1, py) - _gather(hm, cx - 1, py)
    dy = _gather(hm, px, cy + 1) - _gather(hm, px, cy - 1)
    out[..., 0] += np.where(okx, np.sign(dx) * 0.25, 0.0)
    out[..., 1] += np.where(oky, np.sign(dy) * 0.25, 0.0)
    return out


def gaussian_blur(heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """Gaussian blur of each heatmap (zero padding), rescaled to keep each heatmap's maximum.

    The kernel is OpenCV's default Gaussian for ``kernel`` taps (sigma 2 for 11), as in DARK. All
    heatmaps are stacked into one tall image, separated by zero rows, and filtered in one OpenCV call.
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    *lead, h, w = hm.shape
    r = (kernel - 1) // 2
    flat = hm.reshape(-1, h, w)
    n = flat.shape[0]
    if n == 0:
        return hm.copy()
    tall = np.zeros((n, h + r, w), np.float32)
    tall[:, r:] = flat  # r zero rows above each heatmap (and the image border below the last)
    k = cv2.getGaussianKernel(kernel, 0).astype(np.float32)
    out = cv2.sepFilter2D(tall.reshape(n * (h + r), w), -1, k, k, borderType=cv2.BORDER_CONSTANT)
    out = out.reshape(n, h + r, w)[:, r:].reshape(hm.shape)
    orig_max = hm.max(axis=(-2, -1), keepdims=True)
    new_max = out.max(axis=(-2, -1), keepdims=True)
    ratio = np.divide(orig_max, new_max, out=np.ones_like(new_max), where=new_max > 0)
    return out * ratio


#: Largest Newton step (heatmap pixels) the DARK refinements accept; a longer one falls back.
MAX_DARK_STEP = 1.0


def _guard_newton_step(coords: np.ndarray, heatmaps: np.ndarray, step: np.ndarray, dxx: np.ndarray,
                       det: np.ndarray, reference: bool) -> np.ndarray:
    """``coords + step`` where the step is trustworthy, else the quarter-pixel offset.

    On a degenerate heatmap (flat, a saddle, a ridge) the log-Hessian is not negative definite and
    the Newton step can throw a keypoint thousands of pixels out of its crop; the reference
    implementations (DARK, MMPose's DARK-UDP) apply it anyway (``reference=True`` keeps that). A
    2x2 Hessian is negative definite when ``dxx < 0`` and ``det > 0``.
    """
    out = coords.astype(np.float64) + step
    if reference:
        return out.astype(np.float32)
    good = (dxx < 0) & (det > 0) & (np.hypot(step[..., 0], step[..., 1]) <= MAX_DARK_STEP)
    good &= np.isfinite(step).all(axis=-1)
    if good.all():
        return out.astype(np.float32)
    fallback = refine_quarter(coords, heatmaps)
    return np.where(good[..., None], out, fallback).astype(np.float32)


def refine_dark(coords: np.ndarray, heatmaps: np.ndarray, kernel: int = 11, *, reference: bool = False) -> np.ndarray:
    """DARK (Zhang et al. 2020): one Newton step on the log of the blurred heatmap.

    Derivatives by central differences at the integer arg-max (second derivatives with a 2-pixel
    step); keypoints closer than 2 pixels to the border or with a singular Hessian are unchanged.
    Where the Hessian is not negative definite or the step exceeds :data:`MAX_DARK_STEP`, the
    quarter-pixel offset is used instead (``reference=True``: the step as published).
    """
    hm = gaussian_blur(heatmaps, kernel)
    h, w = hm.shape[-2:]
    out = np.array(coords, dtype=np.float64, copy=True)
    px = out[..., 0].astype(np.int64)
    py = out[..., 1].astype(np.int64)
    ok = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    x, y = np.clip(px, 2, w - 3), np.clip(py, 2, h - 3)

    def f(ox: int, oy: int) -> np.ndarray:  # log of the modulated heatmap, only where needed
        return np.log(np.maximum(_gather(hm, x + ox, y + oy), 1e-10).astype(np.float64))

    f0 = f(0, 0)
    dx = 0.5 * (f(1, 0) - f(-1, 0))
    dy = 0.5 * (f(0, 1) - f(0, -1))
    dxx = 0.25 * (f(2, 0) - 2 * f0 + f(-2, 0))
    dyy = 0.25 * (f(0, 2) - 2 * f0 + f(0, -2))
    dxy = 0.25 * (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1))
    det = dxx * dyy - dxy**2
    ok &= det != 0
    safe = np.where(ok, det, 1.0)
    # offset = -H^-1 g with H^-1 = [[dyy, -dxy], [-dxy, dxx]] / det
    ox = -(dyy * dx - dxy * dy) / safe
    oy = -(-dxy * dx + dxx * dy) / safe
    step = np.stack([np.where(ok, ox, 0.0), np.where(ok, oy, 0.0)], axis=-1)
    # a keypoint the published method leaves unchanged (border, singular) is trusted as it is
    return _guard_newton_step(out, heatmaps, step, np.where(ok, dxx, -1.0), np.where(ok, det, 1.0), reference)


def refine_dark_udp(coords: np.ndarray, heatmaps: np.ndarray, kernel: int = 11, *,
                    reference: bool = False) -> np.ndarray:
    """DARK-UDP (ViTPose's decoder): blur, clip to ``[1e-3, 50]``, log, one Newton step.

    Unlike :func:`refine_dark`, derivatives use 1-pixel steps (the cross term from seven
    neighbours) on the edge-padded log heatmap, so keypoints on the border are refined too; the
    Hessian gets ``eps * I`` added before inversion. Where it is not negative definite or the step
    exceeds :data:`MAX_DARK_STEP`, the quarter-pixel offset is used instead (``reference=True``: the
    step as MMPose/ViTPose apply it).
    """
    hm = gaussian_blur(heatmaps, kernel)
    h, w = hm.shape[-2:]
    out = np.array(coords, dtype=np.float64, copy=True)
    x = out[..., 0].astype(np.int64)
    y = out[..., 1].astype(np.int64)

    def f(ox: int, oy: int) -> np.ndarray:  # edge padding = clamped indices; log only where needed
        v = _gather(hm, np.clip(x + ox, 0, w - 1), np.clip(y + oy, 0, h - 1))
        return np.log(np.clip(v, 1e-3, 50.0).astype(np.float64))

    f0 = f(0, 0)
    fx1, fx_1, fy1, fy_1 = f(1, 0), f(-1, 0), f(0, 1), f(0, -1)
    dx = 0.5 * (fx1 - fx_1)
    dy = 0.5 * (fy1 - fy_1)
    dxx = fx1 - 2 * f0 + fx_1
    dyy = fy1 - 2 * f0 + fy_1
    dxy = 0.5 * (f(1, 1) - fx1 - fy1 + 2 * f0 - fx_1 - fy_1 + f(-1, -1))
    eps = float(np.finfo(np.float32).eps)
    a, d = dxx + eps, dyy + eps
    det = a * d - dxy**2
    det = np.where(det == 0, eps, det)
    step = np.stack([-(d * dx - dxy * dy) / det, -(-dxy * dx + a * dy) / det], axis=-1)
    return _guard_newton_step(out, heatmaps, step, a, det, reference)


# ---------------------------------------------------------------------------------------------
# Flip test
# ---------------------------------------------------------------------------------------------


def flip_heatmaps_back(heatmaps: Any, flip_index: np.ndarray | Sequence[int], *, shift: bool = False) -> Any:
    """Un-flip heatmaps predicted on horizontally flipped crops (numpy array or torch tensor).

    Mirrors the width axis and swaps left/right channels with ``flip_index``. ``shift=True`` moves
    the result one pixel right, MMPose's correction for the MSRA geometry (where flipping the crop is
    not exactly flipping about the box centre); UDP needs no shift.
    """
    perm = np.asarray(flip_index, dtype=np.int64)
    if isinstance(heatmaps, np.ndarray):
        out = heatmaps[..., perm, :, ::-1].copy()
    else:  # torch tensor
        import torch

        out = heatmaps.flip(-1)[..., torch.as_tensor(perm, device=heatmaps.device), :, :]
    if shift:
        out[..., 1:] = out[..., :-1].clone() if not isinstance(out, np.ndarray) else out[..., :-1].copy()
    return out


# ---------------------------------------------------------------------------------------------
# The codec object
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeatmapCodec:
    """Keypoints <-> Gaussian heatmaps for one model: the settings the dataset and predictor share.

    Attributes:
        input_size: model input ``(H, W)`` in pixels.
        heatmap_size: heatmap ``(H, W)``; default a quarter of ``input_size`` (ViTPose).
        sigma: Gaussian standard deviation of the targets, in heatmap pixels.
        udp: UDP geometry (ViTPose) or MSRA; sets the crop matrix, the target encoding, the
            heatmap -> image mapping and whether flipped heatmaps are shifted by one pixel.
        refinement: ``"dark"`` (DARK, or DARK-UDP under UDP) or ``"quarter"`` (quarter-pixel shift).
        blur_kernel: DARK blur kernel size (11 for 64x48 heatmaps).
        reference_refine: apply the DARK Newton step even where it is untrustworthy (a Hessian that
            is not negative definite, a step over :data:`MAX_DARK_STEP`), as the reference
            implementations do; for equivalence tests. Default: fall back to the quarter offset.
    """

    input_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] | None = None
    sigma: float = 2.0
    udp: bool = True
    refinement: str = "dark"
    blur_kernel: int = 11
    reference_refine: bool = False

    def __post_init__(self) -> None:
        if self.heatmap_size is None:
            object.__setattr__(self, "heatmap_size", (int(self.input_size[0]) // 4, int(self.input_size[1]) // 4))
        for name in ("input_size", "heatmap_size"):
            v = tuple(int(x) for x in getattr(self, name))
            if len(v) != 2 or min(v) < 2:
                raise ValueError(f"HeatmapCodec.{name} must be (H, W) with both >= 2, got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)
        if self.refinement not in REFINEMENTS:
            raise ValueError(f"unknown refinement {self.refinement!r}; choose from {', '.join(REFINEMENTS)}")
        if not self.sigma > 0:
            raise ValueError(f"HeatmapCodec.sigma must be > 0, got {self.sigma}")

    @classmethod
    def from_config(cls, model_config: Any, *, sigma: float | None = None, method: str | None = None) -> HeatmapCodec:
        """The codec of a model config (``input_size (H, W)``, ``codec`` ``udp``/``msra``; heatmaps a
        quarter of the input). ``sigma`` overrides the config's (default 2); ``method`` (a
        :data:`DECODE_METHODS` name) overrides geometry and refinement, e.g. from ``--decode``."""
        h, w = (int(v) for v in model_config.input_size)
        name = getattr(model_config, "codec", "udp")
        if name not in ("udp", "msra"):
            raise ValueError(f"unknown codec {name!r} in the model config; expected 'udp' or 'msra'")
        s = sigma if sigma is not None else float(getattr(model_config, "sigma", 2.0))
        codec = cls(input_size=(h, w), sigma=s, udp=name == "udp")
        return codec.with_method(method) if method is not None else codec

    def with_method(self, method: str) -> HeatmapCodec:
        """This codec with the geometry and refinement of a decode-method name (``dark_udp``...)."""
        if method not in DECODE_METHODS:
            raise ValueError(f"unknown decode method '{method}'; choose from {', '.join(DECODE_METHODS)}")
        udp, refinement = DECODE_METHODS[method]
        return dataclasses.replace(self, udp=udp, refinement=refinement)

    @property
    def method(self) -> str:
        """The decode-method name of this codec (``dark_udp``, ``udp``, ``dark`` or ``msra``)."""
        return next(k for k, v in DECODE_METHODS.items() if v == (self.udp, self.refinement))

    # -- crops ---------------------------------------------------------------------------------
    def crop(self, image: np.ndarray, center: Sequence[float], scale: Sequence[float], rot: float = 0.0) -> np.ndarray:
        """The model-input crop ``(H, W, C)`` of ``image`` (zero outside) in this codec's geometry."""
        return warp_crop(image, center, scale, self.input_size, rot, udp=self.udp)

    def image_to_input(
        self, points: np.ndarray, center: Sequence[float], scale: Sequence[float], rot: float = 0.0
    ) -> np.ndarray:
        """Image pixels ``(..., 2)`` -> model-input pixels of the crop (``center``, ``scale``, ``rot``)."""
        return image_to_crop(points, center, scale, self.input_size, rot, udp=self.udp)

    # -- targets -------------------------------------------------------------------------------
    def encode(self, keypoints: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Target heatmaps ``(..., K, h, w)`` and weights ``(..., K)`` of keypoints in input pixels.

        UDP: Gaussians at the exact UDP position cut to a ``6 sigma + 1`` window (ViTPose); MSRA:
        Gaussians on the nearest heatmap pixel (HRNet). Weights are 0 for invisible keypoints and
        those whose Gaussian falls outside the heatmap.
        """
        if self.udp:
            return encode_udp(keypoints, visible, self.input_size, self.heatmap_size, self.sigma)
        return encode_msra(keypoints, visible, self.input_size, self.heatmap_size, self.sigma)

    # -- predictions ---------------------------------------------------------------------------
    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps ``(..., K, h, w)`` -> ``coords (..., K, 2)`` in heatmap pixels and maxima ``(..., K)``."""
        hm = np.asarray(heatmaps, dtype=np.float32)
        coords, maxvals = get_heatmap_maximum(hm)
        if self.refinement == "quarter":
            coords = refine_quarter(coords, hm)
        elif self.udp:
            coords = refine_dark_udp(coords, hm, self.blur_kernel, reference=self.reference_refine)
        else:
            coords = refine_dark(coords, hm, self.blur_kernel, reference=self.reference_refine)
        return coords, maxvals

    def to_image(
        self, coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, heatmap_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Heatmap coordinates ``(N, K, 2)`` -> image pixels through crop ``centers``/pixel ``scales (N, 2)``.

        ``heatmap_size (H, W)`` defaults to the codec's; pass the heatmaps' own when a model's
        output differs.
        """
        return crop_to_image(coords, centers, scales, heatmap_size or self.heatmap_size, udp=self.udp)

    def flip_back(self, heatmaps: Any, flip_index: np.ndarray | Sequence[int]) -> Any:
        """Un-flip heatmaps of mirrored crops (numpy or torch); MSRA shifts them one pixel, UDP does not."""
        return flip_heatmaps_back(heatmaps, flip_index, shift=not self.udp)
