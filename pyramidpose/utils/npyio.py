"""Safe ``.npy`` / ``.npz`` reading: no code runs, nothing is allocated that the file cannot justify.

``np.load(allow_pickle=True)`` runs whatever an object array's pickle asks for, and a 1 KB ``.npy``
whose header declares ``900000000 x 17 x 3`` makes ``np.load`` allocate 171 GiB before it notices the
data is missing. Here the header is parsed first and the declared size checked against the bytes
the file really holds; object arrays are refused unless the caller allows them, and then rebuilt
with :class:`RestrictedUnpickler` (numpy arrays, scalars and plain containers only). ``.npz``
members must be stored or deflated (deflate expands at most ~1032x), so a zip bomb is bounded too.
Every problem is a :class:`DataError` naming the file (and member).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from pyramidpose.errors import DataError

__all__ = ["PICKLE_ERRORS", "BoundedUnpickler", "RestrictedUnpickler", "restricted_loads", "read_npy_header", "load_npy", "load_npz"]

# globals a pickle of numpy arrays / plain Python data needs (Python 2 pickles included)
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}  # fmt: skip
_MAX_DEFLATE_RATIO = 1100  # deflate's best case is ~1032:1
_MAX_HEADER = 10000  # numpy's own default limit on the header's length


def _module_alias(module: str) -> str:
    if module.startswith("numpy.core") and hasattr(np, "_core"):
        return module.replace("numpy.core", "numpy._core", 1)
    return {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)


class BoundedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """The pure-Python unpickler, allocating only what the stream holds.

    The C unpickler allocates the length a ``BINBYTES``/``BINUNICODE`` opcode declares (gigabytes
    from a 6-byte file) before reading; the Python one reads what is there, except for
    ``BYTEARRAY8``, which is read here in chunks."""

    def _load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        out = bytearray()
        while len(out) < n:
            chunk = self.read(min(n - len(out), 1 << 20))
            if not chunk:
                raise pickle.UnpicklingError("pickle data was truncated")
            out += chunk
        self.append(out)

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8


class RestrictedUnpickler(BoundedUnpickler):
    """Unpickler that rebuilds numpy arrays and plain containers only; any other global raises
    :class:`pickle.UnpicklingError`. ``max_bytes`` bounds each array it reconstructs (a pickle can
    ask ``_reconstruct`` for any shape)."""

    def __init__(self, file: IO[bytes], *, max_bytes: int, encoding: str = "latin1") -> None:
        super().__init__(file, encoding=encoding)
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        obj = super().find_class(_module_alias(module), name)
        if name == "_reconstruct":
            return self._checked_reconstruct(obj)
        return obj

    def _checked_reconstruct(self, fn: Any) -> Any:
        def reconstruct(cls: Any, shape: Any, dtype: Any) -> Any:
            if cls is not np.ndarray:
                raise pickle.UnpicklingError(f"refusing to rebuild {cls!r} (only numpy.ndarray)")
            dims = (shape,) if isinstance(shape, int) else tuple(shape)
            nbytes = math.prod(int(d) for d in dims) * np.dtype(dtype).itemsize
            if nbytes > self.max_bytes:
                raise pickle.UnpicklingError(f"an array of shape {dims} is larger than the file justifies")
            return fn(cls, shape, dtype)

        return reconstruct


def restricted_loads(data: bytes, *, encoding: str = "latin1") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (arrays bounded by ``len(data)``)."""
    return RestrictedUnpickler(io.BytesIO(data), max_bytes=max(len(data), 1 << 16), encoding=encoding).load()


PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, struct.error,
                 LookupError, ArithmeticError, RecursionError, UnicodeError, SystemError)  # fmt: skip


def _read_header(f: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy parses the header with ast/tokenize: any error type
        raise DataError(f"{where}: not a readable .npy array ({type(e).__name__}: {e}).") from None
    return tuple(int(d) for d in shape), bool(fortran), dtype


def _read_array(f: IO[bytes], size: int, where: str, allow_objects: bool) -> np.ndarray:
    shape, fortran, dtype = _read_header(f, where)
    remaining = size - f.tell()
    if dtype.hasobject:
        if not allow_objects:
            raise DataError(f"{where}: holds a pickled object array, which is not accepted here "
                            "(save a plain numeric array).")  # fmt: skip
        try:
            arr = RestrictedUnpickler(f, max_bytes=max(remaining, 1 << 16)).load()
        except PICKLE_ERRORS as e:
            raise DataError(f"{where}: cannot read its object array safely ({e}).") from None
        if not isinstance(arr, np.ndarray) or arr.shape != shape:
            raise DataError(f"{where}: the pickled data does not match the declared shape {shape}.")
        return arr
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if count and dtype.itemsize == 0:
        raise DataError(f"{where}: zero-size elements ({dtype}) are not accepted.")
    if nbytes > remaining:
        raise DataError(f"{where}: the header declares {dtype} {shape} ({nbytes} bytes) but only {remaining} "
                        "bytes follow; the file is truncated or lies about its shape.")  # fmt: skip
    buf = bytearray(nbytes)
    if f.readinto(buf) != nbytes:  # type: ignore[attr-defined]
        raise DataError(f"{where}: truncated array data.")
    arr = np.frombuffer(buf, dtype=dtype, count=count)
    return arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)


def read_npy_header(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` declared by a ``.npy`` file's header, without reading its data."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, _, dtype = _read_header(f, str(path))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}).") from None
    return shape, dtype


def load_npy(path: str | os.PathLike[str], *, allow_objects: bool = False) -> np.ndarray:
    """Read a ``.npy`` file safely (see the module doc); :class:`DataError` on anything wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _read_array(f, os.fstat(f.fileno()).st_size, str(path), allow_objects)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a .npy file.") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}).") from None


def load_npz(path: str | os.PathLike[str], keys: tuple[str, ...] | None = None, *,
             allow_objects: bool = False) -> dict[str, np.ndarray]:
    """Read the members ``keys`` (default: all) of an ``.npz`` file safely; a missing key, a member
    compressed other than by deflate, or one that expands beyond deflate's ratio is a DataError."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e}).") from None
    with zf:
        members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        wanted = list(members) if keys is None else list(keys)
        missing = [k for k in wanted if k not in members]
        if missing:
            raise DataError(f"{path}: missing entr{'y' if len(missing) == 1 else 'ies'} {missing}; "
                            f"found {sorted(members)}.")  # fmt: skip
        out = {}
        for k in wanted:
            info, where = members[k], f"{path}[{k}]"
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise DataError(f"{where}: compression method {info.compress_type} is not accepted "
                                "(np.savez/np.savez_compressed write stored or deflated members).")  # fmt: skip
            if info.file_size > max(info.compress_size, 1) * _MAX_DEFLATE_RATIO + 4096:
                raise DataError(f"{where}: declares {info.file_size} bytes from {info.compress_size} "
                                "compressed; more than deflate can produce.")  # fmt: skip
            try:
                with zf.open(info) as f:
                    out[k] = _read_array(f, info.file_size, where, allow_objects)
            except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError, ValueError) as e:
                raise DataError(f"{where}: cannot read ({e}).") from None
    return out
