"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, CopyObject, ACLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from twisted.internet.defer import Deferred

from s4d.errors import S3Error
from s4d.features.objects import CopySource, NewObject, WriteConditions
from s4d.s3 import checksums as ck
from s4d.s3.dates import http_date, iso8601, parse_http_date
from s4d.s3.dispatch import DispatchTable, Response
from s4d.s3.handlers.bucket import acl_document, check_acl_request
from s4d.s3.handlers.common import xml_response
from s4d.s3.producer import send_object
from s4d.s3.ranges import parse_range
from s4d.store.model import NULL_VERSION, ObjectVersion
from s4d.util.numbers import decimal

#: Headers stored with an object and returned on GET/HEAD, by lower-case name.
STORED_HEADERS = {
    "content-encoding": "Content-Encoding",
    "content-disposition": "Content-Disposition",
    "content-language": "Content-Language",
    "cache-control": "Cache-Control",
    "expires": "Expires",
    "x-amz-website-redirect-location": "x-amz-website-redirect-location",
}
STORAGE_CLASSES = frozenset(
    {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
     "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE"}
)  # fmt: skip
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
MAX_METADATA_BYTES = 2048


def register(table: DispatchTable) -> None:
    """Add the object operations to ``table``."""
    table.add("PUT", "object")(put_object)
    table.add("GET", "object")(get_object)
    table.add("HEAD", "object")(head_object)
    table.add("DELETE", "object")(delete_object)
    table.add("GET", "object", "acl")(get_object_acl)
    table.add("PUT", "object", "acl")(put_object_acl)
    table.add("GET", "object", "tagging")(get_object_tagging)


def _raw_headers(req: Any) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1").lower(), v.decode("latin-1"))
        for k, vs in req.requestHeaders.getAllRawHeaders()
        for v in vs
    ]


def new_object_from_headers(req: Any) -> NewObject:
    """Content type, user metadata, stored headers and storage class of a PUT or copy."""
    metadata: dict[str, str] = {}
    headers: dict[str, str] = {}
    for name, value in _raw_headers(req):
        if name.startswith("x-amz-meta-"):
            key = name[len("x-amz-meta-") :]
            metadata[key] = metadata[key] + "," + value if key in metadata else value
        elif name in STORED_HEADERS:
            headers[name] = value
    encoding = headers.get("content-encoding")
    if encoding is not None:
        codings = [e.strip() for e in encoding.split(",")]
        kept = [e for e in codings if e and e.lower() != "aws-chunked"]
        if kept:
            headers["content-encoding"] = ",".join(kept)
        else:
            del headers["content-encoding"]
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_BYTES:
        raise S3Error("MetadataTooLarge")
    storage_class = req.header("x-amz-storage-class") or "STANDARD"
    if storage_class not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", StorageClassRequested=storage_class)
    return NewObject(
        size=0,
        etag="",
        content_type=req.header("content-type"),
        metadata=metadata,
        headers=headers,
        storage_class=storage_class,
    )


def write_conditions(req: Any) -> WriteConditions:
    """If-Match / If-None-Match on a write."""
    return WriteConditions(
        if_match=req.header("if-match"), if_none_match=req.header("if-none-match")
    )


def _version_headers(version: ObjectVersion, versioned: bool) -> dict[str, str]:
    if versioned or version.version_id != NULL_VERSION:
        return {"x-amz-version-id": version.version_id}
    return {}


async def put_object(req: Any) -> Response:
    """PutObject: the body has streamed into segments already; check and commit it."""
    if req.header("x-amz-copy-source") is not None:
        return await copy_object(req)
    if req.sink is None:
        raise S3Error("InternalError", "upload without a body sink")
    new = new_object_from_headers(req)
    version = await req.sink.store(req.target.bucket, req.target.key, new, write_conditions(req))
    headers = {"ETag": f'"{version.etag}"'}
    headers.update(_version_headers(version, False))
    for alg, value in version.checksums.items():
        headers[ck.header_name(alg)] = value
    return Response(headers=headers)


def _etag_in(header: str, etag: str) -> bool:
    values = {v.strip() for v in header.split(",")}
    return "*" in values or f'"{etag}"' in values or etag in values


