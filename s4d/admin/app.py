"""The Klein app for every non-S3 surface, and the rule that sends requests to it.

The S3 resource hands this app every request for a path :func:`is_ops_path`
claims (``/metrics`` and anything under ``/api/``, whatever credentials the
request carries: the admin API's bearer tokens are no S3 credentials), and
anonymous GETs and HEADs of :data:`PUBLIC_PATHS` (the health probes). That
rule lives here and only here; :func:`s4d.s3.assembly.build_s3_site` is given it.

:class:`OpsApp` answers the health probes itself and mounts *surfaces*: each a
Klein app of its own (the admin data routes of :mod:`s4d.admin.ops_api`,
``/metrics`` of :mod:`s4d.admin.metrics`, the users and login routes, the
console...) declaring the path prefixes it owns. A request goes to the surface
with the longest prefix that is its path or a parent of it; a path under
``/api/`` or ``/metrics`` that no surface owns is answered
``404 {"error": "no such route"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Protocol

from klein import Klein
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

#: Paths this app answers without S3 credentials (a signed request to them is S3's).
PUBLIC_PATHS = frozenset({b"/health", b"/minio/health/live", b"/minio/health/ready"})
#: Paths and the prefix this app answers whatever the request carries.
OPS_EXACT_PATHS = frozenset({b"/metrics"})
OPS_PREFIX = b"/api/"


def is_ops_path(raw_path: bytes) -> bool:
    """The ops app owns this path whatever credentials the request carries.

    So a bucket named ``api`` or ``metrics`` is reachable path-style only
    below these paths (``/metrics/key``), and always in virtual-host style.
    """
    return raw_path.startswith(OPS_PREFIX) or raw_path in OPS_EXACT_PATHS


class Surface(Protocol):
    """A group of routes mounted on the ops app."""

    #: the paths it owns: each prefix, and every path below it (``prefix/...``)
    prefixes: tuple[bytes, ...]

    def resource(self) -> IResource:
        """The resource serving them (a Klein app's)."""


class _Mounts(Resource):
    """Sends a request to the surface owning its path, or to the health app."""

    isLeaf = True

    def __init__(self, own: IResource, mounts: Sequence[tuple[bytes, IResource]]) -> None:
        super().__init__()
        self.own = own
        self.mounts = sorted(mounts, key=lambda m: len(m[0]), reverse=True)

    def render(self, request: Request) -> bytes | int:
        path: bytes = request.path
        for prefix, resource in self.mounts:
            if path == prefix or path.startswith(prefix + b"/"):
                rendered: bytes | int = resource.render(request)
                return rendered
        if is_ops_path(path):
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"application/json")
            return json.dumps({"error": "no such route"}, separators=(",", ":")).encode()
        rendered = self.own.render(request)
        return rendered


class OpsApp:
    """The health probes, and the surfaces mounted beside them.

    :param surfaces: the route groups to mount (admin API, metrics, ...).
    :param ready: whether this process is ready for traffic (the store is open
        and recovered, the server is not stopping).
    """

    app = Klein()

    def __init__(
        self, surfaces: Sequence[Surface] = (), ready: Callable[[], bool] = lambda: True
    ) -> None:
        self.surfaces = list(surfaces)
        self.ready_now = ready

    def resource(self) -> IResource:
        """The resource serving this app and its surfaces."""
        mounts = [(p, s.resource()) for s in self.surfaces for p in s.prefixes]
        return _Mounts(self.app.resource(), mounts)

    @app.route("/health", methods=["GET", "HEAD"])
    def health(self, request: Request) -> bytes:
        """200 with an empty body while the server runs."""
        return b""

    @app.route("/minio/health/live", methods=["GET", "HEAD"])
    def live(self, request: Request) -> bytes:
        """MinIO-compatible liveness probe: the process answers."""
        return b""

    @app.route("/minio/health/ready", methods=["GET", "HEAD"])
    def ready(self, request: Request) -> bytes:
        """MinIO-compatible readiness probe: 200 once recovered, 503 before and when stopping."""
        if not self.ready_now():
            request.setResponseCode(503)
        return b""
