"""Robust image reading: any Pillow-readable file -> upright 8-bit RGB array, or a clear DataError.

* EXIF orientation is applied (phone photos come out upright).
* Grayscale, bilevel, palette (with or without transparency), RGBA/LA, CMYK, YCbCr and 16/32-bit
  integer or float images are converted to 8-bit RGB. Alpha is dropped (no compositing). 16-bit
  images are scaled by 255/65535; 32-bit integer and float images by their own range when it exceeds
  the 8-bit range.
* Unreadable, truncated or corrupt files raise :class:`~pyramidpose.errors.DataError` naming the
  file, so batch callers can skip and count them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pyramidpose.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")


def _to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    a = np.where(finite, a, 0.0)
    if mode.startswith("I;16"):
        a = a * (255.0 / 65535.0)
    else:
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if mode == "F" and lo >= 0 and hi <= 1.0:
            a = a * 255.0
        elif lo < 0 or hi > 255:
            if hi <= 65535 and lo >= 0:
                a = a * (255.0 / 65535.0)
            else:
                a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """A loaded Pillow image (any mode) -> ``(H, W, 3)`` uint8 RGB."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy()
    if mode in ("I", "F") or mode.startswith("I;16"):
        gray = _to_uint8(np.asarray(img), mode)
        if gray.ndim == 3:  # e.g. multi-channel 16-bit decoded by a plugin
            gray = gray[..., 0]
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA").convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read ``path`` as an upright ``(H, W, 3)`` uint8 RGB array.

    Raises:
        DataError: the file is missing, not an image, truncated or otherwise undecodable.
    """
    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.load()
                im = ImageOps.exif_transpose(im) or im
                arr = to_rgb_array(im)
    except FileNotFoundError:
        raise DataError(f"image not found: {p}") from None
    except UnidentifiedImageError:
        raise DataError(f"cannot read image {p}: not a recognised image format (corrupt or not an image)") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:  # fmt: skip
        raise DataError(f"cannot read image {p}: {e}") from None
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"cannot read image {p}: empty image of shape {arr.shape}")
    return arr


def list_images(directory: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files (by extension, case-insensitive) in ``directory``, sorted by name."""
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"image directory not found: {d}")
    files: Iterable[Path] = d.rglob("*") if recursive else d.iterdir()
    return sorted(f for f in files if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
