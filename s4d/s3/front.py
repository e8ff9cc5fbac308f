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
from s4d.auth.access import (
    OWNERLESS_ACTIONS,
    AccessGate,
    AccessRequest,
    BucketAccess,
    Verdict,
    authorize,
    decide_some_key,
    version_action,
)
from s4d.auth.credentials import IdentitySource
from s4d.auth.principal import SUPERUSER, Principal, canonical_id
from s4d.auth.request import SignedRequest
from s4d.auth.sigv4 import AuthResult
from s4d.engine import ObjectsFacade, check_key
from s4d.errors import S3Error
from s4d.s3.acls import ACL_OPERATIONS, has_grant_headers, screen_acl_headers
from s4d.s3.addressing import Target
from s4d.s3.body import BodySink
from s4d.s3.call import MAX_SMALL_BODY, S3Call, SmallBody
from s4d.s3.conditions import RequestContext
from s4d.s3.dispatch import BodyMode, DispatchTable, Route, subresources
from s4d.s3.headers import CallHeaders
from s4d.s3.objectlock import LOCK_HEADER_PREFIXES, screen_lock_headers
from s4d.s3.postform import FormUploadSink
from s4d.util.numbers import decimal


class StaticCredentials:
    """Fixed key pairs, each a SuperUser of its own (tests and benchmarks; no users store).

    Buckets have no recorded owner here: every key may use every bucket.
    """

    knows_buckets = False

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

    def bucket_access(self, bucket: str, refresh: bool = False) -> BucketAccess | None:
        """Nothing is recorded: every key is a SuperUser, nobody else gets in."""
        return None

    def grantee(self, user_id_or_canonical: str) -> Principal | None:
        """The SuperUser named (by its access key)."""
        return self.principal_of(user_id_or_canonical)

    def object_tags(self, bucket: str, key: str, version_id: str | None) -> dict[str, str] | None:
        """No tags are looked up."""
        return None


