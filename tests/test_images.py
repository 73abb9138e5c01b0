"""Robust image reading: modes converted to 8-bit RGB, EXIF orientation, corrupt files -> DataError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyramidpose.data.images import list_images, read_image
from pyramidpose.errors import DataError


def _gradient(h: int = 20, w: int = 30) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)


def test_modes_become_uint8_rgb(tmp_path: Path) -> None:
    g = _gradient()
    cases = {
        "gray.png": Image.fromarray(g, "L"),
        "bilevel.png": Image.fromarray(g > 128).convert("1"),
        "rgba.png": Image.fromarray(np.dstack([g, g, g, np.full_like(g, 7)]), "RGBA"),
        "la.png": Image.fromarray(np.dstack([g, np.full_like(g, 9)]), "LA"),
        "palette.png": Image.fromarray(np.dstack([g, g, g]), "RGB").quantize(16),
        "cmyk.jpg": Image.fromarray(np.dstack([g, g, g]), "RGB").convert("CMYK"),
    }
    pal = Image.fromarray(np.dstack([g, g, g]), "RGB").quantize(16)
    pal.info["transparency"] = 0
    cases["palette_transparent.png"] = pal
    for name, im in cases.items():
        im.save(tmp_path / name)
        arr = read_image(tmp_path / name)
        assert arr.shape == (20, 30, 3) and arr.dtype == np.uint8, name
    gray = read_image(tmp_path / "gray.png")
    np.testing.assert_array_equal(gray[..., 0], g)
    np.testing.assert_array_equal(gray[..., 2], g)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png")[..., 1], g)  # alpha dropped


def test_16_bit_and_32_bit_scaled_to_8_bit(tmp_path: Path) -> None:
    v16 = (np.linspace(0, 65535, 20 * 30).reshape(20, 30)).astype(np.uint16)
    Image.fromarray(v16).save(tmp_path / "deep.png")
    arr = read_image(tmp_path / "deep.png")
    assert arr.dtype == np.uint8 and arr.shape == (20, 30, 3)
    assert arr[0, 0, 0] == 0 and arr[-1, -1, 0] == 255
    np.testing.assert_allclose(arr[..., 0], v16 / 257.0, atol=1)
    v32 = (np.linspace(0, 65535, 20 * 30).reshape(20, 30)).astype(np.int32)
    Image.fromarray(v32, "I").save(tmp_path / "deep32.tif")
    np.testing.assert_allclose(read_image(tmp_path / "deep32.tif")[..., 1], v32 / 257.0, atol=1)
    f = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    Image.fromarray(f, "F").save(tmp_path / "float.tif")
    np.testing.assert_allclose(read_image(tmp_path / "float.tif")[..., 0], f * 255, atol=1)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = 255  # left half white
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    arr = read_image(tmp_path / "rot.jpg")
    assert arr.shape == (40, 20, 3)
    # after the clockwise turn the white (left) half is on top
    assert arr[:20].mean() > 200 and arr[20:].mean() < 50


def test_corrupt_files_raise_data_error_naming_the_file(tmp_path: Path) -> None:
    Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(tmp_path / "good.jpg")
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image" * 10)
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("truncated.jpg", "garbage.jpg", "empty.png", "missing.png"):
        with pytest.raises(DataError, match=name):
            read_image(tmp_path / name)
    assert read_image(tmp_path / "good.jpg").shape == (64, 64, 3)


def test_list_images(tmp_path: Path) -> None:
    for n in ("b.JPG", "a.png", "notes.txt"):
        (tmp_path / n).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG"]
    with pytest.raises(DataError):
        list_images(tmp_path / "nope")
