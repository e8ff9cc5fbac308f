"""The access log: one structured twisted.logger event per answered request.

``S4_ACCESS_LOG`` says where: ``off`` (the default), ``log`` (the server's own
log, through twisted.logger's global publisher) or a file path (one JSON object
per line, appended; several worker processes may share the file). The site
hands each answered request to :class:`AccessLog`, which only appends it to a
list: the events are emitted, formatted and written in batches a quarter of a
second later (or at once when many are waiting), after the responses are on
their way, never between a response and its socket.

A file is opened in append mode and written with one ``write`` per batch, so
lines of several processes never interleave; when the path starts naming
another file (``logrotate`` moved it away), the new one is opened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import ILogObserver, LogEvent, Logger
from zope.interface import implementer

from s4d.admin.figures import ops_operation
from s4d.util.served import ServedRequest

#: The text of an access event in the server's log.
ACCESS_FORMAT = (
    "{request_id} {peer} {identity} {method} {operation} {target!r} {status} "
    "in={bytes_in} out={bytes_out} {duration_ms:.1f}ms"
)
#: The fields of an access event (and of a JSON line, with ``time``).
FIELDS = (
    "request_id", "peer", "identity", "method", "operation", "bucket", "key", "path", "status",
    "bytes_in", "bytes_out", "duration_ms",
)  # fmt: skip
#: Seconds an answered request waits before its event is emitted.
FLUSH_DELAY = 0.25
#: Waiting requests that make the batch go at once.
MAX_PENDING = 2048


def event_fields(request: ServedRequest) -> dict[str, Any]:
    """The fields of one request's access event."""
    target = (
        f"{request.bucket}/{request.key}"
        if request.bucket
        else request.path.decode("utf-8", "replace")
    )
    return {
        "time": request.started,
        "request_id": request.request_id,
        "peer": request.peer or "-",
        "identity": request.identity or "-",
        "method": request.method or "-",
        "operation": request.operation or ops_operation(request.path),
        "bucket": request.bucket,
        "key": request.key,
        "path": request.path.decode("utf-8", "replace"),
        "target": target,
        "status": request.status,
        "bytes_in": request.bytes_in,
        "bytes_out": request.bytes_out,
        "duration_ms": round(request.seconds * 1000, 3),
    }


class AccessLog:
    """Takes answered requests; emits their events in batches (see the module docstring).

    :param clock: schedules the batches (the reactor; a task.Clock in tests).
    :param logger: emits the events (its observer decides where they go).
    :param after_batch: called after each batch (a file writes what it gathered).
    """

    def __init__(
        self,
        clock: IReactorTime,
        logger: Logger,
        after_batch: Callable[[], None] = lambda: None,
        delay: float = FLUSH_DELAY,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.clock = clock
        self.logger = logger
        self.after_batch = after_batch
        self.delay = delay
        self.max_pending = max_pending
        self.pending: list[ServedRequest] = []
        self._call: IDelayedCall | None = None

    def __call__(self, request: ServedRequest) -> None:
        """Note one answered request (cheap: the work waits for the batch)."""
        self.pending.append(request)
        if len(self.pending) >= self.max_pending:
            self.flush()
        elif self._call is None:
            self._call = self.clock.callLater(self.delay, self.flush)

    def flush(self) -> None:
        """Emit an event for every waiting request, now."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        pending, self.pending = self.pending, []
        for request in pending:
            self.logger.info(ACCESS_FORMAT, **event_fields(request))
        if pending:
            self.after_batch()

    def stop(self) -> None:
        """Emit what is waiting (the server is stopping)."""
        self.flush()


@implementer(ILogObserver)
class JsonLinesFile:
    """An observer writing access events as JSON lines to a file, a batch per ``write``."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.lines: list[str] = []
        self.fd = -1
        self.inode: tuple[int, int] | None = None
        self._open()

    def _open(self) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        st = os.fstat(fd)
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.inode = fd, (st.st_dev, st.st_ino)

    def __call__(self, event: LogEvent) -> None:
        """Keep one event's line until :meth:`flush`."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(float(event.get("time", 0.0)), UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        }
        for name in FIELDS:
            line[name] = event.get(name)
        self.lines.append(json.dumps(line, separators=(",", ":"), ensure_ascii=False))

    def flush(self) -> None:
        """Write the gathered lines in one append (reopening a file rotated away first)."""
        if not self.lines:
            return
        data = ("\n".join(self.lines) + "\n").encode("utf-8", "replace")
        self.lines = []
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) != self.inode:
                self._open()
        except FileNotFoundError:
            self._open()
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        """Write what is left and close the file."""
        self.flush()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_access_log(
    setting: str, clock: IReactorTime
) -> tuple[AccessLog, Callable[[], None]] | None:
    """The access log ``S4_ACCESS_LOG`` asks for, and how to close it; None when ``off``."""
    value = setting.strip()
    if value.lower() in ("", "off", "false", "no", "0"):
        return None
    if value.lower() == "log":
        log = AccessLog(clock, Logger(namespace="s4d.access"))
        return log, log.stop
    sink = JsonLinesFile(value)
    log = AccessLog(clock, Logger(namespace="s4d.access", observer=sink), sink.flush)

    def close() -> None:
        log.stop()
        sink.close()

    return log, close
