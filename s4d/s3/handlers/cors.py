"""CORS preflight: ``OPTIONS`` of a bucket or an object, answered as S3 answers it.

A browser's preflight carries no credentials, so it is answered before (and
without) any signature check. s4d keeps no CORS configuration yet
(``GET ?cors`` is ``NoSuchCORSConfiguration``), so no preflight is allowed;
the answers are S3's for a bucket without one: 400 ``BadRequest`` without an
``Origin`` header, otherwise 403 ``AccessForbidden`` (or, for a bucket that
does not exist, 403 "Bucket not found").
"""

from __future__ import annotations

from collections.abc import Iterator

from s4d.engine import BucketsFacade
from s4d.errors import S3Error
from s4d.s3.call import Response, S3Call
from s4d.s3.dispatch import Route, RouteKey, route


class CorsHandlers:
    """CORS preflight requests over the engine's bucket facade."""

    def __init__(self, buckets: BucketsFacade) -> None:
        self.buckets = buckets

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes: preflight of a bucket and of an object, without credentials."""
        for level in ("bucket", "object"):
            yield RouteKey("OPTIONS", level), route("PreflightRequest", self.preflight, public=True)

    async def preflight(self, call: S3Call) -> Response:
        """OPTIONS: refused as S3 refuses it for a bucket with no CORS configuration."""
        if not call.header("origin"):
            raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
        method = call.header("access-control-request-method") or "OPTIONS"
        try:
            await self.buckets.get(call.bucket)
        except S3Error as e:
            if e.code != "NoSuchBucket":
                raise
            raise S3Error("AccessForbidden", "CORSResponse: Bucket not found") from None
        raise S3Error(
            "AccessForbidden",
            "CORSResponse: CORS is not enabled for this bucket.",
            Method=method,
            ResourceType="BUCKET",
        )
