"""Putting the S3 layer together: handlers per area, their routes, the front end, the site.

This is the only module of :mod:`s4d.s3` that knows every area; the service
(and tests) build the S3 server through :func:`build_s3_site`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource

from s4d.auth.credentials import IdentitySource
from s4d.engine import Engine
from s4d.s3.app import S3Resource
from s4d.s3.dispatch import DispatchTable
from s4d.s3.front import S3Front
from s4d.s3.handlers.access import AccessHandlers
from s4d.s3.handlers.bucket import BucketHandlers
from s4d.s3.handlers.cors import CorsHandlers
from s4d.s3.handlers.lifecycle import LifecycleHandlers
from s4d.s3.handlers.listing import ListingHandlers
from s4d.s3.handlers.lock import LockHandlers
from s4d.s3.handlers.multipart import MultipartHandlers
from s4d.s3.handlers.objects import ObjectHandlers
from s4d.s3.handlers.rename import RenameHandlers
from s4d.s3.handlers.select import SelectHandlers
from s4d.s3.handlers.tagging import TaggingHandlers
from s4d.s3.request import ConnectionLimits, S3Site
from s4d.sql.queries import QueryService
from s4d.util.served import RequestObserver


def default_table(
    engine: Engine,
    region: str,
    clock: IReactorTime | None,
    cors: CorsHandlers | None = None,
    queries: QueryService | None = None,
) -> DispatchTable:
    """The dispatch table with every S3 operation s4d implements.

    :param queries: runs S3 Select and ``?sql`` (None: those answer NotImplemented).
    """
    table = DispatchTable()
    areas = (
        BucketHandlers(engine.buckets, region),
        AccessHandlers(engine.buckets, engine.objects),
        ListingHandlers(engine.objects),
        ObjectHandlers(engine.objects, engine.lifecycle),
        MultipartHandlers(engine.multipart, clock, engine.lifecycle),
        RenameHandlers(engine.renames),
        TaggingHandlers(engine.objects, engine.buckets),
        LockHandlers(engine.locks),
        LifecycleHandlers(engine.buckets),
        cors or CorsHandlers(engine.buckets),
        SelectHandlers(queries),
    )
    for area in areas:
        for key, found in area.routes():
            table.add(key, found)
    return table


def build_s3_site(
    engine: Engine,
    credentials: IdentitySource,
    *,
    ops: IResource,
    public_paths: frozenset[bytes] = frozenset(),
    ops_paths: Callable[[bytes], bool] | None = None,
    observer: RequestObserver | None = None,
    region: str = "us-east-1",
    domain: str | None = None,
    max_upload_size: int = 5 << 30,
    clock: IReactorTime | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    limits: ConnectionLimits | None = None,
    queries: QueryService | None = None,
    anonymous: bool = True,
    **site_options: Any,
) -> S3Site:
    """The S3 site over ``engine``.

    :param credentials: access keys, who holds them, who owns buckets (the users store).
    :param ops: the resource for requests that are not S3 (the Klein app for health
        checks, metrics and the admin API), which answers ``public_paths`` (anonymous
        GET and HEAD) and every path ``ops_paths`` claims (see
        :class:`~s4d.s3.front.S3Front`).
    :param observer: told about every answered request (metrics, access log).
    :param clock: timers in handlers (keep-alive of long completions); None turns them off.
    :param now: the wall clock signatures are checked against.
    :param queries: the query service of S3 Select and ``?sql`` (None: not offered).
    :param anonymous: serve unsigned requests that a policy or ACL grants (S4_ANONYMOUS).
    :param site_options: passed to twisted.web's ``Site`` (``reactor``: the clock
        for connection timeouts).
    """
    cors = CorsHandlers(engine.buckets)
    table = default_table(engine, region, clock, cors, queries)
    front = S3Front(
        table,
        engine.objects,
        credentials,
        domain,
        max_upload_size,
        now,
        public_paths,
        ops_paths,
        anonymous=anonymous,
    )
    site = S3Site(S3Resource(ops, cors), front, limits=limits, **site_options)
    site.cors_now = cors.actual_now
    site.displayTracebacks = False
    site.observer = observer
    return site
