"""The S3 front end: everything decided when a request's headers are in.

:meth:`S3Front.prepare` authenticates the request (SigV4 header or query,
SigV2 header or query, or an anonymous form upload whose policy is checked
later), finds its :class:`~s4d.s3.dispatch.Route` in the dispatch table,
authorizes the caller for the route's action on the bucket
(:func:`s4d.auth.access.authorize`: role and ownership), and builds the
:class:`~s4d.s3.call.S3Call` with the body the route asks for: a streaming
:class:`~s4d.s3.body.BodySink`, a form upload sink, or a small in-memory
document. Whatever is refused here is refused before the body is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import unquote

from s4d.auth import sigv2, sigv4
from s4d.auth.access import authorize
from s4d.auth.credentials import IdentitySource
from s4d.auth.principal import SUPERUSER, Principal
from s4d.auth.request import SignedRequest
from s4d.auth.sigv4 import AuthResult
from s4d.engine import ObjectsFacade, check_key
from s4d.errors import S3Error
from s4d.s3.addressing import Target
from s4d.s3.body import BodySink
from s4d.s3.call import MAX_SMALL_BODY, S3Call, SmallBody
from s4d.s3.dispatch import BodyMode, DispatchTable, Route, subresources
from s4d.s3.headers import CallHeaders
from s4d.s3.objectlock import LOCK_HEADER_PREFIXES, screen_lock_headers
from s4d.s3.postform import FormUploadSink
from s4d.util.numbers import decimal


class StaticCredentials:
    """Fixed key pairs, each a SuperUser of its own (tests and benchmarks; no users store).

    Buckets have no recorded owner here: every key may use every bucket.
    """

    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = dict(pairs)
        self.principals = {ak: Principal.of(ak, "s4d", SUPERUSER) for ak in self.pairs}

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of ``access_key_id``."""
        return self.pairs.get(access_key_id)

    def principal_for(self, access_key_id: str) -> Principal | None:
        """The SuperUser holding ``access_key_id``."""
        return self.principals.get(access_key_id)

    def principal_of(self, user_id: str) -> Principal | None:
        """The SuperUser whose id is ``user_id`` (its access key)."""
        return self.principals.get(user_id)

    def bucket_owner(self, bucket: str) -> str | None:
        """No owners are recorded."""
        return None


#: Operations whose source (``x-amz-copy-source``) is read from a bucket too.
COPY_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy"})


class WireRequest(NamedTuple):
    """What the HTTP seam knows of a request when its headers are in."""

    method: str
    uri: bytes
    raw_path: bytes
    params: Mapping[str, str]
    headers: CallHeaders
    raw_headers: Mapping[bytes, Sequence[bytes]]
    target: Target
    request_id: str = ""
    host_id: str = ""
    secure: bool = False


class Prepared(NamedTuple):
    """A request ready for its body: the call record and the route that will answer it."""

    call: S3Call
    route: Route


