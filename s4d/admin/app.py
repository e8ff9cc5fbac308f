"""The Klein app for every non-S3 surface.

One class-scoped :class:`~klein.Klein` app whose routes are methods with
``self``, so each surface gets its collaborators (the engine's facades, the
IAM store, ...) through the constructor. It answers the health probes itself;
surfaces with an app of their own are mounted at their path prefixes
(:mod:`s4d.admin.mounts`): identity (login, users, keys) is
:class:`s4d.admin.users.IdentityApi`. The S3 resource hands it every request
that carries no S3 credentials and names one of :data:`PUBLIC_PATHS` (GET or
HEAD) or a path under :data:`OPS_PREFIXES` (any method). An unknown path under
``/api/`` is answered in JSON, never as an S3 error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.server import Request
from werkzeug.exceptions import NotFound

from s4d.admin.jsonapi import error_body
from s4d.admin.mounts import Mounted

#: Paths this app answers without S3 credentials.
PUBLIC_PATHS = frozenset({b"/health", b"/minio/health/live", b"/minio/health/ready"})
#: Path prefixes (path style, any method) that belong to this app, not to S3.
OPS_PREFIXES = (b"/api/",)


class OpsApp:
    """Health checks, and the admin surfaces mounted beside them.

    :param mounts: ``(path prefixes, resource)`` of surfaces with an app of their own.
    """

    app = Klein()

    def __init__(self, mounts: Sequence[tuple[Sequence[bytes], IResource]] = ()) -> None:
        self.mounts = tuple(mounts)

    def resource(self) -> IResource:
        """The resource serving this app and its mounted surfaces."""
        served: IResource = self.app.resource()
        return Mounted(served, self.mounts) if self.mounts else served

    @app.handle_errors(NotFound)
    def not_found(self: Any, request: IRequest, failure: Failure) -> bytes:
        """404: in JSON under ``/api/`` (the admin API never answers otherwise)."""
        assert isinstance(request, Request)
        if request.path.startswith(OPS_PREFIXES):
            return error_body(request, 404, "no such admin route")
        request.setResponseCode(404)
        return b"Not Found"

    @app.route("/health", methods=["GET", "HEAD"])
    def health(self, request: Request) -> bytes:
        """200 with an empty body while the server runs."""
        return b""

    @app.route("/minio/health/live", methods=["GET", "HEAD"])
    def live(self, request: Request) -> bytes:
        """MinIO-compatible liveness probe."""
        return b""

    @app.route("/minio/health/ready", methods=["GET", "HEAD"])
    def ready(self, request: Request) -> bytes:
        """MinIO-compatible readiness probe."""
        return b""
