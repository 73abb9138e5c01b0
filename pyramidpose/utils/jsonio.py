"""JSON in and out, in one place: never a bare ``NaN``/``Infinity`` written, never a traceback read.

Written JSON is strict (``allow_nan=False``). Policy for non-finite numbers:

- metrics, summaries, reports: written as ``null`` (``nonfinite="null"``, the default);
- configs and anything that must round-trip exactly: refused (``nonfinite="error"``, a ValueError
  naming the field);
- predicted instances (COCO results, JSON-lines frames, lifted tracks): the instance is dropped with
  a warning by its producer before writing (see ``PoseResult.finite``), so a results file holds
  only complete, finite predictions.

Reading untrusted JSON turns every failure (syntax, binary content, 100 000 nested ``[`` that
exhaust the recursion limit) into a :class:`DataError` naming the file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.errors import DataError

__all__ = ["dumps", "write_json", "sanitize", "loads", "read_json"]


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def sanitize(obj: Any, nonfinite: str = "null", where: str = "") -> Any:
    """``obj`` with numpy values made plain and non-finite floats replaced by None
    (``nonfinite="null"``) or refused with a ValueError naming the field (``"error"``)."""
    if isinstance(obj, (np.generic, np.ndarray, Path)):
        obj = _default(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        if nonfinite == "error":
            raise ValueError(f"{where or 'value'} is {obj}, which JSON cannot hold")
        return None
    if isinstance(obj, dict):
        return {k: sanitize(v, nonfinite, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v, nonfinite, f"{where}[{i}]") for i, v in enumerate(obj)]
    return obj


def dumps(obj: Any, *, indent: int | None = None, nonfinite: str = "null") -> str:
    """Strict JSON text of ``obj`` (numpy values allowed; non-finite numbers per ``nonfinite``)."""
    try:  # fast path: nothing non-finite
        return json.dumps(obj, indent=indent, allow_nan=False, default=_default)
    except ValueError:
        return json.dumps(sanitize(obj, nonfinite), indent=indent, allow_nan=False, default=_default)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = None, nonfinite: str = "null") -> None:
    """Write ``obj`` as strict JSON to ``path`` atomically."""
    from pyramidpose.utils.io import write_text_atomic

    write_text_atomic(path, dumps(obj, indent=indent, nonfinite=nonfinite))


def loads(text: str | bytes, where: str) -> Any:
    """Parse JSON text from ``where`` (a file name, ``file:line``); DataError on anything wrong."""
    try:
        return json.loads(text)
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply to read.") from None
    except UnicodeDecodeError:
        raise DataError(f"{where}: not a UTF-8 text file (binary content?).") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e}).") from None
    except (ValueError, TypeError, MemoryError) as e:  # huge integers, odd encodings
        raise DataError(f"{where}: cannot read the JSON ({e}).") from None


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read and parse the JSON file ``path``; DataError naming the file on any failure."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a {what}.") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what} ({e.strerror or e}).") from None
    return loads(data, str(path))
