"""The query service the S3 layer asks: start a query, follow it, cancel it.

Queries run in their own bounded pool (a :class:`~s4d.util.threads.Runner`
the composition root makes with ``S4_SELECT_CONCURRENCY`` threads), never on
the reactor and never on the engine's I/O threads, so S3 traffic is served
while they run. A pool with every thread busy queues a few more queries;
beyond that a new query is answered ``SlowDown``.

The modules that import pyarrow and DataFusion (about 70 MB of memory) are
imported by the first query, not when the server starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, DeferredList, succeed

from s4d.engine import ObjectsFacade
from s4d.errors import S3Error
from s4d.sql.access import EveryObject, ReadAccess
from s4d.sql.channel import Finished
from s4d.sql.control import QueryCancelled
from s4d.sql.request import MultiObjectRequest, SelectRequest
from s4d.util.threads import Runner

if TYPE_CHECKING:
    from s4d.sql.runner import QueryJob, QuerySettings, Started


@dataclass(frozen=True)
class Limits:
    """``S4_SELECT_*``: what a query may use.

    :ivar max_memory: bytes of DataFusion's memory pool, per query.
    :ivar timeout: seconds a query may run (0: no limit).
    :ivar concurrency: queries that run at once (each on its own thread).
    :ivar queued: queries that may wait for a thread, beyond which ``SlowDown``.
    :ivar keepalive: seconds without output before a keep-alive goes out.
    :ivar buffered: output bytes waiting for a slow client before the query
        pauses (None: never pause, for queries run inline in tests).
    """

    max_memory: int = 256 << 20
    timeout: float = 60.0
    concurrency: int = 2
    queued: int = 8
    keepalive: float = 5.0
    buffered: int | None = 4 << 20


class RunningQuery:
    """One query, as the handler that answers it sees it."""

    def __init__(self, job: QueryJob, done: Deferred[None]) -> None:
        self._job = job
        self.done = done

    def started(self) -> Deferred[Started]:
        """Fires once the query is planned; fails with the S3 error if it cannot start."""
        return self._job.channel.started()

    def next(self) -> Deferred[bytes | Finished]:
        """The next piece of the response body, or :class:`Finished` at the end."""
        return self._job.channel.next()

    def cancel(self) -> None:
        """Stop the query (its client went away)."""
        self._job.control.cancel(QueryCancelled())


class QueryService:
    """Starts queries on the query pool over the engine's object facade.

    :param call_from_thread: ``reactor.callFromThread`` (a direct call in tests
        whose engine runs inline).
    :param clock: the monotonic clock queries' deadlines are measured on
        (injected for tests).
    """

    def __init__(
        self,
        objects: ObjectsFacade,
        runner: Runner,
        call_from_thread: Callable[..., Any],
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.objects = objects
        self.runner = runner
        self.call_from_thread = call_from_thread
        self.limits = limits
        self.clock = clock
        self._running: set[RunningQuery] = set()
        self._stopping = False

    def _settings(self) -> QuerySettings:
        from s4d.sql.runner import QuerySettings

        limits = self.limits
        return QuerySettings(
            max_memory=limits.max_memory,
            timeout=limits.timeout if limits.timeout > 0 else None,
            keepalive=limits.keepalive,
            buffered=limits.buffered,
        )

    def _start(
        self,
        bucket: str,
        key: str | None,
        request: SelectRequest | MultiObjectRequest,
        access: ReadAccess | None,
    ) -> RunningQuery:
        if self._stopping:
            raise S3Error("ServiceUnavailable", "The server is stopping.")
        if len(self._running) >= self.limits.concurrency + self.limits.queued:
            raise S3Error("SlowDown", "Too many queries are running; try again later.")
        from s4d.sql.runner import run_query, start_query

        job = start_query(
            bucket,
            key,
            request,
            self.objects,
            access or EveryObject(),
            self._settings(),
            self.call_from_thread,
            self.clock,
        )
        done: Deferred[None] = self.runner.run(run_query, job)
        query = RunningQuery(job, done)
        self._running.add(query)

        def finished(result: object) -> None:
            self._running.discard(query)

        done.addBoth(finished)
        return query

    def select(
        self, bucket: str, key: str, request: SelectRequest, access: ReadAccess | None = None
    ) -> RunningQuery:
        """Start SelectObjectContent over one object."""
        return self._start(bucket, key, request, access)

    def query(
        self, bucket: str, request: MultiObjectRequest, access: ReadAccess | None = None
    ) -> RunningQuery:
        """Start a multi-object ``?sql`` query over a bucket."""
        return self._start(bucket, None, request, access)

    @property
    def running(self) -> int:
        """Queries started and not finished."""
        return len(self._running)

    def stop(self) -> Deferred[Any]:
        """Refuse new queries, cancel the running ones; fires when their threads are done."""
        self._stopping = True
        running = list(self._running)
        for query in running:
            query.cancel()
        if not running:
            return succeed(None)
        return DeferredList([query.done for query in running], consumeErrors=True)
