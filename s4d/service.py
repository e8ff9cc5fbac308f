"""The composition root: thread pool, store, engine, S3 site and its listening port."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet.defer import (
    Deferred,
    ensureDeferred,
    gatherResults,
    maybeDeferred,
    succeed,
)
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from s4d import __version__
from s4d.admin.access_log import AccessLog, open_access_log
from s4d.admin.app import PUBLIC_PATHS, OpsApp, Surface, is_ops_path
from s4d.admin.bearer import JwtGuard
from s4d.admin.figures import (
    PUBLISH_INTERVAL,
    FiguresBoard,
    RequestFigures,
    ServerInfo,
    reset_directory,
)
from s4d.admin.guard import AdminGuard
from s4d.admin.metrics import MetricsAccess, MetricsSurface
from s4d.admin.ops_api import OpsApi
from s4d.admin.throttle import LoginThrottle
from s4d.admin.users import IdentityApi
from s4d.auth.credentials import UserCredentials
from s4d.auth.tokens import TokenIssuer
from s4d.config import Config, ConfigError
from s4d.engine import (
    DAY_NS,
    Engine,
    EngineFigures,
    IdentityError,
    LifecycleLimits,
    MultipartFacade,
)
from s4d.listening import CannotListen, ListeningService
from s4d.s3.assembly import build_s3_site
from s4d.s3.request import ConnectionLimits, S3Site
from s4d.sql.queries import Limits, QueryService
from s4d.store.store import Store, StoreConfig
from s4d.util.duties import DutyLock
from s4d.util.eventlog import TwistedEventLog
from s4d.util.keyfiles import read_or_create
from s4d.util.memory import tune_gc, tune_malloc
from s4d.util.periodic import PeriodicService
from s4d.util.threads import ExecutorRunner, FutureBridge
from s4d.workers import AdoptedPort, WorkerPool, drain

log = Logger()


def endpoint_description(config: Config) -> str:
    """The strports description of the listening endpoint."""
    host = config.host.replace(":", "\\:")
    if config.tls_cert and config.tls_key:
        return (
            f"ssl:{config.port}:interface={host}:privateKey={config.tls_key}"
            f":certKey={config.tls_cert}"
        )
    return f"tcp:{config.port}:interface={host}"


#: How often the reactor thread's shared read transaction is ended (at most this old,
#: it pins the LMDB pages later commits free; the next read opens a new one).
SNAPSHOT_RELEASE_SECONDS = 0.25


class StoreService(service.Service):
    """Opens the store, thread pools, engine and query service on start; closes them on stop."""

    def __init__(self, config: Config, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.runner: ExecutorRunner | None = None
        self.store: Store | None = None
        self.engine: Engine | None = None
        #: S3 Select and ?sql, on their own threads (None when S4_SELECT_ENABLED is off)
        self.queries: QueryService | None = None
        self.query_runner: ExecutorRunner | None = None
        #: ends the reactor thread's shared read transaction now and then (see
        #: :mod:`s4d.store.snapshot`): a snapshot kept open would pin old pages
        self.snapshot_release: LoopingCall | None = None

    def open(self) -> Engine:
        """Open the data directory (idempotent); the engine over it."""
        if self.engine is None:
            c = self.config
            self.store = Store(
                StoreConfig(
                    data_dir=c.data_dir,
                    segment_size=c.segment_size,
                    chunk_size=c.chunk_size,
                    map_size=c.map_size,
                    compression=c.compression,
                    compression_level=c.compression_level,
                    fsync=c.fsync,
                ),
                events=TwistedEventLog(Logger(namespace="s4d.store")),
            )
            orphans = sum(self.store.recovery.orphan_bytes.values())
            if orphans:
                log.info("Recovery: {n} uncommitted bytes left for compaction", n=orphans)
            self.runner = ExecutorRunner(
                FutureBridge(self.reactor.callFromThread), max(2, c.threads)
            )
            day = c.lifecycle.get("day_secs")
            self.engine = Engine(
                self.store,
                self.runner,
                self.reactor.callFromThread,
                lifecycle_day_ns=int(day * 1e9) if day else DAY_NS,
            )
            if c.select_enabled:
                self.query_runner = ExecutorRunner(
                    FutureBridge(self.reactor.callFromThread),
                    max(1, c.select_concurrency),
                    name="s4d-sql",
                )
                self.queries = QueryService(
                    self.engine.objects,
                    self.query_runner,
                    self.reactor.callFromThread,
                    Limits(
                        max_memory=c.select_max_memory,
                        timeout=c.select_timeout,
                        concurrency=max(1, c.select_concurrency),
                    ),
                )
        return self.engine

    def startService(self) -> None:
        """Open the store (if not yet open)."""
        super().startService()  # type: ignore[no-untyped-call]
        self.open()
        assert self.store is not None
        self.store.snapshots.enable()
        self.snapshot_release = LoopingCall(self.store.snapshots.release)
        self.snapshot_release.clock = self.reactor
        self.snapshot_release.start(SNAPSHOT_RELEASE_SECONDS, now=False)

    def stopService(self) -> None:
        """Cancel running queries, stop the worker threads and close the store."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self.snapshot_release is not None and self.snapshot_release.running:
            self.snapshot_release.stop()
        self.snapshot_release = None
        if self.store is not None:
            self.store.snapshots.enable(False)
        if self.queries is not None and self.query_runner is not None:
            self.queries.stop()  # cancelled queries never wait for the reactor again
            self.query_runner.stop()
            self.queries = self.query_runner = None
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        if self.store is not None:
            self.store.close()
            self.store = None
            self.engine = None


