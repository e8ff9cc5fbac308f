"""The S3 front end: what the HTTP seam asks before a body arrives.

It authenticates a request from its headers (SigV4 header or query, SigV2
header or query), decides whether the request is an upload whose body should
stream, and builds the body sink.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from s4d.auth import sigv2, sigv4
from s4d.auth.request import CredentialSource, SignedRequest
from s4d.engine import Engine
from s4d.errors import S3Error
from s4d.features.objects import check_key
from s4d.s3.body import BodySink

#: Paths that answer without credentials (health checks and the like).
PUBLIC_PATHS = frozenset({b"/health", b"/minio/health/live", b"/minio/health/ready"})
#: Sub-resources under which a PUT with a key carries object data.
UPLOAD_PARAMS = frozenset({"partNumber", "uploadId"})


class StaticCredentials:
    """One access key and its secret (the server's root credentials)."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = dict(pairs)

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of ``access_key_id``."""
        return self.pairs.get(access_key_id)


class S3Front:
    """Authentication and body handling for one server."""

    def __init__(
        self,
        engine: Engine,
        credentials: CredentialSource,
        region: str = "us-east-1",
        domain: str | None = None,
        max_upload_size: int = 5 << 30,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Any = None,
    ) -> None:
        self.engine = engine
        self.credentials = credentials
        self.region = region
        self.domain = domain
        self.max_upload_size = max_upload_size
        self.now = now
        #: an ``IReactorTime`` for timers in handlers (keep-alive of long requests);
        #: None turns them off
        self.clock = clock

    def authenticate(self, req: Any) -> Any:
        """Verify the request's signature; None for an allowed anonymous request."""
        signed = SignedRequest.from_wire(req.method, req.uri, req.requestHeaders.getAllRawHeaders())
        authorization = signed.header("authorization")
        params = req.params
        now = self.now()
        if authorization:
            if authorization.startswith("AWS4-HMAC-SHA256"):
                return sigv4.verify_header(signed, self.credentials, now)
            if authorization.startswith("AWS "):
                return sigv2.verify_header(signed, self.credentials, now, self.v2_resource(req))
            raise S3Error("AuthorizationHeaderMalformed", "Unsupported authorization type.")
        if "X-Amz-Algorithm" in params or "X-Amz-Signature" in params:
            return sigv4.verify_presigned(signed, self.credentials, now)
        if "AWSAccessKeyId" in params or "Signature" in params:
            return sigv2.verify_presigned(signed, self.credentials, now, self.v2_resource(req))
        if req.method in (b"GET", b"HEAD") and req.raw_path in PUBLIC_PATHS:
            return None
        if is_form_upload(req):
            return None  # browser form upload: the policy is verified before the file is read
        raise S3Error("AccessDenied", "Anonymous access is not allowed.")

    def v2_resource(self, req: Any) -> str:
        """SigV2's resource path: ``/bucket/key`` even for virtual-host requests."""
        target = req.target
        if target is None:
            return "/"
        raw = req.raw_path.decode("utf-8", "surrogateescape")
        if target.virtual_host:
            return "/" + target.bucket + raw
        return raw

    def is_upload(self, req: Any) -> bool:
        """True for PutObject, UploadPart and POST Object: bodies that stream into the store."""
        target = req.target
        if is_form_upload(req):
            return True
        if req.method != b"PUT" or target is None or not target.bucket or not target.key:
            return False
        if req.header("x-amz-copy-source") is not None:
            return False
        from s4d.s3.dispatch import subresources

        subs = subresources(req.params)
        return not subs or subs == UPLOAD_PARAMS

    def new_sink(self, req: Any) -> Any:
        """A sink for this upload's body (a key S3 would refuse is refused before it)."""
        if is_form_upload(req):
            from s4d.s3.postform import FormUploadSink

            return FormUploadSink(self, req)
        check_key(req.target.key)
        return BodySink(self.engine, req, req.auth, self.max_upload_size)


def is_form_upload(req: Any) -> bool:
    """A POST of multipart/form-data to a bucket (browser form upload)."""
    target = req.target
    if req.method != b"POST" or target is None or not target.bucket or target.key or req.params:
        return False
    return (req.header("content-type") or "").lower().startswith("multipart/form-data")
