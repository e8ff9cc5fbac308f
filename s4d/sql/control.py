"""One query's control block, and blocking calls from its threads into the engine.

A query runs on threads that are not the reactor's: its own pool thread, and
the threads pyarrow and DataFusion read and compute on. They reach the store
only through the engine's facades, whose calls must start on the reactor and
answer with Deferreds: :class:`EngineBridge` starts a call there
(``call_from_thread``) and hands its result over as a
``concurrent.futures.Future``, which :meth:`QueryControl.wait` waits for.

:class:`QueryControl` is what every part of one query shares: whether it was
cancelled (the client went away, the server is stopping) or ran out of time,
the first error an input reader met (whose type DataFusion would flatten into
text on its way up), and the byte counts reported in ``Stats`` and
``Progress``. Cancelling wakes every thread waiting on the engine at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from s4d.errors import S3Error

T = TypeVar("T")


class QueryCancelled(Exception):
    """The query was cancelled: its client went away or the server is stopping."""


def timeout_error(seconds: float) -> S3Error:
    """The error of a query that ran longer than it may."""
    return S3Error(
        "QueryTimeout", f"The query ran longer than the {seconds:g} s this server allows."
    )


class QueryControl:
    """Cancellation, deadline, first input error and byte counts of one query.

    :param timeout: seconds the query may run (None: no limit).
    :param clock: a monotonic clock (injected for tests).
    """

    def __init__(
        self, timeout: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.timeout = timeout
        self.deadline = None if timeout is None else clock() + timeout
        self._lock = threading.Lock()
        self._waiting: set[Future[Any]] = set()
        self._on_stop: list[Callable[[], None]] = []
        #: why the query stops early: an S3Error (timeout, input error) or QueryCancelled
        self.stopped: BaseException | None = None
        #: bytes read from the store
        self.scanned = 0
        #: bytes handed to the parsers (after decompression)
        self.processed = 0
        #: bytes of output sent
        self.returned = 0

    # -- stopping -----------------------------------------------------------------------

    def cancel(self, reason: BaseException | None = None) -> None:
        """Stop the query (any thread): every wait on the engine raises ``reason``."""
        with self._lock:
            if self.stopped is None:
                self.stopped = reason or QueryCancelled()
            waiting, self._waiting = self._waiting, set()
            stopped = self.stopped
            callbacks = list(self._on_stop)
        for future in waiting:
            try:
                future.set_exception(stopped)
            except InvalidStateError:
                pass  # it finished at the same moment
        for callback in callbacks:
            callback()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the cancelling thread) when the query is cancelled."""
        with self._lock:
            self._on_stop.append(callback)

    def finish(self) -> None:
        """The query has ended: drop the callbacks registered for its stop."""
        with self._lock:
            self._on_stop.clear()

    def input_error(self, error: S3Error) -> S3Error:
        """Record an input reader's error (the first one wins); return it to raise."""
        with self._lock:
            if self.stopped is None:
                self.stopped = error
        return error

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        if self.deadline is None:
            return None
        return self.deadline - self._clock()

    def check(self) -> None:
        """Raise why the query stops, if it does (cancelled, timed out, input error)."""
        if self.stopped is not None:
            raise self.stopped
        left = self.remaining()
        if left is not None and left <= 0:
            self.cancel(timeout_error(self.timeout or 0))
            raise self.stopped  # type: ignore[misc]

    def wait(self, future: Future[T]) -> T:
        """``future``'s result, unless the query stops first."""
        with self._lock:
            if self.stopped is None:
                self._waiting.add(future)
        try:
            self.check()
            while True:
                left = self.remaining()
                try:
                    return future.result(timeout=None if left is None else max(left, 0.0))
                except FutureTimeout:
                    self.check()
        finally:
            with self._lock:
                self._waiting.discard(future)

    # -- counting -----------------------------------------------------------------------

    def count_scanned(self, size: int) -> None:
        """``size`` more bytes were read from the store."""
        with self._lock:
            self.scanned += size

    def count_processed(self, size: int) -> None:
        """``size`` more bytes reached a parser."""
        with self._lock:
            self.processed += size

    def counts(self) -> tuple[int, int, int]:
        """(scanned, processed, returned) so far."""
        with self._lock:
            return self.scanned, self.processed, self.returned


class EngineBridge:
    """Calls into the engine from a query's threads.

    :param call_from_thread: runs a function on the reactor thread
        (``reactor.callFromThread``; a direct call where the engine runs inline).
    """

    def __init__(self, call_from_thread: Callable[..., Any], control: QueryControl) -> None:
        self._call_from_thread = call_from_thread
        self.control = control

    def start(self, f: Callable[..., Deferred[T]], *args: Any) -> Future[T]:
        """Start ``f(*args)`` on the reactor; its outcome as a Future (do not block)."""
        future: Future[T] = Future()

        def settle(outcome: T | Failure) -> None:
            try:
                if isinstance(outcome, Failure):
                    future.set_exception(outcome.value)
                else:
                    future.set_result(outcome)
            except InvalidStateError:
                pass  # cancelled meanwhile

        def begin() -> None:
            maybeDeferred(f, *args).addBoth(settle)

        self._call_from_thread(begin)
        return future

    def call(self, f: Callable[..., Deferred[T]], *args: Any) -> T:
        """``f(*args)``'s result, waited for (unless the query stops first)."""
        return self.control.wait(self.start(f, *args))