#: Hours a completed upload answers a repeated Complete when uploads never expire (TTL 0).
COMPLETED_KEPT_HOURS = 24.0


def multipart_expiry(config: Config, multipart: MultipartFacade, clock: Any) -> PeriodicService:
    """The periodic job that aborts old multipart uploads and forgets old completed ones.

    Uploads initiated more than the configured TTL ago are aborted; uploads
    completed more than the TTL ago stop answering a repeated Complete (with a
    TTL of 0 uploads never expire, and completed ones are forgotten after
    :data:`COMPLETED_KEPT_HOURS`). It looks every quarter of that time (at
    most hourly, at least every half second).
    """
    ttl = config.multipart_ttl_hours * 3600
    kept = ttl if ttl > 0 else COMPLETED_KEPT_HOURS * 3600
    max_age_ns = int(kept * 1e9)

    async def expire() -> None:
        if ttl > 0:
            count = await multipart.expire(max_age_ns)
            if count:
                log.info("Expired {n} abandoned multipart uploads", n=count)
        forgotten = await multipart.forget_completed(max_age_ns)
        if forgotten:
            log.debug("Forgot {n} completed multipart uploads", n=forgotten)

    return PeriodicService(
        clock,
        min(3600.0, max(0.5, kept / 4)),
        lambda: ensureDeferred(expire()),
        "multipart-expiry",
        run_at_start=True,
    )


def compaction_service(config: Config, engine: Engine, clock: Any) -> PeriodicService | None:
    """The periodic compaction pass (S4_COMPACTION_*); None when disabled.

    Runs every ``interval_hours``, the first time one interval after start;
    ``dry_run`` only logs what a pass would do.
    """
    settings = config.compaction
    if not settings.get("enabled", True):
        return None
    interval = max(1.0, float(settings.get("interval_hours", 6)) * 3600)

    async def compact() -> None:
        report = await engine.maintenance.compact(
            threshold=float(settings.get("threshold", 0.3)),
            dry_run=bool(settings.get("dry_run", False)),
            grace=float(settings.get("grace_secs", 3600)),
            rate=settings.get("rate") or None,
        )
        if report.segments:
            log.info("Compaction: {summary}", summary=report.summary())
        _log_damage(report.damaged)

    return PeriodicService(clock, interval, lambda: ensureDeferred(compact()), "compaction")


def scrub_service(config: Config, engine: Engine, clock: Any) -> PeriodicService | None:
    """The background scrubber: every ``interval_secs`` it checks what ``rate`` allows.

    Each run reads at most ``rate * interval_secs / 2`` bytes, paced to ``rate``,
    so it is busy at most half the time; the whole store is covered over many runs.
    """
    settings = config.scrub
    if not settings.get("enabled", True):
        return None
    interval = max(1.0, float(settings.get("interval_secs", 600)))
    rate = float(settings.get("rate") or (16 << 20))

    async def scrub() -> None:
        report = await engine.maintenance.scrub(int(rate * interval / 2), rate)
        _log_damage(report.damaged)

    return PeriodicService(clock, interval, lambda: ensureDeferred(scrub()), "scrub")


