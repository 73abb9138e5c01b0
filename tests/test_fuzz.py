"""Fuzzing every reader of an untrusted file (issue 18; harness in tests/fuzz_readers.py).

Default run: a few generated inputs per reader, in this process. ``-m slow``: 1000 per reader, each
reader in its own process under an address-space limit of 1 GiB above its imports, so an input that
makes a reader allocate more fails as a MemoryError. The only exceptions allowed out of a reader are
the project's own (PyramidPoseError)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.fuzz_readers import READERS, REPO, fuzz

SLOW_EXAMPLES = 1000


@pytest.mark.parametrize("reader", list(READERS))
def test_reader_survives_generated_input(reader, one_thread):
    counts = fuzz(reader, examples=15, seed=0)
    assert counts["examples"] == 15 and counts["accepted"] + counts["refused"] == 15


def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "tests.fuzz_readers", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_address_space_limit_stops_a_large_allocation():
    proc = _run("limit-canary")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["limited"] is True


@pytest.mark.slow
@pytest.mark.parametrize("reader", list(READERS))
def test_reader_fuzzed_under_memory_limit(reader):
    proc = _run(reader, str(SLOW_EXAMPLES), "0")
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n{json.dumps(counts)}")
    assert counts["examples"] == SLOW_EXAMPLES