class S3Front:
    """Authentication, routing and body handling for one server, before the body arrives."""

    def __init__(
        self,
        table: DispatchTable,
        objects: ObjectsFacade,
        credentials: IdentitySource,
        domain: str | None = None,
        max_upload_size: int = 5 << 30,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        public_paths: frozenset[bytes] = frozenset(),
        ops_paths: Callable[[bytes], bool] | None = None,
    ) -> None:
        """Which requests are not S3's but the ops app's.

        :param public_paths: anonymous GETs and HEADs of these (the health probes).
        :param ops_paths: says of a raw path whether the ops app owns it whatever
            the request carries (``/metrics``, ``/api/...``: their bearer tokens
            are no S3 credentials); virtual-host requests name keys, never these.
        """
        self.table = table
        self.public_paths = public_paths
        self.ops_paths = ops_paths
        self.objects = objects
        self.credentials = credentials
        self.domain = domain
        self.max_upload_size = max_upload_size
        self.now = now

    def is_ops_path(self, raw_path: bytes) -> bool:
        """The ops app owns this path (for a path-style request)."""
        return self.ops_paths is not None and self.ops_paths(raw_path)

    def virtual_host(self, host: str | None) -> bool:
        """``host`` names a bucket (``<bucket>.<domain>``): the path is a key."""
        if not self.domain or not host:
            return False
        hostname = (host.rsplit(":", 1)[0] if not host.endswith("]") else host).lower()
        suffix = "." + self.domain.lower()
        return hostname.endswith(suffix) and len(hostname) > len(suffix)

    def prepare(self, wire: WireRequest) -> Prepared | None:
        """Authenticate, route and build the call; None for a public (ops) path.

        Raises :class:`~s4d.errors.S3Error` for a request refused from its headers.
        """
        # a CORS preflight is answered unsigned, whatever signature its URL carries
        preflight = wire.method == "OPTIONS"
        identity = None if preflight else self.authenticate(wire)
        if (
            identity is None
            and wire.method in ("GET", "HEAD")
            and wire.raw_path in self.public_paths
        ):
            return None
        target = wire.target
        subs = subresources(wire.params)
        level = "object" if target.key else "bucket" if target.bucket else "service"
        copy = wire.headers.get("x-amz-copy-source") is not None
        found = self.table.find(wire.method, level, frozenset() if preflight else subs, copy)
        form = found.body is BodyMode.FORM and not wire.params and is_form(wire.headers)
        if identity is None and not form and not found.public:
            raise S3Error("AccessDenied", "Anonymous access is not allowed.")
        principal = owner = None
        if identity is not None:
            principal, owner = self._authorize(identity, found, target, wire.headers)
        refuse_unhonoured(wire.headers, found.operation)
        call = S3Call(
            method=wire.method,
            bucket=target.bucket,
            key=target.key,
            params=wire.params,
            subresources=subs,
            headers=wire.headers,
            identity=identity,
            request_id=wire.request_id,
            host_id=wire.host_id,
            raw_path=wire.raw_path,
            virtual_host=target.virtual_host,
            secure=wire.secure,
            content=SmallBody(),
            upload=self._upload_sink(found, target, wire.headers, identity),
            form=self._form_sink(target, wire.headers) if form else None,
            principal=principal,
            bucket_owner=owner,
        )
        if call.upload is None and call.form is None:
            length = decimal(wire.headers.get("content-length"))
            if length is not None and length > MAX_SMALL_BODY:
                raise S3Error("MaxMessageLengthExceeded")
        return Prepared(call, found)

    def authenticate(self, wire: WireRequest) -> AuthResult | None:
        """Verify the request's signature; None for a request that carries none."""
        signed = SignedRequest.from_wire(wire.method, wire.uri, wire.raw_headers)
        authorization = signed.header("authorization")
        params = wire.params
        now = self.now()
        if authorization:
            if authorization.startswith("AWS4-HMAC-SHA256"):
                return sigv4.verify_header(signed, self.credentials, now)
            if authorization.startswith("AWS "):
                return sigv2.verify_header(signed, self.credentials, now, v2_resource(wire))
            raise S3Error("AuthorizationHeaderMalformed", "Unsupported authorization type.")
        if "X-Amz-Algorithm" in params or "X-Amz-Signature" in params:
            return sigv4.verify_presigned(signed, self.credentials, now)
        if "AWSAccessKeyId" in params or "Signature" in params:
            return sigv2.verify_presigned(signed, self.credentials, now, v2_resource(wire))
        return None

    def _authorize(
        self, identity: AuthResult, found: Route, target: Target, headers: CallHeaders
    ) -> tuple[Principal, Principal | None]:
        """The caller and the bucket's owner, once the caller may do what the route does.

        ``AccessDenied`` otherwise; a copy also needs to read its source's bucket.
        """
        credentials = self.credentials
        principal = credentials.principal_for(identity.access_key)
        if principal is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=identity.access_key)
        owner_id = credentials.bucket_owner(target.bucket) if target.bucket else None
        if found.action:
            authorize(principal, found.action, owner_id)
        if found.operation in COPY_OPERATIONS:
            source = copy_source_bucket(headers.get("x-amz-copy-source") or "")
            if source:
                authorize(principal, "s3:GetObject", credentials.bucket_owner(source))
        if owner_id is None:
            return principal, None
        if owner_id == principal.user_id:
            return principal, principal
        return principal, credentials.principal_of(owner_id)

    def _check_form(self, bucket: str) -> Callable[[AuthResult], None]:
        """The access check of a form upload, made once its policy's signer is known."""

        def check(identity: AuthResult) -> None:
            principal = self.credentials.principal_for(identity.access_key)
            authorize(principal, "s3:PutObject", self.credentials.bucket_owner(bucket))

        return check

    def _upload_sink(
        self, found: Route, target: Target, headers: CallHeaders, identity: AuthResult | None
    ) -> BodySink | None:
        if found.body is not BodyMode.STREAM:
            return None
        check_key(target.key)  # a key S3 would refuse is refused before its body
        return BodySink(self.objects, headers, identity, self.max_upload_size)

    def _form_sink(self, target: Target, headers: CallHeaders) -> FormUploadSink:
        return FormUploadSink(
            self.objects,
            self.credentials,
            self.now,
            target.bucket,
            headers.get("content-type") or "",
            self._check_form(target.bucket),
        )