def lifecycle_service(config: Config, engine: Engine, clock: Any) -> PeriodicService | None:
    """The lifecycle worker (S4_LIFECYCLE_*); None when disabled.

    It looks every ``min(interval, 10 min)`` whether a pass is due: one is when
    the last began ``interval_hours`` ago (the time is kept in the store, so a
    restart does not reset it) or when one was cut short (a shutdown, a crash),
    which then resumes from its saved position. Each pass logs one line.
    """
    settings = config.lifecycle
    if not settings.get("enabled", True):
        return None
    interval = max(0.1, float(settings.get("interval_hours", 24)) * 3600)
    dry_run = bool(settings.get("dry_run", False))
    limits = LifecycleLimits(examine=max(1, int(settings.get("batch", 1000))))
    pause_secs = float(settings.get("pause_secs", 0.01) or 0)

    def pause() -> Deferred[None]:
        return deferLater(clock, pause_secs, lambda: None)

    async def sweep() -> None:
        report = await engine.lifecycle.run_if_due(
            int(interval * 1e9), dry_run, limits, pause if pause_secs > 0 else None
        )
        if report is None:
            return
        log.info(
            "Lifecycle pass {outcome}{dry}: {buckets} buckets, {rules} rules, {examined} versions "
            "and uploads examined, {expired} current versions expired, {noncurrent_removed} "
            "noncurrent versions removed, {markers_removed} delete markers removed, "
            "{uploads_aborted} uploads aborted, {locked} skipped (locked), {changed} changed "
            "meanwhile, {duration} s",
            outcome="ended" if report.complete else "stopped",
            dry=" (dry run)" if dry_run else "",
            lifecycle=report.fields(),
            **report.fields(),
        )

    return PeriodicService(
        clock, min(interval, 600.0), lambda: ensureDeferred(sweep()), "lifecycle", run_at_start=True
    )


def _log_damage(damaged: list[Any]) -> None:
    for item in damaged:
        log.error(
            "Damaged chunk {digest} in segment {segment} at offset {offset} ({reason}); "
            "objects that need it fail to read: {keys}",
            digest=item.digest[:16],
            segment=item.segment,
            offset=item.offset,
            reason=item.reason,
            keys=", ".join(item.keys) or "none",
        )


