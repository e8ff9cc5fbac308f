"""The pipe between a query's thread and the reactor that writes its response.

The query thread calls :meth:`OutputChannel.ready` once the query is planned
(or :meth:`~OutputChannel.fail` if it could not be), then :meth:`put` for
each piece of output and :meth:`close` at the end (with the error that ended
it, if any). The reactor side waits for :meth:`started`, then takes pieces
with :meth:`next` as fast as the client reads them.

Backpressure: :meth:`put` blocks the query thread while more than ``limit``
bytes wait to be written, so a slow client slows the query instead of
filling memory; a cancelled query's blocked ``put`` raises at once, and one
whose deadline passes raises the timeout then. With
``limit`` None (the engine and queries running inline, in tests) nothing
blocks.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred, succeed

from s4d.sql.control import QueryCancelled, QueryControl

T = TypeVar("T")


class Finished:
    """The end of the output: ``error`` is why it ended early (None: it is complete)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class OutputChannel(Generic[T]):
    """Output of one query, from its thread to the reactor.

    :param call_from_thread: runs a function on the reactor thread.
    :param limit: bytes that may wait to be written before :meth:`put` blocks.
    """

    def __init__(
        self, call_from_thread: Callable[..., Any], control: QueryControl, limit: int | None
    ) -> None:
        self._call_from_thread = call_from_thread
        self._control = control
        self._limit = limit
        self._lock = threading.Condition()
        self._items: collections.deque[bytes | Finished] = collections.deque()
        self._buffered = 0
        self._start: Deferred[T] = Deferred()
        self._waiter: Deferred[bytes | Finished] | None = None
        self._wake_scheduled = False
        control.on_stop(self._stopped)

    # -- the query thread ---------------------------------------------------------------

    def ready(self, info: T) -> None:
        """The query is planned; its output follows (``info`` describes it)."""
        self._call_from_thread(self._start.callback, info)

    def fail(self, error: BaseException) -> None:
        """The query could not start (the response is an error document)."""
        self._call_from_thread(self._start.errback, error)

    def put(self, data: bytes) -> None:
        """Queue ``data``; blocks while too much waits (unless the query is stopped).

        Raises :class:`QueryCancelled` once the query is cancelled; a query
        stopped for another reason may still write its error. A query that
        reaches its deadline while it waits stops then (the timeout error is
        raised, and written after what waits), instead of holding its thread
        for as long as the client takes to read.
        """
        if not data:
            return
        with self._lock:
            while (
                self._limit is not None
                and self._buffered >= self._limit
                and self._control.stopped is None
            ):
                left = self._control.remaining()
                if left is not None and left <= 0:
                    self._control.check()  # raises the timeout
                self._lock.wait(left)
            if isinstance(self._control.stopped, QueryCancelled):
                raise self._control.stopped  # nobody is left to read it
            self._items.append(data)
            self._buffered += len(data)
        self._schedule()

    def close(self, error: BaseException | None = None) -> None:
        """The output is complete (or ended by ``error``)."""
        with self._lock:
            self._items.append(Finished(error))
        self._schedule()

    def _stopped(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def _schedule(self) -> None:
        with self._lock:
            if self._wake_scheduled:
                return
            self._wake_scheduled = True
        self._call_from_thread(self._wake)

    # -- the reactor ---------------------------------------------------------------------

    def started(self) -> Deferred[T]:
        """Fires with the query's description once it is planned (or fails)."""
        return self._start

    def _take(self) -> bytes | Finished | None:
        with self._lock:
            if not self._items:
                return None
            item = self._items.popleft()
            if isinstance(item, bytes):
                self._buffered -= len(item)
                self._lock.notify_all()
            return item

    def _wake(self) -> None:
        with self._lock:
            self._wake_scheduled = False
        waiter = self._waiter
        if waiter is None:
            return
        item = self._take()
        if item is not None:
            self._waiter = None
            waiter.callback(item)

    def next(self) -> Deferred[bytes | Finished]:
        """The next piece of output, or :class:`Finished`."""
        item = self._take()
        if item is not None:
            return succeed(item)
        waiter: Deferred[bytes | Finished] = Deferred()
        self._waiter = waiter
        if self._items:
            self._wake()
        return waiter
