"""The engine's plumbing: the store, the runner that takes blocking work off the reactor.

Every facade of the engine (:mod:`s4d.engine.buckets`, :mod:`~s4d.engine.objects`,
...) holds one :class:`EngineCore` and reaches the store only through it:
:meth:`~EngineCore.read` runs a read transaction in a worker thread,
:meth:`~EngineCore.commit` queues a metadata change for the next group commit,
and both answer with a Deferred that fires on the reactor thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from s4d.features import objects as fo
from s4d.store.chunks import WrittenChunk
from s4d.store.store import Store
from s4d.store.txn import MetaTxn
from s4d.util.threads import FutureBridge, Runner

T = TypeVar("T")


def segments_of(chunks: list[WrittenChunk]) -> frozenset[int]:
    """The segments that ``chunks`` were written to (those the commit must sync)."""
    return frozenset(c.location.segment for c in chunks if c.location is not None)


class EngineCore:
    """One store, its runner and its clock, shared by the engine's facades.

    :param runner: runs blocking calls (a thread pool in the service).
    :param call_from_thread: ``reactor.callFromThread`` (or a direct call in tests).
    :param now_ns: the clock for modification times.
    """

    def __init__(
        self,
        store: Store,
        runner: Runner,
        call_from_thread: Callable[..., Any],
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.runner = runner
        bridge = getattr(runner, "bridge", None)
        self.bridge: FutureBridge = (
            bridge if isinstance(bridge, FutureBridge) else FutureBridge(call_from_thread)
        )
        self.now_ns = now_ns
        #: set when the service stops: background passes end early
        self.stopping = threading.Event()

    def commit(
        self,
        operation: Callable[[MetaTxn], T],
        segments: frozenset[int] = frozenset(),
        presynced: bool = False,
        prepare: Callable[[], frozenset[int]] | None = None,
    ) -> Deferred[T]:
        """Queue ``operation`` for the next group commit; fires with its result once durable."""
        return self.bridge.deferred(self.store.submit(operation, segments, presynced, prepare))

    def commit_written(
        self, operation: Callable[[MetaTxn], T], chunks: list[WrittenChunk]
    ) -> Deferred[T]:
        """Commit ``operation`` that references ``chunks``; if it fails they become garbage."""
        d = self.commit(operation, segments_of(chunks))

        def discard(failure: Failure) -> Failure:
            self.discard(chunks)
            return failure

        return d.addErrback(discard)

    def read(self, f: Callable[[MetaTxn], T]) -> Deferred[T]:
        """Run ``f`` in a short read transaction on a worker thread."""

        def in_thread() -> T:
            with self.store.read() as t:
                return f(t)

        return self.runner.run(in_thread)

    def run(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        """Run a blocking call on a worker thread."""
        return self.runner.run(f, *args)

    def discard(self, chunks: list[WrittenChunk]) -> None:
        """Record written-but-unused chunks as dead bytes (fire and forget)."""
        if any(c.location is not None for c in chunks):
            self.store.submit(lambda t: fo.discard_chunks(t, chunks))