class _StopSignal(service.Service):
    """Stopped first (added last): tells background passes in flight to end early."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        self.engine.stop()


#: The generated admin token signing key, in the data directory (when S4_JWT_SECRET is unset).
JWT_SECRET_FILE = "jwt.secret"


def token_issuer(config: Config, now: Callable[[], float]) -> TokenIssuer:
    """Signs admin API tokens with S4_JWT_SECRET, or a key generated once and kept."""
    if config.jwt_secret:
        secret = config.jwt_secret.encode()
    else:
        path = os.path.join(config.data_dir, JWT_SECRET_FILE)
        secret = read_or_create(path, lambda: secrets.token_urlsafe(48).encode())
    return TokenIssuer(secret, config.jwt_lifetime_hours * 3600, now)


def set_up_root(config: Config, engine: Engine) -> None:
    """Create or update the root user from the configuration (main process, at start)."""
    try:
        root = engine.users.set_up_root(config.root_username, config.root_password)
    except IdentityError as e:
        raise ConfigError(e.message) from None
    log.info(
        "Root user {name}{login}",
        name=root.username,
        login=" (admin API login enabled)" if root.password_hash else "",
    )


def build_site(
    config: Config,
    engine: Engine,
    reactor: Any,
    telemetry: OpsTelemetry | None = None,
    queries: QueryService | None = None,
) -> S3Site:
    """The S3 site over ``engine``, with the ops app beside it (one per process).

    :param telemetry: this process's figures and access log (made here if not given).
    :param queries: answers S3 Select and ``?sql`` (None: they are not offered).
    """
    if telemetry is None:
        telemetry = OpsTelemetry(config, engine, reactor)
    engine.directory.configure_root_key(config.access_key, config.secret_key)
    site = build_s3_site(
        engine,
        UserCredentials(engine.directory),
        ops=ops_app(config, engine, reactor, telemetry).resource(),
        public_paths=PUBLIC_PATHS,
        ops_paths=is_ops_path,
        observer=telemetry.requests,
        region=config.region,
        domain=config.domain,
        max_upload_size=config.max_upload_size,
        clock=reactor,
        limits=connection_limits(config),
        queries=queries,
        anonymous=config.anonymous,
        reactor=reactor,
    )
    telemetry.board.connections = lambda: len(site.channels)
    return site


def connection_limits(config: Config) -> ConnectionLimits:
    """The connection hygiene settings (S4_IDLE_TIMEOUT and friends; a timeout of 0 is off)."""

    def seconds(value: float) -> float | None:
        return value if value > 0 else None

    return ConnectionLimits(
        idle_timeout=seconds(config.idle_timeout),
        header_timeout=seconds(config.header_timeout),
        body_timeout=seconds(config.body_timeout),
        body_min_rate=config.body_min_rate,
        max_header_bytes=config.max_header_bytes,
        max_connections=max(1, config.max_connections),
    )


def duty_services(config: Config, engine: Engine, clock: Any) -> list[service.Service]:
    """The background duties: multipart expiry, compaction, scrubbing, lifecycle (those enabled).

    They run in one process of the server at a time (:class:`DutyHolder`).
    """
    jobs: list[service.Service | None] = [
        multipart_expiry(config, engine.multipart, clock),
        compaction_service(config, engine, clock),
        scrub_service(config, engine, clock),
        lifecycle_service(config, engine, clock),
    ]
    return [job for job in jobs if job is not None]


#: how often a process that does not run the duties tries to take them (seconds)
DUTY_RETRY = 1.0


class DutyHolder(service.Service):
    """Runs the background duties while this process holds the duty lock.

    It tries to take the lock (:class:`s4d.util.duties.DutyLock`) when it starts
    (unless ``try_at_start`` is off) and every :data:`DUTY_RETRY` seconds after,
    when ``eligible()`` says this process may; once it holds the lock it starts
    the duties and keeps them until it stops (or dies: the kernel then releases
    the lock for another process).
    """

    def __init__(
        self,
        lock: DutyLock,
        duties: list[service.Service],
        clock: Any,
        eligible: Callable[[], bool] = lambda: True,
        try_at_start: bool = True,
    ) -> None:
        self.lock = lock
        self.duties = service.MultiService()  # type: ignore[no-untyped-call]
        for duty in duties:
            duty.setServiceParent(self.duties)  # type: ignore[no-untyped-call]
        self.eligible = eligible
        self.try_at_start = try_at_start
        self.loop = LoopingCall(self.try_to_hold)
        self.loop.clock = clock

    def try_to_hold(self) -> bool:
        """Take the lock and start the duties if nobody holds it; True if this process does."""
        if self.lock.held:
            return True
        if not self.eligible():
            return False
        try:
            if not self.lock.try_acquire():
                return False
        except OSError as e:
            log.warn("Cannot take the duty lock {path}: {error}", path=self.lock.path, error=e)
            return False
        log.info(
            "This process (pid {pid}) runs the background duties (holds {path})",
            pid=os.getpid(),
            path=self.lock.path,
        )
        self.duties.startService()  # type: ignore[no-untyped-call]
        self.loop.stop()
        return True

    def startService(self) -> None:
        """Take the lock now (if ``try_at_start``) and keep trying."""
        super().startService()  # type: ignore[no-untyped-call]
        self.loop.start(DUTY_RETRY, now=self.try_at_start)

    def stopService(self) -> Deferred[None]:
        """Stop the duties (waiting for a pass in flight) and let the lock go."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self.loop.running:
            self.loop.stop()
        if not self.duties.running:
            self.lock.release()
            return succeed(None)
        stopped: Deferred[None] = maybeDeferred(self.duties.stopService)
        stopped.addBoth(lambda _: self.lock.release())
        return stopped


class Serving(service.Service):
    """The port (``inner``) and its connections: on stop, no new ones, and those open finish.

    Stopping stops ``inner`` (no more accepting, and in the main process the
    workers told to stop and waited for) while this process's own connections
    finish their requests (:func:`s4d.workers.drain`, within S4_SHUTDOWN_TIMEOUT).
    """

    def __init__(self, inner: service.Service, site: S3Site, config: Config, clock: Any) -> None:
        self.inner = inner
        self.site = site
        self.timeout = config.shutdown_timeout
        self.clock = clock

    def startService(self) -> None:
        """Start ``inner`` (raises :class:`CannotListen` if the port cannot be opened)."""
        self.inner.startService()  # type: ignore[no-untyped-call]
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> Deferred[Any]:
        """Stop accepting; fires once the connections and ``inner`` are done."""
        super().stopService()  # type: ignore[no-untyped-call]
        stopped = maybeDeferred(self.inner.stopService)
        return gatherResults([stopped, drain(self.site, self.clock, self.timeout)])


