"""Atomic file output: a file is either complete or absent, never half written.

Temporary files are named ``.pp-tmp-<pid>-<random><suffix>`` beside the target: short (any legal
target name up to 255 characters works), recognisable, and owned by a process id. They are removed
when the write fails, on SIGINT (KeyboardInterrupt) and on SIGTERM (a handler installed while the
default one is in place), and the first write of a process into a folder sweeps the leftovers of
writers that were killed outright (SIGKILL, power loss): files of that pattern whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic", "write_json_atomic", "TEMP_PREFIX"]

TEMP_PREFIX = ".pp-tmp-"
_TEMP_RE = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-[0-9a-f]+")
_live: set[Path] = set()  # temporaries of writes in progress in this process
_swept: set[Path] = set()  # folders already swept by this process
_lock = threading.Lock()
_handler_installed = False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists (owned by someone else) or cannot tell: leave it
    return True


def sweep_leftovers(folder: Path) -> list[Path]:
    """Remove this module's temporary files in ``folder`` whose writing process no longer exists."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _on_signal(signum: int, frame: Any) -> None:
    for tmp in list(_live):
        with contextlib.suppress(OSError):
            tmp.unlink()
    signal.signal(signum, signal.SIG_DFL)  # then die of the signal as if no handler had been there
    os.kill(os.getpid(), signum)


def _install_signal_handler() -> None:
    global _handler_installed
    if _handler_installed or threading.current_thread() is not threading.main_thread():
        return
    _handler_installed = True
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_signal)


def _temp_name(path: Path) -> str:
    suffix = path.suffix if len(path.suffix) <= 16 else ""  # writers pick the format by the suffix
    return f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{suffix}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Use for writers that want a file name (savefig, safetensors, video encoders). On an exception,
    SIGINT or SIGTERM the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _install_signal_handler()
    folder = path.parent.resolve()
    with _lock:
        first = folder not in _swept
        _swept.add(folder)
    if first:
        sweep_leftovers(folder)
    while True:
        tmp_path = path.parent / _temp_name(path)
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode: umask applies
            break
        except FileExistsError:
            continue
    os.close(fd)
    _live.add(tmp_path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    finally:
        _live.discard(tmp_path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync, then rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> None:
    """Write ``obj`` as JSON atomically, non-finite numbers as null (see :mod:`pyramidpose.utils.jsonio`)."""
    from pyramidpose.utils.jsonio import write_json

    write_json(path, obj, indent=indent)
