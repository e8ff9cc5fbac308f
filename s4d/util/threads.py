"""Running blocking work off the reactor thread.

A :class:`Runner` turns a blocking call into a Deferred. The service uses
:class:`ExecutorRunner`; tests use :class:`InlineRunner`, which runs the call
at once, so that code using a runner is tested without threads or a reactor.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

T = TypeVar("T")


class Runner(Protocol):
    """Runs a blocking function and reports its result as a Deferred."""

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Run ``f(*args, **kwargs)`` somewhere that may block."""
        ...


class InlineRunner:
    """A runner that calls the function immediately (for tests)."""

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Call now; return an already-fired Deferred."""
        try:
            return succeed(f(*args, **kwargs))
        except BaseException:  # noqa: BLE001 - delivered as a Failure
            return fail(Failure())  # type: ignore[no-untyped-call]


class SerialRunner:
    """Runs jobs one after another on another runner, each with its own Deferred.

    A failed job does not stop the ones queued after it.
    """

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._last: Deferred[None] = succeed(None)

    def run(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        """Queue ``f(*args)`` behind every job queued before it."""
        result: Deferred[T] = Deferred()

        def start(_: object) -> Deferred[None]:
            job = self._runner.run(f, *args)
            job.chainDeferred(result)
            return job.addBoth(lambda _: None)

        self._last.addCallback(start)
        return result


class FutureBridge:
    """Delivers ``concurrent.futures`` results to Deferreds on the reactor thread.

    Results finished in other threads are queued and the reactor is woken once
    for however many are waiting, instead of once per result: under load this
    removes most of the wake-ups that dominate the cost of small requests.
    """

    def __init__(self, call_from_thread: Callable[..., Any]) -> None:
        self._call_from_thread = call_from_thread
        self._done: deque[tuple[Deferred[Any], Future[Any]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def deferred(self, future: Future[T]) -> Deferred[T]:
        """A Deferred that fires (on the reactor thread) with ``future``'s outcome."""
        d: Deferred[T] = Deferred()
        future.add_done_callback(lambda f: self._finished(d, f))
        return d

    def _finished(self, d: Deferred[Any], future: Future[Any]) -> None:
        with self._lock:
            self._done.append((d, future))
            if self._scheduled:
                return
            self._scheduled = True
        self._call_from_thread(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items = list(self._done)
            self._done.clear()
            self._scheduled = False
        for d, future in items:
            error = future.exception()
            if error is not None:
                d.errback(Failure(error))  # type: ignore[no-untyped-call]
            else:
                d.callback(future.result())


class ExecutorRunner:
    """A runner on a ``ThreadPoolExecutor`` whose results reach the reactor in batches."""

    def __init__(self, bridge: FutureBridge, workers: int, name: str = "s4d-io") -> None:
        self.bridge = bridge
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Run in a worker thread."""
        return self.bridge.deferred(self.executor.submit(f, *args, **kwargs))

    def stop(self) -> None:
        """Wait for running jobs and stop the workers."""
        self.executor.shutdown(wait=True)