def make_service(config: Config, reactor: Any = None) -> service.MultiService:
    """Build the whole server as one service (the main process)."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    tune_malloc()
    reactor.callWhenRunning(tune_gc)
    root = _Root()  # type: ignore[no-untyped-call]
    store_service = StoreService(config, reactor)
    store_service.setServiceParent(root)  # type: ignore[no-untyped-call]
    engine = store_service.open()
    set_up_root(config, engine)
    telemetry = OpsTelemetry(config, engine, reactor, main=True)
    site = build_site(config, engine, reactor, telemetry, store_service.queries)
    _TelemetryService(telemetry).setServiceParent(root)  # type: ignore[no-untyped-call]
    announce = _announcer(config)
    inner: service.Service
    lock = DutyLock(config.data_dir)
    if config.workers > 1:
        pool = WorkerPool(config, site, reactor, on_listening=announce)
        inner = pool
        # The duties go to a worker (whose death hands them to another); this
        # process takes them only while no worker runs.
        duties = DutyHolder(
            lock,
            duty_services(config, engine, reactor),
            reactor,
            eligible=lambda: bool(pool.running) and pool.live() == 0,
            try_at_start=False,
        )
    else:
        inner = ListeningService(
            reactor, endpoint_description(config), site, config.host, config.port, announce
        )
        duties = DutyHolder(lock, duty_services(config, engine, reactor), reactor)
    duties.setServiceParent(root)  # type: ignore[no-untyped-call]
    Serving(inner, site, config, reactor).setServiceParent(root)  # type: ignore[no-untyped-call]
    _StopSignal(engine).setServiceParent(root)  # type: ignore[no-untyped-call]
    return root


def make_worker_service(config: Config, reactor: Any, index: int) -> service.MultiService:
    """One worker process's server: it serves the inherited socket, and may hold the duties."""
    root = _Root()  # type: ignore[no-untyped-call]
    store_service = StoreService(config, reactor)
    store_service.setServiceParent(root)  # type: ignore[no-untyped-call]
    engine = store_service.open()
    telemetry = OpsTelemetry(config, engine, reactor)
    site = build_site(config, engine, reactor, telemetry, store_service.queries)
    _TelemetryService(telemetry).setServiceParent(root)  # type: ignore[no-untyped-call]
    DutyHolder(  # type: ignore[no-untyped-call]
        DutyLock(config.data_dir), duty_services(config, engine, reactor), reactor
    ).setServiceParent(root)
    port = AdoptedPort(config, site, reactor, index)
    Serving(port, site, config, reactor).setServiceParent(root)  # type: ignore[no-untyped-call]
    _StopSignal(engine).setServiceParent(root)  # type: ignore[no-untyped-call]
    return root


class _Root(service.MultiService):
    """The whole server: if the port cannot be opened, what started is stopped again.

    Its services stop one after the other, the last started first, each once
    the one before has finished: the port and its connections (which drain),
    then the duties (a pass in flight ends), the figures, and the store last,
    which nothing uses any more by then.
    """

    def startService(self) -> None:
        try:
            super().startService()  # type: ignore[no-untyped-call]
        except CannotListen:
            self.stopService()
            raise

    def stopService(self) -> Deferred[None]:
        """Stop the services in reverse order, each after the one before has finished."""
        service.Service.stopService(self)  # type: ignore[no-untyped-call]

        async def one_by_one() -> None:
            for child in reversed(list(self)):
                if not child.running:
                    continue
                try:
                    await maybeDeferred(child.stopService)
                except Exception:  # noqa: BLE001 - the others still stop
                    log.failure("Stopping {service} failed", service=child)

        return ensureDeferred(one_by_one())