def check_read_conditions(req: Any, version: ObjectVersion) -> None:
    """If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since (RFC 7232 order)."""
    seconds = version.mtime_ns // 1_000_000_000
    if_match = req.header("if-match")
    if_none_match = req.header("if-none-match")
    if if_match is not None:
        if not _etag_in(if_match, version.etag):
            raise S3Error("PreconditionFailed", Condition="If-Match")
    else:
        since = req.header("if-unmodified-since")
        when = parse_http_date(since) if since else None
        if when is not None and seconds > when:
            raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")
    if if_none_match is not None:
        if _etag_in(if_none_match, version.etag):
            raise S3Error("NotModified", ETag=f'"{version.etag}"')
    else:
        since = req.header("if-modified-since")
        when = parse_http_date(since) if since else None
        if when is not None and seconds <= when:
            raise S3Error("NotModified", ETag=f'"{version.etag}"')


def object_headers(req: Any, version: ObjectVersion, versioned: bool) -> dict[str, str]:
    """The headers describing a version on GET and HEAD."""
    headers = {
        "Content-Type": version.content_type or "binary/octet-stream",
        "ETag": f'"{version.etag}"',
        "Last-Modified": http_date(version.mtime_ns),
        "Accept-Ranges": "bytes",
    }
    for name, value in version.headers.items():
        headers[STORED_HEADERS.get(name, name)] = value
    for name, value in version.metadata.items():
        headers["x-amz-meta-" + name] = value
    if version.storage_class != "STANDARD":
        headers["x-amz-storage-class"] = version.storage_class
    headers.update(_version_headers(version, versioned))
    if (req.header("x-amz-checksum-mode") or "").upper() == "ENABLED":
        for alg, value in version.checksums.items():
            headers[ck.header_name(alg)] = value
    if version.parts:
        headers["x-amz-mp-parts-count"] = str(len(version.parts))
    for param, header in RESPONSE_OVERRIDES.items():
        if param in req.params:
            if req.auth is None:
                raise S3Error("InvalidRequest", "Response header overrides need a signed request.")
            headers[header] = req.params[param]
    return headers


def _part_range(req: Any, version: ObjectVersion) -> tuple[int, int] | None:
    raw = req.params.get("partNumber")
    if raw is None:
        return None
    number = decimal(raw)
    if number is None or not 1 <= number <= 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000.",
                      ArgumentName="partNumber")
    sizes = version.parts or [version.size]
    if number > len(sizes):
        raise S3Error("InvalidPartNumber" if version.parts else "InvalidRange",
                      "The requested partnumber is not satisfiable")
    start = sum(sizes[: number - 1])
    return start, start + sizes[number - 1] - 1


async def _read(req: Any, with_body: bool) -> Response:
    engine = req.front.engine
    version_id = req.params.get("versionId") or None
    opened = await engine.open_object(req.target.bucket, req.target.key, version_id, with_body)
    version = opened.version
    check_read_conditions(req, version)
    headers = object_headers(req, version, opened.bucket.versioning is not None)
    part = _part_range(req, version)
    span = part if part is not None else parse_range(req.header("range"), version.size)
    status = 200
    first, last = 0, version.size - 1
    if span is not None:
        first, last = span
        if part is None or version.parts:
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{version.size}"
        for name in [h for h in headers if h.startswith("x-amz-checksum-")]:
            del headers[name]
    length = max(0, last - first + 1)
    headers["Content-Length"] = str(length)
    if not with_body or length == 0:
        return Response(status=status, headers=headers)
    if opened.first_chunk is not None:
        return Response(status=status, headers=headers, body=opened.first_chunk[first : last + 1])

    async def stream(request: Any) -> None:
        await send_object(request, engine, opened.locations, first, last)

    return Response(status=status, headers=headers, stream=stream)


async def get_object(req: Any) -> Response:
    """GetObject: whole, one range, or one part; streamed chunk by chunk."""
    return await _read(req, True)


async def head_object(req: Any) -> Response:
    """HeadObject."""
    return await _read(req, False)


