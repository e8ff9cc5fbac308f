"""Bucket operations: list, create, head, delete, location, ACL, versioning, configs."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from s4d.errors import S3Error
from s4d.s3 import checksums as ck
from s4d.s3.addressing import check_bucket_name
from s4d.s3.dates import iso8601
from s4d.s3.dispatch import DispatchTable, Response
from s4d.s3.handlers.common import body_of, owner, xml_response
from s4d.s3.handlers.listing import list_objects_v1, list_objects_v2
from s4d.s3.xml import child_text, parse

CANNED_ACLS = frozenset(
    {"private", "public-read", "public-read-write", "authenticated-read", "bucket-owner-read",
     "bucket-owner-full-control", "aws-exec-read", "log-delivery-write"}
)  # fmt: skip

#: GET of a bucket configuration that s4d does not keep yet: the "none set" answer.
ABSENT_CONFIGS = {
    "policy": "NoSuchBucketPolicy",
    "cors": "NoSuchCORSConfiguration",
    "lifecycle": "NoSuchLifecycleConfiguration",
    "tagging": "NoSuchTagSet",
    "website": "NoSuchWebsiteConfiguration",
    "encryption": "ServerSideEncryptionConfigurationNotFoundError",
    "object-lock": "ObjectLockConfigurationNotFoundError",
    "replication": "ReplicationConfigurationNotFoundError",
    "ownershipControls": "OwnershipControlsNotFoundError",
    "publicAccessBlock": "NoSuchPublicAccessBlockConfiguration",
}


def register(table: DispatchTable) -> None:
    """Add the bucket operations to ``table``."""
    table.add("GET", "service")(list_buckets)
    table.add("PUT", "bucket")(create_bucket)
    table.add("HEAD", "bucket")(head_bucket)
    table.add("DELETE", "bucket")(delete_bucket)
    table.add("GET", "bucket")(list_objects)
    table.add("GET", "bucket", "location")(get_location)
    table.add("GET", "bucket", "acl")(get_bucket_acl)
    table.add("PUT", "bucket", "acl")(put_bucket_acl)
    table.add("GET", "bucket", "versioning")(get_versioning)
    table.add("PUT", "bucket", "versioning")(put_versioning)
    table.add("POST", "bucket", "delete")(delete_objects)
    table.add("POST", "bucket")(post_object)
    table.add("GET", "bucket", "logging")(get_logging)
    table.add("GET", "bucket", "requestPayment")(get_request_payment)
    table.add("GET", "bucket", "accelerate")(get_accelerate)
    table.add("GET", "bucket", "notification")(get_notification)
    for sub, code in ABSENT_CONFIGS.items():
        table.add("GET", "bucket", sub)(_absent(code))


def _absent(code: str) -> Any:
    async def get_absent(req: Any) -> Response:
        await req.front.engine.get_bucket(req.target.bucket)
        raise S3Error(code, BucketName=req.target.bucket)

    get_absent.__doc__ = f"Answer {code}: s4d keeps no such configuration yet."
    return get_absent


async def list_buckets(req: Any) -> Response:
    """ListBuckets."""
    buckets = await req.front.engine.list_buckets()
    return xml_response(
        "ListAllMyBucketsResult",
        [
            ("Owner", owner(req)),
            (
                "Buckets",
                [
                    ("Bucket", [("Name", b.name), ("CreationDate", iso8601(b.created_ns))])
                    for b in buckets
                ],
            ),
        ],
    )


async def create_bucket(req: Any) -> Response:
    """CreateBucket, with AWS's name and location rules."""
    name = req.target.bucket
    check_bucket_name(name)
    acl = req.header("x-amz-acl")
    if acl is not None and acl not in CANNED_ACLS:
        raise S3Error("InvalidArgument", "Unknown canned ACL.", ArgumentName="x-amz-acl")
    body = body_of(req)
    region = req.front.region
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
    await req.front.engine.create_bucket(name, region)
    return Response(headers={"Location": "/" + name})


async def head_bucket(req: Any) -> Response:
    """HeadBucket."""
    bucket = await req.front.engine.get_bucket(req.target.bucket)
    return Response(headers={"x-amz-bucket-region": bucket.region})


