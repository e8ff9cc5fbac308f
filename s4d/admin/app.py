"""The Klein app for every non-S3 surface.

One class-scoped :class:`~klein.Klein` app whose routes are methods with
``self``, so each surface gets its collaborators (the engine's facades, the
IAM store, ...) through the constructor. Today it answers the health probes;
``/api/admin``, ``/api/stats``, ``/metrics`` and ``/console`` are to be added
here. The S3 resource hands it every request that carries no S3 credentials
and names one of :data:`PUBLIC_PATHS`.
"""

from __future__ import annotations

from klein import Klein
from twisted.web.resource import IResource
from twisted.web.server import Request

#: Paths this app answers without S3 credentials.
PUBLIC_PATHS = frozenset({b"/health", b"/minio/health/live", b"/minio/health/ready"})


class OpsApp:
    """Health checks (admin API, stats, metrics and console to come)."""

    app = Klein()

    def resource(self) -> IResource:
        """The Klein resource serving this app."""
        served: IResource = self.app.resource()
        return served

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
