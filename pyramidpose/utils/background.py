"""Overlap I/O with compute: read ahead of a loop, or hand its outputs to a writer, in one thread.

Video decoding (PyAV), drawing (OpenCV), H.264 encoding (PyAV) and onnxruntime all release the
GIL, so decoding the next frame and writing the previous one can run while the pose model works on
the current one. Both helpers keep the order of items, pass errors on to the calling thread (never
swallowed, never a hang: a dead thread is noticed at the next call) and stop their thread when
closed early.

* :class:`Prefetch` - iterate a (blocking) iterable in a thread, up to ``depth`` items ahead.
* :class:`BackgroundWorker` - call ``fn(item)`` for every submitted item, in order, in a thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.05  # how often a blocked put looks whether the other side has stopped


class Prefetch(Generic[T]):
    """Iterate ``source`` in a background thread, at most ``depth`` items ahead of the consumer.

    Items come out in order; an exception raised by ``source`` is raised by ``next`` at its place
    in the stream. :meth:`close` (also on ``with`` exit or garbage collection of a finished loop)
    stops the thread and closes ``source`` if it is a generator (in the thread that ran it).
    """

    def __init__(self, source: Iterable[T], depth: int = 4, name: str = "prefetch") -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[T]) -> None:
        it = iter(source)
        try:
            for item in it:
                if not self._put((item, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((_END, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item, exc = self._queue.get()
        if item is _END:
            self._done = True
            self._thread.join()
            if exc is not None:
                raise exc
            raise StopIteration
        return item

    def close(self, timeout: float = 10.0) -> None:
        """Stop reading ahead and wait (up to ``timeout`` s) for the thread to finish."""
        self._stop.set()
        self._done = True
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundWorker(Generic[T]):
    """Call ``fn(item)`` in a background thread for every :meth:`submit`-ted item, in order.

    At most ``depth`` items wait. The first exception of ``fn`` stops the work: the next
    :meth:`submit` or :meth:`close` raises it in the caller (later items are dropped). Use as a
    context manager: a normal exit waits for every item and raises the worker's error, if any; an
    exit by exception drops the waiting items and lets that exception go on.
    """

    def __init__(self, fn: Callable[[T], None], depth: int = 4, name: str = "background-worker") -> None:
        self.fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._error: BaseException | None = None
        self._cancel = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None and not self._cancel.is_set():
                try:
                    self.fn(item)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: T) -> None:
        """Queue ``item`` (blocks while ``depth`` items wait); raises the worker's error, if any."""
        if self._closed:
            raise RuntimeError("submit() after close()")
        self._raise_error()
        while True:
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                self._raise_error()
                if not self._thread.is_alive():  # cannot happen unless the interpreter is exiting
                    raise RuntimeError("background worker thread died") from None

    def close(self, cancel: bool = False) -> None:
        """Finish (or, with ``cancel``, drop) the waiting items, stop the thread, raise its error."""
        if self._closed:
            return
        self._closed = True
        if cancel:
            self._cancel.set()
        self._queue.put(_END)  # the thread drains the queue, so this never blocks for long
        self._thread.join()
        if not cancel:
            self._raise_error()

    def __enter__(self) -> BackgroundWorker[T]:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(cancel=exc_type is not None)