async def delete_bucket(req: Any) -> Response:
    """DeleteBucket (only when empty)."""
    await req.front.engine.delete_bucket(req.target.bucket)
    return Response(status=204)


async def list_objects(req: Any) -> Response:
    """ListObjects (V1) or ListObjectsV2 (``list-type=2``)."""
    list_type = req.params.get("list-type")
    if list_type == "2":
        return await list_objects_v2(req)
    if list_type not in (None, "1"):
        raise S3Error("InvalidArgument", "Invalid list-type.", ArgumentName="list-type")
    return await list_objects_v1(req)


async def get_location(req: Any) -> Response:
    """GetBucketLocation: empty for us-east-1, as AWS answers."""
    bucket = await req.front.engine.get_bucket(req.target.bucket)
    region = "" if bucket.region == "us-east-1" else bucket.region
    return Response(
        headers={"Content-Type": "application/xml"},
        body=(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{region}'
            "</LocationConstraint>"
        ).encode(),
    )


def acl_document(req: Any) -> Response:
    """The canned ``private`` ACL: the owner has full control."""
    oid, name = (v for _, v in owner(req))
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Owner><ID>{oid}</ID><DisplayName>{name}</DisplayName></Owner>"
        "<AccessControlList><Grant>"
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
        f"<ID>{oid}</ID><DisplayName>{name}</DisplayName></Grantee>"
        "<Permission>FULL_CONTROL</Permission></Grant></AccessControlList>"
        "</AccessControlPolicy>"
    )
    return Response(headers={"Content-Type": "application/xml"}, body=body.encode())


def check_acl_request(req: Any) -> None:
    """Accept a canned ``private`` ACL (header or an owner-only body); refuse others."""
    acl = req.header("x-amz-acl")
    if acl is not None:
        if acl != "private":
            raise S3Error("NotImplemented", "Only the canned ACL 'private' is supported.")
        return
    body = body_of(req)
    if body.strip():
        root = parse(body)
        grants = root.findall(".//Grant")
        for grant in grants:
            if (child_text(grant, "Permission") or "") != "FULL_CONTROL":
                raise S3Error("NotImplemented", "Only the owner's FULL_CONTROL grant is supported.")


async def get_bucket_acl(req: Any) -> Response:
    """GetBucketAcl."""
    await req.front.engine.get_bucket(req.target.bucket)
    return acl_document(req)


async def put_bucket_acl(req: Any) -> Response:
    """PutBucketAcl (``private`` only)."""
    await req.front.engine.get_bucket(req.target.bucket)
    check_acl_request(req)
    return Response()


async def get_versioning(req: Any) -> Response:
    """GetBucketVersioning."""
    bucket = await req.front.engine.get_bucket(req.target.bucket)
    return xml_response("VersioningConfiguration", [("Status", bucket.versioning)])


async def put_versioning(req: Any) -> Response:
    """PutBucketVersioning: Enabled or Suspended."""
    root = parse(body_of(req))
    status = child_text(root, "Status")
    if root.tag != "VersioningConfiguration" or status not in ("Enabled", "Suspended"):
        raise S3Error("MalformedXML")
    name = req.target.bucket

    def apply(t: Any) -> None:
        bucket = t.require_bucket(name)
        bucket.versioning = status
        t.put_bucket(bucket)

    await req.front.engine._commit(apply)
    return Response()


async def get_logging(req: Any) -> Response:
    """GetBucketLogging: logging is never enabled."""
    await req.front.engine.get_bucket(req.target.bucket)
    return xml_response("BucketLoggingStatus", [])


async def get_request_payment(req: Any) -> Response:
    """GetBucketRequestPayment: the owner pays."""
    await req.front.engine.get_bucket(req.target.bucket)
    return xml_response("RequestPaymentConfiguration", [("Payer", "BucketOwner")])


async def get_accelerate(req: Any) -> Response:
    """GetBucketAccelerateConfiguration: never configured."""
    await req.front.engine.get_bucket(req.target.bucket)
    return xml_response("AccelerateConfiguration", [])


