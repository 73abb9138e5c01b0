"""Where outputs go: checked before any work, never colliding, never lost.

* :func:`check_output_file` / :func:`check_output_dir` run before inference starts, so a bad
  ``--out`` (a path under a regular file, an unwritable folder) is a one-line error, not a traceback
  after an hour of work.
* :func:`output_stems` gives every input its own output name: file stems when they are unique, the
  relative folder structure (``a/clip``, ``b/clip``) where two inputs share a name.
* :class:`Journal` appends one JSON line per finished item (flushed and synced), so a killed run
  keeps what it finished and a rerun skips it; the final file is assembled atomically at the end.

Exit codes of the commands (:data:`EXIT_OK`...): 0 all done, 1 failed (nothing processed, or an
output could not be written), 2 usage or input error before any work, 3 done but some inputs skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pyramidpose.errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_parent_chain(path: Path, flag: str) -> None:
    base = _first_existing(path.parent if path.parent != path else path)
    if not base.is_dir():
        raise ConfigError(f"{flag} {path}: {base} is a file, not a folder; choose another location")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: folder {base} is not writable; choose another location")


def check_output_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """``path`` can be written as a file: not a folder, and its folder exists or can be created."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {p} is a folder; give a file name (e.g. {p / 'results.json'})")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{flag} {p} exists and is not writable")
    _check_parent_chain(p, flag)
    return p


def check_output_dir(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """``path`` is (or can be created as) a writable folder."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise ConfigError(f"{flag} {p} is a file, not a folder; choose another location")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {p}: folder is not writable; choose another location")
        return p
    _check_parent_chain(p / "x", flag)
    return p


def output_stems(paths: Sequence[Path | str]) -> tuple[dict[Path | str, str], list[str]]:
    """A distinct output stem per input and notes about the renamed ones.

    Inputs whose file stem is unique keep it (``clip``); inputs sharing a stem keep their folder
    path relative to the inputs' common folder (``a/clip``, ``b/clip``; a numeric suffix when even
    that collides), so two ``clip.mp4`` from two folders give two outputs. Non-path sources (camera
    indices, URLs) are given as strings already reduced to a stem.
    """
    from pyramidpose.data.video import source_name

    stems = {p: source_name(p) for p in paths}
    count: dict[str, int] = {}
    for s in stems.values():
        count[s] = count.get(s, 0) + 1
    clashing = [p for p in paths if count[stems[p]] > 1 and isinstance(p, Path)]
    notes: list[str] = []
    if clashing:
        resolved = [Path(os.path.abspath(p)) for p in clashing]
        common = Path(os.path.commonpath([str(r.parent) for r in resolved]))
        for p, r in zip(clashing, resolved):
            rel = r.parent.relative_to(common) / r.stem
            stems[p] = rel.as_posix()
    taken: set[str] = set()
    out: dict[Path | str, str] = {}
    for p in paths:
        s, k = stems[p], 2
        while s in taken:
            s, k = f"{stems[p]}_{k}", k + 1
        taken.add(s)
        out[p] = s
        if s != source_name(p):
            notes.append(f"{p} -> {s} (another input has the same name)")
    return out, notes


class Journal:
    """A JSON-lines journal of finished items next to a final output (``.<name>.journal.jsonl``).

    The first line is a header (``meta``: what produced the items, e.g. model and options); a rerun
    with the same header resumes (finished keys are in :attr:`done`), a different header starts
    over. Every :meth:`add` is flushed and fsynced, so a killed process keeps what it finished (a
    torn last line is ignored on reading).
    """

    def __init__(self, final_path: str | os.PathLike[str], meta: dict[str, Any], resume: bool = True) -> None:
        self.final_path = Path(final_path)
        self.path = self.final_path.with_name(f".{self.final_path.name}.journal.jsonl")
        self.meta = json.loads(json.dumps(meta, default=str))
        self.done: dict[str, Any] = {}
        fresh = True
        if resume and self.path.is_file():
            fresh = not self._read()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w" if fresh else "a", encoding="utf-8")
        if fresh:
            self.done = {}
            self._write({"journal": 1, "meta": self.meta})

    def _read(self) -> bool:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return False
        try:
            header = json.loads(lines[0]) if lines else None
        except ValueError:
            return False
        if not isinstance(header, dict) or header.get("meta") != self.meta:
            return False
        for line in lines[1:]:
            try:
                rec = json.loads(line)
            except ValueError:
                break  # torn last line of a killed writer
            if isinstance(rec, dict) and "key" in rec:
                self.done[str(rec["key"])] = rec.get("value")
        return True

    def _write(self, rec: dict[str, Any]) -> None:
        self._f.write(json.dumps(rec, allow_nan=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def add(self, key: str, value: Any) -> None:
        """Record item ``key`` as finished with its ``value`` (JSON-serialisable)."""
        self._write({"key": key, "value": value})
        self.done[key] = value

    def values(self, keys: Iterable[str]) -> list[Any]:
        """The recorded values of ``keys`` that are done, in the order given."""
        return [self.done[k] for k in keys if k in self.done]

    def close(self, remove: bool = False) -> None:
        """Close the file; with ``remove`` delete it (the final output was written)."""
        if not self._f.closed:
            self._f.close()
        if remove:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
