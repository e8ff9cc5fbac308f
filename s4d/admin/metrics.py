"""``GET /metrics``: the whole server's figures in Prometheus' text format.

A scrape reads the storage figures in one short read transaction on a worker
thread (counters only: its cost does not grow with buckets or objects; see
``docs/operations.rst`` for the measured figures), adds up the running figures
of every process (:meth:`~s4d.admin.figures.FiguresBoard.server`) and renders
both with prometheus-client's metric families. ``docs/operations.rst``
describes every metric.

Who may scrape (``S4_METRICS_*``): anyone, unless a bearer token
(``Authorization: Bearer <S4_METRICS_TOKEN>``, Prometheus' ``authorization``
setting) or a list of networks (``S4_METRICS_ALLOW``) is configured; with
``S4_METRICS_ENABLED=false`` the route answers ``503 Metrics disabled`` as
S4 does.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from klein import Klein
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from s4d.admin.figures import FiguresBoard, ProcessFigures, ServerInfo
from s4d.admin.jsonapi import json_error
from s4d.engine import AdminFacade, StoreOverview
from s4d.util.duties import duty_holder
from s4d.util.histogram import HistogramSnapshot

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class MetricsAccess(NamedTuple):
    """Who may scrape ``/metrics``.

    :ivar enabled: False: ``503 Metrics disabled``.
    :ivar token: the bearer token a scrape must carry (None: none needed).
    :ivar networks: the client addresses allowed (empty: any).
    """

    enabled: bool = True
    token: str | None = None
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse_networks(cls, text: str | None) -> tuple[Network, ...]:
        """``"10.0.0.0/8, ::1"`` as networks (``ValueError`` for a bad one)."""
        items = [part.strip() for part in (text or "").split(",")]
        return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)

    def refusal(self, request: IRequest) -> tuple[int, bytes] | None:
        """Why ``request`` may not scrape (status and text), or None if it may."""
        if not self.enabled:
            return 503, b"Metrics disabled\n"
        if self.networks:
            host = getattr(request.getClientAddress(), "host", "")
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return 403, b"Forbidden\n"
            mapped = getattr(address, "ipv4_mapped", None)
            if mapped is not None:
                address = mapped
            if not any(address in network for network in self.networks):
                return 403, b"Forbidden\n"
        if self.token is not None:
            raw = request.getHeader(b"authorization") or b""
            expected = b"Bearer " + self.token.encode("utf-8")
            if not hmac.compare_digest(raw, expected):
                request.setHeader(b"WWW-Authenticate", b'Bearer realm="s4d metrics"')
                return 401, b"Unauthorized\n"
        return None


class MetricsSurface:
    """The ``/metrics`` route, mounted on the ops app.

    :param board: this process's figures and the other processes'.
    :param admin: the engine's admin facade (the storage figures).
    :param access: who may scrape.
    :param info: the server's version and shape.
    """

    app = Klein()
    app.handle_errors(Exception)(json_error)
    prefixes: tuple[bytes, ...] = (b"/metrics",)

    def __init__(
        self, board: FiguresBoard, admin: AdminFacade, access: MetricsAccess, info: ServerInfo
    ) -> None:
        self.board = board
        self.admin = admin
        self.access = access
        self.info = info

    def resource(self) -> IResource:
        """The Klein resource serving this surface."""
        served: IResource = self.app.resource()
        return served

    @app.route("/metrics", methods=["GET", "HEAD"])
    async def metrics(self, request: IRequest) -> bytes:
        """The exposition: text format 0.0.4, or what the ``Accept`` header asks for
        (OpenMetrics, text 1.0.0) as prometheus-client negotiates it."""
        refused = self.access.refusal(request)
        if refused is not None:
            status, body = refused
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        else:
            accept = request.getHeader(b"accept") or b""
            encoder, content_type = choose_encoder(accept.decode("latin-1"))
            overview = await self.admin.overview()
            body = encoder(registry_of(self.board.server(), overview, self.info))
            request.setHeader(b"Content-Type", content_type.encode("latin-1"))
        request.setHeader(b"Content-Length", str(len(body)).encode())
        return body


class _Fixed:
    """A collector over metric families built beforehand (one scrape's worth)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def registry_of(
    figures: ProcessFigures, overview: StoreOverview, info: ServerInfo
) -> CollectorRegistry:
    """A registry holding one scrape's metric families (for prometheus-client's encoders)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families(figures, overview, info)))
    return registry


def _histogram(family: HistogramMetricFamily, labels: list[str], h: HistogramSnapshot) -> None:
    buckets = [(floatToGoString(bound), float(n)) for bound, n in h.cumulative()]
    family.add_metric(labels, buckets, h.total)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def families(
    figures: ProcessFigures, overview: StoreOverview, info: ServerInfo
) -> Iterator[Metric]:
    """Every metric family of one scrape (see ``docs/operations.rst`` for each)."""
    build = GaugeMetricFamily("s4d_build_info", "s4d's version (always 1)", labels=["version"])
    build.add_metric([info.version], 1)
    yield build
    yield _gauge("s4d_start_time_seconds", "When the server started (epoch)", figures.started)
    yield _gauge("s4d_processes", "Server processes running and reporting", len(figures.live_pids))
    yield _gauge(
        "s4d_duties_pid", "The process running the background duties (0: none holds them now)",
        duty_holder(info.data_dir) or 0,
    )  # fmt: skip
    yield from _request_families(figures)
    yield _gauge("s4d_open_connections", "Client connections open", figures.connections)
    yield from _storage_families(overview)
    yield from _commit_families(figures)
    yield from _maintenance_families(figures)


def _request_families(figures: ProcessFigures) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "s4d_requests",
        "Requests answered, by operation and status (499: the client went away first)",
        labels=["operation", "status"],
    )
    for (operation, status), n in sorted(figures.requests.items()):
        requests.add_metric([operation, str(status)], n)
    yield requests
    latency = HistogramMetricFamily(
        "s4d_request_duration_seconds",
        "From a request's first byte to the end of its response, by operation",
        labels=["operation"],
    )
    for operation, histogram in sorted(figures.latency.items()):
        _histogram(latency, [operation], histogram)
    yield latency
    received = CounterMetricFamily(
        "s4d_received_bytes", "Request body bytes received, by operation", labels=["operation"]
    )
    for operation, n in sorted(figures.received.items()):
        received.add_metric([operation], n)
    yield received
    sent = CounterMetricFamily(
        "s4d_sent_bytes", "Response body bytes sent, by operation", labels=["operation"]
    )
    for operation, n in sorted(figures.sent.items()):
        sent.add_metric([operation], n)
    yield sent


def _storage_families(overview: StoreOverview) -> Iterator[Metric]:
    stats = overview.stats
    yield _gauge("s4d_buckets", "Buckets", overview.buckets)
    yield _gauge("s4d_objects", "Object versions holding data (noncurrent ones too)", stats.objects)
    yield _gauge("s4d_delete_markers", "Delete markers", stats.delete_markers)
    yield _gauge(
        "s4d_logical_bytes", "Sizes of those versions added up (what clients stored)",
        stats.logical_bytes,
    )  # fmt: skip
    yield _gauge(
        "s4d_unique_bytes", "Bytes of the distinct chunks (after dedup)", stats.unique_bytes
    )
    yield _gauge(
        "s4d_stored_bytes", "Bytes of those chunks as stored (after compression)",
        stats.stored_bytes,
    )  # fmt: skip
    yield _gauge("s4d_physical_bytes", "Bytes of the segment files", stats.physical_bytes)
    yield _gauge(
        "s4d_dead_bytes", "Bytes in segment files no longer referenced (compaction's work)",
        stats.dead_bytes,
    )  # fmt: skip
    yield _gauge("s4d_segments", "Segment files", len(stats.segments))
    yield _gauge("s4d_chunks", "Distinct chunks referenced", stats.chunks)
    yield _gauge("s4d_chunk_references", "References to those chunks", stats.refs)
    yield _gauge("s4d_released_chunks", "Chunks no longer referenced, awaiting compaction",
                 stats.released_chunks)  # fmt: skip
    yield _gauge("s4d_damaged_chunks", "Chunks recorded as damaged (never served)",
                 overview.damaged_chunks)  # fmt: skip
    yield _gauge("s4d_dedup_ratio", "Logical bytes per unique byte (1: no duplicates)",
                 stats.dedup_ratio)  # fmt: skip
    yield _gauge("s4d_compression_ratio", "Unique bytes per stored byte (1: no compression)",
                 stats.compression_ratio)  # fmt: skip


def _commit_families(figures: ProcessFigures) -> Iterator[Metric]:
    batches = HistogramMetricFamily(
        "s4d_commit_batch_operations", "Metadata changes per group commit transaction"
    )
    _histogram(batches, [], figures.commit_batches)
    yield batches
    commits = HistogramMetricFamily(
        "s4d_commit_duration_seconds", "Group commit transactions, from begin to synced commit"
    )
    _histogram(commits, [], figures.commit_seconds)
    yield commits
    fsyncs = HistogramMetricFamily(
        "s4d_segment_fsync_duration_seconds", "fdatasync of segment files"
    )
    _histogram(fsyncs, [], figures.fsync_seconds)
    yield fsyncs
    durable = HistogramMetricFamily(
        "s4d_commit_durable_wait_seconds",
        "From a group commit to its transaction being on disk (shared metadata sync)",
    )
    _histogram(durable, [], figures.durable_seconds)
    yield durable
    waits = CounterMetricFamily(
        "s4d_commit_durability_waits",
        "Waits for a committed transaction to be on disk, by what answered them: a metadata "
        "sync of their own (synced), this process's earlier commit or sync (here), another "
        "process's (elsewhere)",
        labels=["answer"],
    )
    for answer in ("synced", "here", "elsewhere"):
        key = "durability_synced" if answer == "synced" else f"durability_covered_{answer}"
        waits.add_metric([answer], figures.totals.get(key, 0))
    yield waits


#: maintenance counters: (metric name without _total, total's key, help)
MAINTENANCE_COUNTERS = (
    ("s4d_compaction_passes", "compaction_passes", "Compaction passes run (dry runs excepted)"),
    ("s4d_compaction_segments", "compaction_segments", "Segment files compaction deleted"),
    ("s4d_compaction_reclaimed_bytes", "compaction_bytes_reclaimed",
     "Bytes of the segment files compaction deleted"),
    ("s4d_compaction_copied_bytes", "compaction_bytes_copied",
     "Live bytes compaction copied out of them first"),
    ("s4d_compaction_purged_chunks", "compaction_chunks_purged",
     "Released chunks compaction dropped"),
    ("s4d_scrub_checked_chunks", "scrub_chunks", "Chunks the scrubber re-read and checked"),
    ("s4d_scrub_checked_bytes", "scrub_bytes", "Bytes the scrubber re-read and checked"),
    ("s4d_scrub_damaged_chunks", "scrub_damaged", "Chunks the scrubber found newly damaged"),
    ("s4d_scrub_passes", "scrub_passes", "Complete scrubber passes over every chunk"),
    ("s4d_lifecycle_examined", "lifecycle_examined", "Versions lifecycle passes examined"),
    ("s4d_lifecycle_expired", "lifecycle_expired", "Current versions lifecycle rules expired"),
    ("s4d_lifecycle_noncurrent_removed", "lifecycle_noncurrent_removed",
     "Noncurrent versions lifecycle rules removed"),
    ("s4d_lifecycle_markers_removed", "lifecycle_markers_removed",
     "Lone delete markers lifecycle rules removed"),
    ("s4d_lifecycle_uploads_aborted", "lifecycle_uploads_aborted",
     "Incomplete multipart uploads lifecycle rules aborted"),
    ("s4d_lifecycle_locked", "lifecycle_locked", "Versions lifecycle left alone: object lock"),
)  # fmt: skip


def _maintenance_families(figures: ProcessFigures) -> Iterator[Metric]:
    for name, key, documentation in MAINTENANCE_COUNTERS:
        yield _counter(name, documentation, figures.totals.get(key, 0))
    for name, last in (
        ("s4d_compaction_last_run_timestamp_seconds", figures.last_compaction),
        ("s4d_scrub_last_run_timestamp_seconds", figures.last_scrub),
    ):
        if last is not None:
            yield _gauge(name, "When the last run ended (epoch; absent: none yet)", last["at"])
