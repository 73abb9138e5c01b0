"""Read-ahead and write-behind threads: order kept, errors raised in the caller, never a hang."""

from __future__ import annotations

import threading
import time

import pytest

from pyramidpose.utils.background import BackgroundWorker, Prefetch


def _finishes(fn, timeout: float = 20.0):
    """Run ``fn`` in a thread; fail (instead of hanging the test run) when it does not return."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "hung"
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_prefetch_keeps_order_and_reads_ahead_in_another_thread():
    threads = set()

    def source():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    with Prefetch(source(), depth=3, name="reader") as it:
        assert list(it) == list(range(50))
    assert threads == {"reader"}


def test_prefetch_raises_the_source_error_at_its_place():
    def source():
        yield 1
        yield 2
        raise ValueError("frame 3 is broken")

    got = []
    with pytest.raises(ValueError, match="frame 3"), Prefetch(source(), depth=8) as it:
        for x in it:
            got.append(x)
    assert got == [1, 2]


def test_prefetch_closed_early_stops_and_closes_the_generator():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    def run():
        with Prefetch(endless(), depth=2) as it:
            return [next(it) for _ in range(5)]

    assert _finishes(run) == [0, 1, 2, 3, 4]
    assert closed.wait(10), "the source generator was not closed"


def test_worker_calls_in_submission_order_in_its_thread():
    seen, names = [], set()

    def fn(x):
        names.add(threading.current_thread().name)
        if x % 7 == 0:
            time.sleep(0.001)  # uneven work must not reorder anything
        seen.append(x)

    with BackgroundWorker(fn, depth=2, name="writer") as w:
        for i in range(100):
            w.submit(i)
    assert seen == list(range(100)) and names == {"writer"}


def test_worker_error_reaches_the_caller_without_hanging():
    done = []

    def fn(x):
        if x == 3:
            raise OSError("disk full")
        done.append(x)

    def run():
        with BackgroundWorker(fn, depth=2) as w:
            for i in range(1000):  # far more than the queue holds: a dead worker must not block us
                w.submit(i)

    with pytest.raises(OSError, match="disk full"):
        _finishes(run)
    assert done == [0, 1, 2], "nothing after the failing item is written"


def test_worker_error_on_the_last_item_is_raised_at_close():
    def fn(x):
        if x == 1:
            raise OSError("late failure")

    w = BackgroundWorker(fn)
    w.submit(0)
    w.submit(1)
    with pytest.raises(OSError, match="late failure"):
        _finishes(w.close)


def test_worker_exit_by_exception_drops_waiting_items_and_keeps_that_exception():
    gate, done = threading.Event(), []

    def fn(x):
        gate.wait(10)
        done.append(x)

    def run():
        with BackgroundWorker(fn, depth=8) as w:
            for i in range(5):
                w.submit(i)
            gate.set()
            raise KeyError("caller failed")

    with pytest.raises(KeyError, match="caller failed"):
        _finishes(run)
    assert len(done) <= 1  # at most the item already running
