"""Atomic writes: complete or absent, never half written, with ordinary permissions."""

from __future__ import annotations

import json
import os
import stat

import pytest

from pyramidpose.utils.io import atomic_path, write_json_atomic


def test_json_written_and_readable_by_others(tmp_path):
    out = tmp_path / "sub" / "stats.json"
    write_json_atomic(out, {"AP": 0.5})
    assert json.loads(out.read_text()) == {"AP": 0.5}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in out.parent.iterdir()] == ["stats.json"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
