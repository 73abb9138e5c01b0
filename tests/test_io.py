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


_WRITER = r"""
import sys, time
from pyramidpose.utils.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1000)
    print(tmp, flush=True)
    time.sleep(60)
"""


def _start_writer(target):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    tmp = proc.stdout.readline().strip()
    assert tmp and os.path.exists(tmp)
    return proc, tmp


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_removes_the_temporary_file(tmp_path, sig):
    import signal

    proc, tmp = _start_writer(tmp_path / "out.bin")
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_leftover_of_a_killed_writer_is_swept_next_time(tmp_path):
    import signal

    proc, tmp = _start_writer(tmp_path / "out.bin")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert os.path.exists(tmp)  # SIGKILL cannot be caught
    other = tmp_path / ".pp-tmp-1-abcd.json"  # pid 1 is alive: not ours to remove
    other.write_text("{}")
    write_json_atomic(tmp_path / "next.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, "next.json"])


@pytest.mark.parametrize("length", [236, 250, 255])
def test_long_file_names_work(tmp_path, length):
    name = "n" * (length - 5) + ".json"
    write_json_atomic(tmp_path / name, [1])
    assert json.loads((tmp_path / name).read_text()) == [1]
    assert [p.name for p in tmp_path.iterdir()] == [name]
