"""The server's running figures, whichever of its processes is asked.

Each process counts what it serves in plain dictionaries and histograms
(:class:`RequestFigures`, a :class:`~s4d.util.served.RequestObserver`: a few
dictionary updates per request, no lock, no I/O) and its engine keeps its
group-commit, fsync and maintenance figures
(:meth:`~s4d.engine.MaintenanceFacade.figures`). :class:`FiguresBoard` puts
them together as one :class:`ProcessFigures`.

With several worker processes (``S4_WORKERS``) any of them may answer a
scrape, and the figures must be the whole server's. Every process therefore
publishes its figures once a second (only when they changed) as a small JSON
file, ``<data_dir>/run/figures/<pid>.json``, written atomically (a temporary
file renamed over the old one); the process asked adds its own live figures to
the latest files of the others (:meth:`FiguresBoard.server`). So the other
processes' part is at most about a second old, and the hot path pays nothing
for it. Counters of a process that has ended still count (they happened);
its gauges (open connections) do not. The main process empties the directory
when it starts, before its workers do.

Why not prometheus-client's multiprocess mode: it picks its value store from
an environment variable when it is imported, writes every increment through a
lock into a memory-mapped file (several per request), and cannot add up the
custom collectors the storage gauges come from anyway.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from twisted.logger import Logger

from s4d.engine import EngineFigures
from s4d.util.histogram import (
    BATCH_BOUNDS,
    LATENCY_BOUNDS,
    SYNC_BOUNDS,
    Histogram,
    HistogramSnapshot,
)
from s4d.util.served import ServedRequest

log = Logger()

#: Seconds between two publications of a process's figures.
PUBLISH_INTERVAL = 1.0
#: Format of the published files (a reader skips files of another format).
FORMAT = 2


class ServerInfo(NamedTuple):
    """What the server is: its version, data directory, processes and region."""

    version: str
    data_dir: str
    workers: int
    region: str


def ops_operation(path: bytes) -> str:
    """The operation label of a request the ops app answered (a few fixed names)."""
    if path == b"/metrics":
        return "Metrics"
    if path == b"/api/stats":
        return "Stats"
    if path.startswith(b"/api/admin/"):
        return "Admin"
    if path in (b"/health", b"/minio/health/live", b"/minio/health/ready"):
        return "Health"
    return "Ops"


class RequestFigures:
    """This process's requests by operation and status, latencies, and bytes in and out.

    :param listeners: also told about every request (the access log).
    """

    def __init__(self, listeners: Sequence[Callable[[ServedRequest], None]] = ()) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.received: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.listeners = list(listeners)

    def served(self, request: ServedRequest) -> None:
        """Count one answered request."""
        operation = request.operation or ops_operation(request.path)
        key = (operation, request.status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        histogram = self.latency.get(operation)
        if histogram is None:
            histogram = self.latency[operation] = Histogram(LATENCY_BOUNDS)
        histogram.observe(request.seconds)
        if request.bytes_in:
            self.received[operation] = self.received.get(operation, 0) + request.bytes_in
        if request.bytes_out:
            self.sent[operation] = self.sent.get(operation, 0) + request.bytes_out
        for listener in self.listeners:
            listener(request)


def _empty(bounds: Sequence[float]) -> HistogramSnapshot:
    return HistogramSnapshot.empty(bounds)


def _add_counts(into: dict[Any, int], more: dict[Any, int]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value


def _newer(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None or b is None:
        return a or b
    return a if a.get("at", 0) >= b.get("at", 0) else b


@dataclass
class ProcessFigures:
    """The figures of one process, or of several added up (:meth:`merged`)."""

    #: the processes counted, and those of them still running
    pids: list[int] = field(default_factory=list)
    live_pids: list[int] = field(default_factory=list)
    #: when the earliest of them started (seconds since the epoch)
    started: float = 0.0
    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    latency: dict[str, HistogramSnapshot] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    #: open connections of the running processes
    connections: int = 0
    commit_batches: HistogramSnapshot = field(default_factory=lambda: _empty(BATCH_BOUNDS))
    commit_seconds: HistogramSnapshot = field(default_factory=lambda: _empty(SYNC_BOUNDS))
    fsync_seconds: HistogramSnapshot = field(default_factory=lambda: _empty(SYNC_BOUNDS))
    durable_seconds: HistogramSnapshot = field(default_factory=lambda: _empty(SYNC_BOUNDS))
    totals: dict[str, int] = field(default_factory=dict)
    last_compaction: dict[str, Any] | None = None
    last_scrub: dict[str, Any] | None = None

    def merged(self, other: ProcessFigures) -> ProcessFigures:
        """These figures and ``other``'s added up (a new value)."""
        starts = [x for x in (self.started, other.started) if x]
        out = ProcessFigures(
            pids=self.pids + other.pids,
            live_pids=self.live_pids + other.live_pids,
            started=min(starts) if starts else 0.0,
            connections=self.connections + other.connections,
            commit_batches=self.commit_batches.merged(other.commit_batches),
            commit_seconds=self.commit_seconds.merged(other.commit_seconds),
            fsync_seconds=self.fsync_seconds.merged(other.fsync_seconds),
            durable_seconds=self.durable_seconds.merged(other.durable_seconds),
            last_compaction=_newer(self.last_compaction, other.last_compaction),
            last_scrub=_newer(self.last_scrub, other.last_scrub),
        )
        for source in (self, other):
            _add_counts(out.requests, source.requests)
            _add_counts(out.received, source.received)
            _add_counts(out.sent, source.sent)
            _add_counts(out.totals, source.totals)
            for operation, histogram in source.latency.items():
                mine = out.latency.get(operation)
                out.latency[operation] = histogram if mine is None else mine.merged(histogram)
        return out

    def to_json(self) -> dict[str, Any]:
        """The form published for the other processes."""
        return {
            "format": FORMAT,
            "pids": self.pids,
            "started": self.started,
            "requests": [[op, status, n] for (op, status), n in sorted(self.requests.items())],
            "latency": {op: h.to_json() for op, h in sorted(self.latency.items())},
            "received": self.received,
            "sent": self.sent,
            "connections": self.connections,
            "commit_batches": self.commit_batches.to_json(),
            "commit_seconds": self.commit_seconds.to_json(),
            "fsync_seconds": self.fsync_seconds.to_json(),
            "durable_seconds": self.durable_seconds.to_json(),
            "totals": self.totals,
            "last_compaction": self.last_compaction,
            "last_scrub": self.last_scrub,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], alive: bool) -> ProcessFigures:
        """Figures :meth:`to_json` published; a process no longer ``alive`` has no gauges.

        Raises ``ValueError`` (or ``KeyError``, ``TypeError``) if malformed.
        """
        if value.get("format") != FORMAT:
            raise ValueError("figures of another format")
        pids = [int(p) for p in value["pids"]]
        return cls(
            pids=pids,
            live_pids=pids if alive else [],
            started=float(value["started"]),
            requests={(str(op), int(status)): int(n) for op, status, n in value["requests"]},
            latency={str(op): HistogramSnapshot.from_json(h) for op, h in value["latency"].items()},
            received={str(k): int(v) for k, v in value["received"].items()},
            sent={str(k): int(v) for k, v in value["sent"].items()},
            connections=int(value["connections"]) if alive else 0,
            commit_batches=HistogramSnapshot.from_json(value["commit_batches"]),
            commit_seconds=HistogramSnapshot.from_json(value["commit_seconds"]),
            fsync_seconds=HistogramSnapshot.from_json(value["fsync_seconds"]),
            durable_seconds=HistogramSnapshot.from_json(value["durable_seconds"]),
            totals={str(k): int(v) for k, v in value["totals"].items()},
            last_compaction=value.get("last_compaction"),
            last_scrub=value.get("last_scrub"),
        )