async def delete_object(req: Any) -> Response:
    """DeleteObject (204 whether or not the key existed)."""
    engine = req.front.engine
    await engine.get_bucket(req.target.bucket)
    version_id = req.params.get("versionId") or None
    outcome = await engine.delete_object(req.target.bucket, req.target.key, version_id)
    headers = {}
    if outcome.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    if outcome.version_id:
        headers["x-amz-version-id"] = outcome.version_id
    return Response(status=204, headers=headers)


def parse_copy_source(header: str) -> CopySource:
    """``/bucket/key?versionId=v`` (URL-encoded, leading slash optional)."""
    path, _, query = header.partition("?")
    text = unquote(path).lstrip("/")
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument",
                      "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                      ArgumentName="x-amz-copy-source")
    version_id = None
    if query:
        name, _, value = query.partition("=")
        if name != "versionId" or not value:
            raise S3Error("InvalidArgument", "Unsupported copy source parameter.",
                          ArgumentName="x-amz-copy-source")
        version_id = unquote(value)
    return CopySource(bucket, key, version_id)


def copy_source_check(req: Any) -> Any:
    """The x-amz-copy-source-if-* conditions as a check run inside the copy transaction."""
    if_match = req.header("x-amz-copy-source-if-match")
    if_none_match = req.header("x-amz-copy-source-if-none-match")
    modified = req.header("x-amz-copy-source-if-modified-since")
    unmodified = req.header("x-amz-copy-source-if-unmodified-since")

    def check(version: ObjectVersion) -> None:
        seconds = version.mtime_ns // 1_000_000_000
        if if_match is not None and not _etag_in(if_match, version.etag):
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If-Match")
        if if_none_match is not None and _etag_in(if_none_match, version.etag):
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If-None-Match")
        when = parse_http_date(unmodified) if unmodified else None
        if if_match is None and when is not None and seconds > when:
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If-Unmodified-Since")
        when = parse_http_date(modified) if modified else None
        if if_none_match is None and when is not None and seconds <= when:
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If-Modified-Since")

    return check


async def copy_object(req: Any) -> Response:
    """CopyObject: a metadata-only copy that shares the source's chunks."""
    source = parse_copy_source(req.header("x-amz-copy-source") or "")
    directive = (req.header("x-amz-metadata-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.",
                      ArgumentName="x-amz-metadata-directive")
    replace = new_object_from_headers(req) if directive == "REPLACE" else None
    same = (
        source.bucket == req.target.bucket
        and source.key == req.target.key
        and source.version_id is None
    )
    if same and directive == "COPY" and req.header("x-amz-storage-class") is None:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect location "
            "or encryption attributes.",
        )
    if replace is None and req.header("x-amz-storage-class") is not None:
        replace_sc = req.header("x-amz-storage-class")
    else:
        replace_sc = None
    check = copy_source_check(req)
    engine = req.front.engine
    src, version = await engine.copy_object(
        source, req.target.bucket, req.target.key, replace, write_conditions(req), check
    )
    if replace_sc is not None and replace is None:
        pass  # storage class is informational only; every object is stored alike
    headers: dict[str, str] = {}
    if src.version_id != NULL_VERSION:
        headers["x-amz-copy-source-version-id"] = src.version_id
    headers.update(_version_headers(version, False))
    return xml_response(
        "CopyObjectResult",
        [("LastModified", iso8601(version.mtime_ns)), ("ETag", f'"{version.etag}"')],
        **headers,
    )


def _head(req: Any) -> Any:
    """The object the request names must exist (its version, if one is named)."""
    version_id = req.params.get("versionId") or None
    return req.front.engine.head_object(req.target.bucket, req.target.key, version_id)


async def get_object_acl(req: Any) -> Response:
    """GetObjectAcl: the owner's canned ``private`` ACL."""
    await _head(req)
    return acl_document(req)


async def put_object_acl(req: Any) -> Response:
    """PutObjectAcl (``private`` only)."""
    await _head(req)
    check_acl_request(req)
    return Response()


async def get_object_tagging(req: Any) -> Response:
    """GetObjectTagging: objects carry no tags yet, so the set is empty."""
    await _head(req)
    return xml_response("Tagging", [("TagSet", [])])


_ = Deferred  # Deferreds are awaited by the handlers above