#: Header name prefixes asking for protection s4d does not give yet, and what it is:
#: server-side encryption of the object (SSE-S3, SSE-KMS, SSE-C), or the key of an
#: encrypted copy source (SSE-C). Storing an object unprotected while the client
#: believes it encrypted would be worse than refusing the request.
UNHONOURED_HEADER_PREFIXES: tuple[tuple[str, str], ...] = (
    ("x-amz-server-side-encryption", "Server-side encryption"),
    ("x-amz-copy-source-server-side-encryption", "Server-side encryption"),
)

_UNHONOURED_PREFIXES = tuple(prefix for prefix, _ in UNHONOURED_HEADER_PREFIXES)
#: Every header name prefix :func:`refuse_unhonoured` looks further at.
_SCREENED_PREFIXES = _UNHONOURED_PREFIXES + LOCK_HEADER_PREFIXES


def refuse_unhonoured(headers: CallHeaders, operation: str = "") -> None:
    """Refuse a request naming a protection s4d does not give, or a lock it cannot take.

    Encryption headers are answered ``NotImplemented`` on every operation;
    object lock headers are checked for ``operation``
    (:func:`s4d.s3.objectlock.screen_lock_headers`). Both before the body is read.
    """
    locking = False
    for name in headers.names():
        lowered = name.lower()
        if not lowered.startswith(_SCREENED_PREFIXES):
            continue  # one C-level test per header: this runs on every request
        for prefix, feature in UNHONOURED_HEADER_PREFIXES:
            if lowered.startswith(prefix):
                raise S3Error("NotImplemented", f"{feature} is not implemented ({name}).")
        locking = True
    if locking:
        screen_lock_headers(operation, headers)


def copy_source_bucket(header: str) -> str:
    """The bucket named by ``x-amz-copy-source`` ("" if none; the handler checks the rest)."""
    return unquote(header.partition("?")[0]).lstrip("/").partition("/")[0]


def v2_resource(wire: WireRequest) -> str:
    """SigV2's resource path: ``/bucket/key`` even for virtual-host requests."""
    raw = wire.raw_path.decode("utf-8", "surrogateescape")
    if wire.target.virtual_host:
        return "/" + wire.target.bucket + raw
    return raw


def is_form(headers: CallHeaders) -> bool:
    """The body is multipart/form-data (a browser form upload)."""
    return (headers.get("content-type") or "").lower().startswith("multipart/form-data")