def process_alive(pid: int) -> bool:
    """A process with this id is running (or is a zombie not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FiguresBoard:
    """This process's figures; published for the other processes; the server's on request.

    :param requests: this process's request figures.
    :param engine: this process's engine figures (``engine.maintenance.figures``).
    :param connections: how many connections this process has open.
    :param started: when this process started (seconds since the epoch).
    :param directory: where every process publishes (None: this is the only process).
    :param pid: this process's id.
    :param alive: whether another process still runs (tests pass their own).
    """

    def __init__(
        self,
        requests: RequestFigures,
        engine: Callable[[], EngineFigures],
        connections: Callable[[], int],
        started: float,
        directory: str | None = None,
        pid: int | None = None,
        alive: Callable[[int], bool] = process_alive,
    ) -> None:
        self.requests = requests
        self.engine = engine
        self.connections = connections
        self.started = started
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid
        self.alive = alive
        self._published: str | None = None

    def local(self) -> ProcessFigures:
        """This process's figures, now."""
        engine = self.engine()
        requests = self.requests
        return ProcessFigures(
            pids=[self.pid],
            live_pids=[self.pid],
            started=self.started,
            requests=dict(requests.requests),
            latency={op: h.snapshot() for op, h in requests.latency.items()},
            received=dict(requests.received),
            sent=dict(requests.sent),
            connections=self.connections(),
            commit_batches=engine.commit_batches,
            commit_seconds=engine.commit_seconds,
            fsync_seconds=engine.fsync_seconds,
            durable_seconds=engine.durable_seconds,
            totals=dict(engine.totals),
            last_compaction=engine.last_compaction,
            last_scrub=engine.last_scrub,
        )

    @property
    def path(self) -> str | None:
        """This process's published file."""
        if self.directory is None:
            return None
        return os.path.join(self.directory, f"{self.pid}.json")

    def publish(self) -> bool:
        """Write this process's figures for the others if they changed; True if written."""
        path = self.path
        if path is None:
            return False
        text = json.dumps(self.local().to_json(), sort_keys=True, separators=(",", ":"))
        if text == self._published:
            return False
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)
        self._published = text
        return True

    def others(self) -> Iterator[ProcessFigures]:
        """The latest published figures of every other process (unreadable files skipped)."""
        if self.directory is None:
            return
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            stem, dot, suffix = name.partition(".")
            if suffix != "json" or not stem.isdigit() or int(stem) == self.pid:
                continue
            try:
                with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                    value = json.load(f)
                yield ProcessFigures.from_json(value, self.alive(int(stem)))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warn("Skipping unreadable figures {name}: {error}", name=name, error=e)

    def server(self) -> ProcessFigures:
        """The whole server's figures: this process's now, and the others' latest."""
        total = self.local()
        for other in self.others():
            total = total.merged(other)
        return total


def reset_directory(directory: str) -> None:
    """Empty the figures directory (the main process, before any worker starts)."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith((".json", ".tmp")):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
