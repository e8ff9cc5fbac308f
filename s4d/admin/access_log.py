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
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
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
#: The namespace of access events.
NAMESPACE = "s4d.access"


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

    Events are built as twisted.logger builds them (``log_format``, ``log_level``,
    ``log_namespace``, ``log_time`` and the fields) and handed to the observer
    directly: ``Logger.emit`` would spend more on checking the level than the
    rest of the event costs.

    :param clock: schedules the batches (the reactor; a task.Clock in tests).
    :param observer: where the events go (the global publisher, or a file).
    :param after_batch: called after each batch (a file writes what it gathered).
    """

    def __init__(
        self,
        clock: IReactorTime,
        observer: ILogObserver,
        after_batch: Callable[[], None] = lambda: None,
        delay: float = FLUSH_DELAY,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.clock = clock
        self.observer = observer
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
        now = self.clock.seconds()
        observer = self.observer
        for request in pending:
            event = event_fields(request)
            event["log_format"] = ACCESS_FORMAT
            event["log_level"] = LogLevel.info
            event["log_namespace"] = NAMESPACE
            event["log_source"] = None
            event["log_time"] = now
            observer(event)
        if pending:
            self.after_batch()

    def stop(self) -> None:
        """Emit what is waiting (the server is stopping)."""
        self.flush()


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@implementer(ILogObserver)
class JsonLinesFile:
    """An observer writing access events as JSON lines to a file, a batch per ``write``."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.lines: list[str] = []
        self.fd = -1
        self.inode: tuple[int, int] | None = None
        self._second = -1
        self._second_text = ""
        self._open()

    def _open(self) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        st = os.fstat(fd)
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.inode = fd, (st.st_dev, st.st_ino)

    def _time(self, when: float) -> str:
        """``when`` in RFC 3339 UTC with milliseconds (the date part computed once a second)."""
        second = int(when)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{int((when - second) * 1000):03d}Z"

    def __call__(self, event: LogEvent) -> None:
        """Keep one event's line until :meth:`flush`."""
        line: dict[str, Any] = {"time": self._time(float(event.get("time", 0.0)))}
        for name in FIELDS:
            line[name] = event.get(name)
        self.lines.append(_encode(line))

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
        log = AccessLog(clock, globalLogPublisher)
        return log, log.stop
    sink = JsonLinesFile(value)
    log = AccessLog(clock, sink, sink.flush)

    def close() -> None:
        log.stop()
        sink.close()

    return log, close