def _announcer(config: Config) -> Callable[[], None]:
    """What to log once the port is open: where s4d serves, and whose keys it takes."""

    def announce() -> None:
        scheme = "https" if config.tls_cert else "http"
        log.info(
            "s4d serving S3 on {scheme}://{host}:{port} with data in {data}",
            scheme=scheme,
            host=config.host,
            port=config.port,
            data=config.data_dir,
        )
        if config.credentials_generated:
            log.info(
                "Credentials generated and kept in {path} (access key {ak}; the secret key "
                "is in that file)",
                path=config.credentials_file,
                ak=config.access_key,
            )
        elif config.credentials_file:
            log.info(
                "Using the credentials kept in {path} (access key {ak})",
                path=config.credentials_file,
                ak=config.access_key,
            )
        else:
            log.info("Using the configured credentials (access key {ak})", ak=config.access_key)

    return announce


# -- the ops surfaces: admin API, metrics, access log ------------------------------------


def figures_directory(config: Config) -> str | None:
    """Where the processes publish their figures for each other (None: one process)."""
    if config.workers <= 1:
        return None
    return os.path.join(config.data_dir, "run", "figures")


def engine_figures(engine: Engine) -> EngineFigures:
    """The engine's figures for the metrics, lifecycle totals among the maintenance totals."""
    figures = engine.maintenance.figures()
    totals = dict(figures.totals)
    for name, value in engine.lifecycle.totals.items():
        totals[f"lifecycle_{name}"] = value
    return figures._replace(totals=totals)


class OpsTelemetry:
    """One process's running figures, their publication for the other processes, its access log.

    :param main: this is the main process: it empties the figures directory first.
    """

    def __init__(self, config: Config, engine: Engine, clock: Any, main: bool = False) -> None:
        opened = open_access_log(config.access_log, clock)
        self.access_log: AccessLog | None = opened[0] if opened else None
        self._close_access_log = opened[1] if opened else None
        self.requests = RequestFigures([self.access_log] if self.access_log else [])
        directory = figures_directory(config)
        if directory is not None and main:
            reset_directory(directory)
        self.board = FiguresBoard(
            self.requests,
            lambda: engine_figures(engine),
            lambda: 0,
            clock.seconds(),
            directory,
        )
        self.publisher: LoopingCall | None = None
        if directory is not None:
            self.publisher = LoopingCall(self._publish)
            self.publisher.clock = clock

    def _publish(self) -> None:
        try:
            self.board.publish()
        except Exception:  # noqa: BLE001 - the next round tries again
            log.failure("Could not publish this process's figures")

    def start(self) -> None:
        """Start publishing (with several processes)."""
        if self.publisher is not None and not self.publisher.running:
            self.publisher.start(PUBLISH_INTERVAL, now=True)

    def stop(self) -> None:
        """Publish a last time; write out the access log."""
        if self.publisher is not None and self.publisher.running:
            self.publisher.stop()
            self._publish()
        if self._close_access_log is not None:
            self._close_access_log()
            self._close_access_log = None


class _TelemetryService(service.Service):
    def __init__(self, telemetry: OpsTelemetry) -> None:
        self.telemetry = telemetry

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.telemetry.start()

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        self.telemetry.stop()


def admin_guard(config: Config, engine: Engine, issuer: TokenIssuer) -> AdminGuard:
    """Who may call the admin API: a bearer token of ``issuer``'s, of an active user."""
    return JwtGuard(issuer, engine.directory)


def metrics_access(config: Config) -> MetricsAccess:
    """Who may scrape ``/metrics`` (S4_METRICS_*)."""
    return MetricsAccess(
        config.metrics_enabled,
        config.metrics_token,
        MetricsAccess.parse_networks(config.metrics_allow),
    )


def ops_app(
    config: Config,
    engine: Engine,
    reactor: Any,
    telemetry: OpsTelemetry,
    guard: AdminGuard | None = None,
) -> OpsApp:
    """The ops app: health probes, the admin API's data and identity routes, ``/metrics``.

    :param guard: who may call the admin API (default: :func:`admin_guard`).
    """
    info = ServerInfo(__version__, config.data_dir, config.workers, config.region)
    issuer = token_issuer(config, reactor.seconds)
    if guard is None:
        guard = admin_guard(config, engine, issuer)
    surfaces: list[Surface] = [
        OpsApi(
            engine,
            guard,
            telemetry.board,
            info,
            config.compaction,
            config.scrub,
            lambda: float(reactor.seconds()),
        ),
        MetricsSurface(telemetry.board, engine.admin, metrics_access(config), info),
        IdentityApi(engine.users, guard, issuer, LoginThrottle(reactor.seconds)),
    ]
    return OpsApp(surfaces, ready=lambda: not engine.core.stopping.is_set())