async def get_notification(req: Any) -> Response:
    """GetBucketNotificationConfiguration: never configured."""
    await req.front.engine.get_bucket(req.target.bucket)
    return xml_response("NotificationConfiguration", [])


def check_body_integrity(req: Any, body: bytes) -> None:
    """Verify Content-MD5 or any ``x-amz-checksum-*`` header against the body."""
    md5 = req.header("content-md5")
    if md5 is not None:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        if base64.b64encode(digest).decode() != md5.strip():
            raise S3Error("BadDigest")
    for alg in ck.ALGORITHMS:
        value = req.header(ck.header_name(alg))
        if value is not None:
            checksum = ck.new_checksum(alg)
            checksum.update(body)
            if checksum.b64() != value.strip():
                raise S3Error(
                    "BadDigest", f"The {alg} you specified did not match the calculated checksum."
                )


async def delete_objects(req: Any) -> Response:
    """DeleteObjects: up to 1000 keys, Quiet mode, per-key errors."""
    body = body_of(req)
    check_body_integrity(req, body)
    root = parse(body)
    if root.tag != "Delete":
        raise S3Error("MalformedXML")
    quiet = (child_text(root, "Quiet", "false") or "false").strip().lower() == "true"
    items = []
    for obj in root.findall("Object"):
        key = child_text(obj, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        items.append((key, child_text(obj, "VersionId")))
    if not items or len(items) > 1000:
        raise S3Error("MalformedXML")
    await req.front.engine.get_bucket(req.target.bucket)
    outcomes = await req.front.engine.delete_objects(req.target.bucket, items)
    children: list[Any] = []
    for (key, version_id), outcome in zip(items, outcomes, strict=True):
        error = getattr(outcome, "value", None)
        if error is not None:
            code = error.code if isinstance(error, S3Error) else "InternalError"
            message = (
                error.message if isinstance(error, S3Error) else "We encountered an internal error."
            )
            children.append(
                (
                    "Error",
                    [("Key", key), ("VersionId", version_id), ("Code", code), ("Message", message)],
                )
            )
            continue
        if quiet:
            continue
        entry: list[Any] = [("Key", key), ("VersionId", version_id)]
        if outcome.delete_marker:
            entry += [("DeleteMarker", True), ("DeleteMarkerVersionId", outcome.version_id)]
        children.append(("Deleted", entry))
    return xml_response("DeleteResult", children)


async def post_object(req: Any) -> Response:
    """POST Object: a browser form upload (the policy was verified as the body arrived)."""
    from s4d.features.objects import NewObject, WriteConditions
    from s4d.s3.postform import FormUploadSink

    if not isinstance(req.sink, FormUploadSink):
        raise S3Error("InvalidRequest", "POST to a bucket must be a multipart/form-data upload.")
    await req.front.engine.get_bucket(req.target.bucket)
    form = await req.sink.finish()
    fields = form.fields
    new = NewObject(
        size=form.size,
        etag=form.md5_hex,
        content_type=fields.get("content-type"),
        metadata={
            k[len("x-amz-meta-") :]: v for k, v in fields.items() if k.startswith("x-amz-meta-")
        },
        headers={
            k: v for k, v in fields.items()
            if k in ("cache-control", "content-disposition", "content-encoding", "expires")
        },
    )
    version = await req.front.engine.commit_put(
        req.target.bucket, form.key, new, form.chunks, WriteConditions()
    )
    etag = f'"{version.etag}"'
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        from urllib.parse import quote

        sep = "&" if "?" in redirect else "?"
        location = (f"{redirect}{sep}bucket={quote(req.target.bucket)}&key={quote(form.key)}"
                    f"&etag={quote(etag)}")
        return Response(status=303, headers={"Location": location, "ETag": etag})
    status = fields.get("success_action_status", "204")
    if status == "201":
        return xml_response(
            "PostResponse",
            [("Location", f"/{req.target.bucket}/{form.key}"), ("Bucket", req.target.bucket),
             ("Key", form.key), ("ETag", etag)],
            status=201, ETag=etag,
        )
    return Response(status=200 if status == "200" else 204, headers={"ETag": etag})
