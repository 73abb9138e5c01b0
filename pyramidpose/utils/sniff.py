"""What a file really is, from its first bytes (not its name).

Used before any loader touches a file, so that ``--weights photo.jpg`` says "photo.jpg is a JPEG
image, not a checkpoint" instead of a pickle traceback, and a download that returned a web page is
recognised. Standard library only.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

#: kind -> human description
DESCRIPTIONS: dict[str, str] = {
    "jpeg": "a JPEG image",
    "png": "a PNG image",
    "gif": "a GIF image",
    "webp": "a WebP image",
    "bmp": "a BMP image",
    "tiff": "a TIFF image",
    "mp4": "an MP4/QuickTime video",
    "matroska": "a Matroska/WebM video",
    "avi": "an AVI video",
    "pdf": "a PDF document",
    "gzip": "a gzip archive",
    "tar": "a tar archive",
    "zip": "a zip archive",
    "torch-zip": "a PyTorch checkpoint",
    "pickle": "a pickle (legacy PyTorch checkpoint)",
    "safetensors": "a safetensors file",
    "onnx": "an ONNX model",
    "html": "an HTML page",
    "json": "a JSON file",
    "text": "a text file",
    "empty": "an empty file",
    "directory": "a directory",
    "unknown": "a file of unknown type",
}

#: The kinds a checkpoint loader may open.
CHECKPOINT_KINDS = frozenset({"torch-zip", "pickle", "safetensors", "onnx"})

_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"%PDF", "pdf"),
    (b"\x1f\x8b", "gzip"),
    (b"\x1a\x45\xdf\xa3", "matroska"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def _safetensors_header(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _onnx_header(head: bytes) -> bool:
    # ModelProto starts with field 1 (ir_version, varint: tag 0x08) and a small version number;
    # exporters may start with field 8 (opset_import, tag 0x42) or 2 (producer_name, tag 0x12).
    return len(head) >= 4 and head[0] == 0x08 and 1 <= head[1] <= 20 and head[2] in (0x12, 0x1A, 0x22, 0x3A, 0x42)


def file_kind(path: str | os.PathLike[str]) -> str:
    """A short tag for what ``path`` holds (a key of :data:`DESCRIPTIONS`)."""
    p = Path(path)
    if p.is_dir():
        return "directory"
    size = p.stat().st_size
    if size == 0:
        return "empty"
    with open(p, "rb") as f:
        head = f.read(512)
    for prefix, kind in _PREFIXES:
        if head.startswith(prefix):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:2] == b"BM" and len(head) >= 14 and struct.unpack("<I", head[2:6])[0] == size:
        return "bmp"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - a corrupt central directory raises many types (bad names too)
            return "zip"
        return "torch-zip" if any(n.endswith("data.pkl") for n in names) else "zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if _safetensors_header(head, size):
        return "safetensors"
    if _onnx_header(head):
        return "onnx"
    try:
        text = head.decode("utf-8").lstrip("\ufeff \t\r\n").lower()
    except UnicodeDecodeError:
        return "unknown"
    if text.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in text[:200]:
        return "html"
    if text.startswith(("{", "[")):
        return "json"
    return "text"


def describe_file(path: str | os.PathLike[str]) -> str:
    """Human description of what ``path`` holds, e.g. ``"a JPEG image"``."""
    return DESCRIPTIONS[file_kind(path)]


def require_checkpoint_file(path: str | os.PathLike[str], allowed: frozenset[str] = CHECKPOINT_KINDS) -> str:
    """Return the kind of the checkpoint file ``path``; raise a one-line
    :class:`~pyramidpose.errors.CheckpointError` when it is something else (an image, a web page...)."""
    from pyramidpose.errors import CheckpointError

    kind = file_kind(path)
    if kind not in allowed:
        wanted = ", ".join(sorted(DESCRIPTIONS[k] for k in allowed))
        raise CheckpointError(f"{Path(path).name} is {DESCRIPTIONS[kind]}, not a checkpoint ({path}; expected {wanted})")
    return kind
