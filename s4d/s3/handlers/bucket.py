"""Bucket operations: list, create, head, delete, location, ACL, versioning, configs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

from s4d.auth import acl as acls
from s4d.auth.access import BUCKET_OWNER_ENFORCED, OWNERSHIP_SETTINGS, listed_owner
from s4d.auth.bucket_access import ACL, OWNERSHIP, decode_acl, encode_acl, refuse_acl
from s4d.engine import BucketsFacade
from s4d.errors import S3Error
from s4d.s3.acls import requested_acl
from s4d.s3.addressing import check_bucket_name
from s4d.s3.call import Handler, Response, S3Call
from s4d.s3.dates import iso8601
from s4d.s3.dispatch import Route, RouteKey, route
from s4d.s3.handlers.common import decode_token, encode_token, owner, xml_response
from s4d.s3.objectlock import bucket_lock_requested
from s4d.s3.xml import Node, child_text, parse
from s4d.util import checksums as ck

#: The query parameters of a paginated ListBuckets.
LIST_BUCKETS_PARAMS = ("max-buckets", "continuation-token", "prefix", "bucket-region")

#: The most buckets one ListBuckets page holds (AWS's limit of ``max-buckets``).
MAX_BUCKETS = 10_000

#: The region where CreateBucket of a bucket you already own answers 200 OK.
LEGACY_REGION = "us-east-1"

#: GET of a bucket configuration that s4d does not keep yet: the "none set" answer.
ABSENT_CONFIGS = {
    "website": ("GetBucketWebsite", "NoSuchWebsiteConfiguration"),
    "encryption": ("GetBucketEncryption", "ServerSideEncryptionConfigurationNotFoundError"),
    "replication": ("GetBucketReplication", "ReplicationConfigurationNotFoundError"),
}


def _max_buckets(call: S3Call) -> int:
    """``max-buckets`` (1 to 10,000; 10,000 when absent); ``InvalidArgument`` otherwise."""
    raw = call.params.get("max-buckets")
    if raw is None:
        return MAX_BUCKETS
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_BUCKETS:
        raise S3Error(
            "InvalidArgument",
            f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}",
            ArgumentName="max-buckets",
            ArgumentValue=raw,
        )
    return int(raw)


class BucketHandlers:
    """Bucket-level operations over the engine's bucket facade.

    :param buckets: the engine's bucket facade.
    :param region: the region this server reports and accepts.
    """

    def __init__(self, buckets: BucketsFacade, region: str) -> None:
        self.buckets = buckets
        self.region = region

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        yield RouteKey("GET", "service"), route("ListBuckets", self.list_buckets)
        yield RouteKey("PUT", "bucket"), route("CreateBucket", self.create_bucket)
        yield (
            RouteKey("HEAD", "bucket"),
            route("HeadBucket", self.head_bucket, action="s3:ListBucket"),
        )
        yield RouteKey("DELETE", "bucket"), route("DeleteBucket", self.delete_bucket)
        yield (
            RouteKey("GET", "bucket", frozenset({"location"})),
            route("GetBucketLocation", self.get_location),
        )
        yield (
            RouteKey("GET", "bucket", frozenset({"versioning"})),
            route("GetBucketVersioning", self.get_versioning),
        )
        yield (
            RouteKey("PUT", "bucket", frozenset({"versioning"})),
            route("PutBucketVersioning", self.put_versioning),
        )
        yield (
            RouteKey("GET", "bucket", frozenset({"logging"})),
            route("GetBucketLogging", self.get_logging),
        )
        yield (
            RouteKey("GET", "bucket", frozenset({"requestPayment"})),
            route("GetBucketRequestPayment", self.get_request_payment),
        )
        yield (
            RouteKey("GET", "bucket", frozenset({"accelerate"})),
            route("GetBucketAccelerateConfiguration", self.get_accelerate),
        )
        yield (
            RouteKey("GET", "bucket", frozenset({"notification"})),
            route("GetBucketNotificationConfiguration", self.get_notification),
        )
        for sub, (operation, code) in ABSENT_CONFIGS.items():
            yield RouteKey("GET", "bucket", frozenset({sub})), route(operation, self._absent(code))

    def _absent(self, code: str) -> Handler:
        async def get_absent(call: S3Call) -> Response:
            await self.buckets.get(call.bucket)
            raise S3Error(code, BucketName=call.bucket)

        get_absent.__doc__ = f"Answer {code}: s4d keeps no such configuration yet."
        return get_absent

    async def list_buckets(self, call: S3Call) -> Response:
        """ListBuckets, by name: all of the caller's buckets (every bucket for a
        SuperUser), or a page (``max-buckets``, ``continuation-token``, ``prefix``,
        ``bucket-region``) as AWS pages them."""
        paged = any(name in call.params for name in LIST_BUCKETS_PARAMS)
        max_buckets = _max_buckets(call)
        token = call.params.get("continuation-token")
        after = decode_token(token) if token else None
        prefix = call.params.get("prefix", "")
        region = call.params.get("bucket-region") or None
        buckets, more = await self.buckets.list_page(
            prefix, after, region, max_buckets, listed_owner(call.principal)
        )
        listed: list[Node] = []
        for b in buckets:
            fields: list[Node] = [("Name", b.name), ("CreationDate", iso8601(b.created_ns))]
            if paged:  # AWS adds the region when the request named any parameter
                fields.append(("BucketRegion", b.region))
            listed.append(("Bucket", fields))
        children: list[Node] = [("Owner", owner(call)), ("Buckets", listed)]
        if more and buckets:
            children.append(("ContinuationToken", encode_token(buckets[-1].name)))
        if "prefix" in call.params:
            children.append(("Prefix", prefix))
        return xml_response("ListAllMyBucketsResult", children)

    async def create_bucket(self, call: S3Call) -> Response:
        """CreateBucket, with AWS's name and location rules.

        ``x-amz-bucket-object-lock-enabled: true`` enables object lock (and
        versioning) on the new bucket.
        """
        name = call.bucket
        check_bucket_name(name)
        object_lock = bucket_lock_requested(call.headers)
        documents = creation_documents(call)
        body = call.document()
        region = self.region
        if body.strip():
            root = parse(body)
            if root.tag != "CreateBucketConfiguration":
                raise S3Error("MalformedXML")
            location = child_text(root, "LocationConstraint", "") or ""
            if location and location != region:
                raise S3Error(
                    "InvalidLocationConstraint",
                    f"The specified location-constraint is not valid: {location}",
                    LocationConstraint=location,
                )
        try:
            owner = call.principal.user_id if call.principal is not None else ""
            await self.buckets.create(name, region, object_lock, owner=owner, documents=documents)
        except S3Error as e:
            # AWS's legacy behaviour in us-east-1: re-creating a bucket you own succeeds
            # and resets its ACL (to the one asked for, else private); every other region
            # answers BucketAlreadyOwnedByYou.
            if e.code != "BucketAlreadyOwnedByYou" or region != LEGACY_REGION:
                raise
            raw = documents.get(ACL)
            acl = decode_acl(raw) if raw is not None else acls.private(owner)
            await self.buckets.put_access(name, ACL, raw, refuse_acl(acl))
        return Response(headers={"Location": "/" + name})

    async def head_bucket(self, call: S3Call) -> Response:
        """HeadBucket."""
        bucket = await self.buckets.get(call.bucket)
        return Response(headers={"x-amz-bucket-region": bucket.region})

    async def delete_bucket(self, call: S3Call) -> Response:
        """DeleteBucket (only when empty)."""
        await self.buckets.delete(call.bucket)
        return Response(status=204)

    async def get_location(self, call: S3Call) -> Response:
        """GetBucketLocation: empty for us-east-1, as AWS answers."""
        bucket = await self.buckets.get(call.bucket)
        region = "" if bucket.region == "us-east-1" else bucket.region
        return Response(
            headers={"Content-Type": "application/xml"},
            body=(
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{region}'
                "</LocationConstraint>"
            ).encode(),
        )

    async def get_versioning(self, call: S3Call) -> Response:
        """GetBucketVersioning."""
        bucket = await self.buckets.get(call.bucket)
        return xml_response("VersioningConfiguration", [("Status", bucket.versioning)])

    async def put_versioning(self, call: S3Call) -> Response:
        """PutBucketVersioning: Enabled or Suspended."""
        root = parse(call.document())
        status = child_text(root, "Status")
        if root.tag != "VersioningConfiguration" or status not in ("Enabled", "Suspended"):
            raise S3Error("MalformedXML")
        await self.buckets.set_versioning(call.bucket, status)
        return Response()

    async def get_logging(self, call: S3Call) -> Response:
        """GetBucketLogging: logging is never enabled."""
        await self.buckets.get(call.bucket)
        return xml_response("BucketLoggingStatus", [])

    async def get_request_payment(self, call: S3Call) -> Response:
        """GetBucketRequestPayment: the owner pays."""
        await self.buckets.get(call.bucket)
        return xml_response("RequestPaymentConfiguration", [("Payer", "BucketOwner")])

    async def get_accelerate(self, call: S3Call) -> Response:
        """GetBucketAccelerateConfiguration: never configured."""
        await self.buckets.get(call.bucket)
        return xml_response("AccelerateConfiguration", [])

    async def get_notification(self, call: S3Call) -> Response:
        """GetBucketNotificationConfiguration: never configured."""
        await self.buckets.get(call.bucket)
        return xml_response("NotificationConfiguration", [])


def creation_documents(call: S3Call) -> dict[bytes, bytes]:
    """The access documents a CreateBucket asks for: its ACL (``x-amz-acl``,
    ``x-amz-grant-*``) and its object ownership (``x-amz-object-ownership``)."""
    documents: dict[bytes, bytes] = {}
    ownership = call.header("x-amz-object-ownership")
    if ownership is not None:
        if ownership not in OWNERSHIP_SETTINGS:
            raise S3Error(
                "InvalidArgument", "Invalid x-amz-object-ownership header",
                ArgumentName="x-amz-object-ownership", ArgumentValue=ownership,
            )  # fmt: skip
        documents[OWNERSHIP] = ownership.encode()
    owner = call.principal.user_id if call.principal is not None else ""
    if call.identities is None or not owner:
        return documents
    acl = requested_acl(call.headers, owner, None, call.identities.grantee)
    if acl is not None:
        if ownership == BUCKET_OWNER_ENFORCED and acl != acls.private(owner):
            raise S3Error("InvalidBucketAclWithObjectOwnership")
        if acl != acls.private(owner):
            documents[ACL] = encode_acl(acl)
    return documents


def check_body_integrity(call: S3Call, body: bytes) -> None:
    """Verify Content-MD5 or any ``x-amz-checksum-*`` header against a small body."""
    md5 = call.header("content-md5")
    if md5 is not None:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        if base64.b64encode(digest).decode() != md5.strip():
            raise S3Error("BadDigest")
    for alg in ck.ALGORITHMS:
        value = call.header(ck.header_name(alg))
        if value is not None:
            checksum = ck.new_checksum(alg)
            checksum.update(body)
            if checksum.b64() != value.strip():
                raise S3Error(
                    "BadDigest", f"The {alg} you specified did not match the calculated checksum."
                )