#: Operations whose source (``x-amz-copy-source``) is read from a bucket too.
COPY_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy"})
#: Operations on many keys, decided key by key by their handler: at header time the
#: caller needs only to be possibly allowed on some key (:func:`decide_some_key`).
PER_KEY_OPERATIONS = frozenset({"DeleteObjects"})


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
    #: the TCP peer's address (``aws:SourceIp``; forwarded headers are never believed)
    client_ip: str = ""


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
        anonymous: bool = True,
    ) -> None:
        """Which requests are not S3's but the ops app's.

        :param anonymous: serve unsigned requests where a bucket policy or ACL grants
            them (``S4_ANONYMOUS``); False refuses every unsigned request.

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
        self.anonymous = anonymous

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
        """Authenticate, route, authorize and build the call; None for a public (ops) path.

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
        principal = None
        access = None
        gate = None
        if identity is not None:
            principal = self.credentials.principal_for(identity.access_key)
            if principal is None:
                raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=identity.access_key)
        elif not found.public and not form and (not self.anonymous or not found.action):
            # an unsigned request is served only where a policy or ACL grants its action
            raise S3Error("AccessDenied", "Anonymous access is not allowed.")
        if target.bucket and not found.public:
            access = self.credentials.bucket_access(target.bucket, refresh=identity is None)
            if access is None and identity is None and self.credentials.knows_buckets:
                if found.action not in OWNERLESS_ACTIONS:
                    # as AWS answers anyone: there is no policy or ACL to ask
                    raise S3Error("NoSuchBucket", BucketName=target.bucket)
        check_expected_owner(wire.headers.get("x-amz-expected-bucket-owner"), access)
        if found.action and not found.public and not (form and identity is None):
            gate = self._authorize(wire, found, principal, access)
        refuse_unhonoured(wire.headers, found.operation)
        if found.operation in ACL_OPERATIONS:
            screen_acl_headers(wire.headers, found.operation, access)
        elif "x-amz-acl" in wire.headers or has_grant_headers(wire.headers):
            raise S3Error(
                "InvalidArgument",
                f"{found.operation} takes no ACL (x-amz-acl, x-amz-grant-*).",
                ArgumentName="x-amz-acl",
            )
        owner = None
        if access is not None:
            owner = principal if principal and principal.user_id == access.owner else None
            owner = owner or self.credentials.principal_of(access.owner)
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
            form=self._form_sink(wire, target) if form else None,
            principal=principal,
            bucket_owner=owner,
            gate=gate,
            access=access,
            identities=self.credentials,
        )
        if call.upload is None and call.form is None:
            length = decimal(wire.headers.get("content-length"))
            if length is not None and length > MAX_SMALL_BODY:
                raise S3Error("MaxMessageLengthExceeded")
        return Prepared(call, found)

    def authenticate(self, wire: WireRequest) -> AuthResult | None:
        """Verify the request's signature; None for a request that carries none."""
        signed = SignedRequest.from_raw(wire.method, wire.uri, wire.raw_headers)
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
        self,
        wire: WireRequest,
        found: Route,
        principal: Principal | None,
        access: BucketAccess | None,
    ) -> AccessGate:
        """The decision for the route's action (``AccessDenied`` when it denies), carried
        on to the handler; a copy must also be allowed to read its source, whose bucket
        must belong to ``x-amz-source-expected-bucket-owner`` when that is given."""
        target = wire.target
        request = AccessRequest(
            principal,
            version_action(found.action, wire.params),
            target.bucket,
            target.key or None,
            access,
            self._context(wire, principal, target.bucket, target.key, wire.params),
        )
        if found.operation in PER_KEY_OPERATIONS:
            if decide_some_key(request) is Verdict.DENY:
                raise S3Error("AccessDenied")
            return AccessGate(request, Verdict.ALLOW)
        gate = AccessGate(request, authorize(request))
        if found.operation in COPY_OPERATIONS:
            source = parse_copy_source_parts(wire.headers.get("x-amz-copy-source") or "")
            if source is not None:
                bucket, key, version_id = source
                source_access = self.credentials.bucket_access(bucket)
                check_expected_owner(
                    wire.headers.get("x-amz-source-expected-bucket-owner"), source_access
                )
                params = {"versionId": version_id} if version_id else {}
                read = AccessRequest(
                    principal,
                    version_action("s3:GetObject", params),
                    bucket,
                    key,
                    source_access,
                    self._context(wire, principal, bucket, key, params),
                )
                if authorize(read) is not Verdict.ALLOW:
                    gate.source = read
        return gate

    def _context(
        self,
        wire: WireRequest,
        principal: Principal | None,
        bucket: str,
        key: str,
        params: Mapping[str, str],
    ) -> RequestContext:
        """The condition keys of a request on ``bucket``/``key``."""
        credentials = self.credentials
        version_id = params.get("versionId")

        def existing_tags() -> Mapping[str, str] | None:
            return credentials.object_tags(bucket, key, version_id) if key else None

        return RequestContext(
            source_ip=wire.client_ip,
            secure=wire.secure,
            now=self.now(),
            principal=principal,
            headers=wire.headers,
            params=params,
            existing_tags=existing_tags,
        )

    def _check_form(self, wire: WireRequest) -> Callable[[AuthResult | None], None]:
        """The access check of a form upload, made once its policy's signer is known
        (None: an unsigned form, allowed only where anonymous writes are)."""
        bucket = wire.target.bucket

        def check(identity: AuthResult | None) -> None:
            principal = None
            if identity is not None:
                principal = self.credentials.principal_for(identity.access_key)
                if principal is None:
                    raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=identity.access_key)
            elif not self.anonymous:
                raise S3Error("AccessDenied", "Anonymous access is not allowed.")
            access = self.credentials.bucket_access(bucket)
            request = AccessRequest(
                principal,
                "s3:PutObject",
                bucket,
                None,
                access,
                self._context(wire, principal, bucket, "", {}),
            )
            authorize(request)

        return check

    def _upload_sink(
        self, found: Route, target: Target, headers: CallHeaders, identity: AuthResult | None
    ) -> BodySink | None:
        if found.body is not BodyMode.STREAM:
            return None
        check_key(target.key)  # a key S3 would refuse is refused before its body
        return BodySink(self.objects, headers, identity, self.max_upload_size)

    def _form_sink(self, wire: WireRequest, target: Target) -> FormUploadSink:
        return FormUploadSink(
            self.objects,
            self.credentials,
            self.now,
            target.bucket,
            wire.headers.get("content-type") or "",
            self._check_form(wire),
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


def check_expected_owner(expected: str | None, access: BucketAccess | None) -> None:
    """``AccessDenied`` unless the bucket whose configuration is ``access`` belongs to
    ``expected`` (``x-amz-expected-bucket-owner``, ``x-amz-source-expected-bucket-owner``:
    the owner's user id or canonical id). No check without a header, or without a
    recorded owner (no users store, or no such bucket: its operation answers that)."""
    if expected is None or access is None:
        return
    if expected not in (access.owner, canonical_id(access.owner)):
        raise S3Error("AccessDenied")


def copy_source_bucket(header: str) -> str:
    """The bucket named by ``x-amz-copy-source`` ("" if none; the handler checks the rest)."""
    return unquote(header.partition("?")[0]).lstrip("/").partition("/")[0]


def parse_copy_source_parts(header: str) -> tuple[str, str, str | None] | None:
    """(bucket, key, version id) of ``x-amz-copy-source``; None if it names no object
    (the handler answers what is wrong with it)."""
    path, _, query = header.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        return None
    version_id = None
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "versionId":
            version_id = unquote(value)
    return bucket, key, version_id


def v2_resource(wire: WireRequest) -> str:
    """SigV2's resource path: ``/bucket/key`` even for virtual-host requests."""
    raw = wire.raw_path.decode("utf-8", "surrogateescape")
    if wire.target.virtual_host:
        return "/" + wire.target.bucket + raw
    return raw


def is_form(headers: CallHeaders) -> bool:
    """The body is multipart/form-data (a browser form upload)."""
    return (headers.get("content-type") or "").lower().startswith("multipart/form-data")
