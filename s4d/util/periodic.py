"""A periodic background job as a Twisted service, on an injected clock.

The interval is measured from the end of one run to the start of the next, so
runs never overlap however long one takes; a run that fails is logged and the
schedule goes on; :meth:`PeriodicService.stopService` cancels the next run and
waits for the one in flight. Nothing here touches the global reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger


class PeriodicService(service.Service):
    """Runs ``job`` every ``interval`` seconds while the service runs.

    :param clock: an ``IReactorTime`` (``task.Clock`` in tests).
    :param job: returns a value or a Deferred; a failure is logged, never raised.
    :param run_at_start: run once as soon as the service starts.
    """

    log = Logger()

    def __init__(
        self,
        clock: Any,
        interval: float,
        job: Callable[[], Any],
        name: str,
        run_at_start: bool = False,
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.job = job
        self.name = name
        self.run_at_start = run_at_start
        self.runs = 0
        self.failures = 0
        self._call: Any = None
        self._running: Deferred[None] | None = None

    def startService(self) -> None:
        """Schedule the first run."""
        super().startService()  # type: ignore[no-untyped-call]
        self._schedule(0 if self.run_at_start else self.interval)

    def stopService(self) -> Deferred[None]:
        """Cancel the next run; fires once any run in flight has ended."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        running = self._running
        if running is None:
            return succeed(None)
        done: Deferred[None] = Deferred()
        running.addBoth(lambda _: done.callback(None))
        return done

    def call_soon(self) -> None:
        """Run as soon as possible (after the run in flight, if there is one)."""
        if self._running is None and self.running:
            self._schedule(0)

    def _schedule(self, delay: float) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = self.clock.callLater(delay, self._run)

    def _run(self) -> None:
        self._call = None
        if self._running is not None:
            return
        self.runs += 1
        d = maybeDeferred(self.job)
        d.addErrback(self._failed)
        self._running = d
        d.addBoth(self._ended)

    def _failed(self, failure: Any) -> None:
        self.failures += 1
        self.log.failure("periodic job {name} failed", failure, name=self.name)

    def _ended(self, _: object) -> None:
        self._running = None
        if self.running:
            self._schedule(self.interval)
