"""Object operations: Put, Get, Head, Delete (one and many), Copy, POST form uploads, ACLs."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, unquote

from twisted.internet.defer import Deferred

from s4d.engine import (
    MAX_OBJECT_TAGS,
    NULL_VERSION,
    CopySource,
    CopySourceConditions,
    LifecycleFacade,
    NewObject,
    ObjectsFacade,
    ObjectVersion,
    WriteConditions,
    query_tags,
)
from s4d.errors import S3Error
from s4d.s3.acls import object_acl_record
from s4d.s3.call import Response, ResponseWriter, S3Call
from s4d.s3.dates import http_date, iso8601, parse_http_date
from s4d.s3.dispatch import BodyMode, Route, RouteKey, route
from s4d.s3.handlers.bucket import check_body_integrity
from s4d.s3.handlers.common import requested_version, xml_response
from s4d.s3.handlers.tagging import parse_tagging
from s4d.s3.objectlock import bypass_governance, declares_integrity, lock_headers, requested_lock
from s4d.s3.producer import send_object
from s4d.s3.ranges import parse_range
from s4d.s3.xml import Node, child_text, parse, render
from s4d.util import checksums as ck
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


def new_object_from_headers(call: S3Call) -> NewObject:
    """Content type, user metadata, stored headers and storage class of a PUT or copy."""
    metadata: dict[str, str] = {}
    headers: dict[str, str] = {}
    for name, value in call.headers.items():
        if name.startswith("x-amz-meta-"):
            key = name[len("x-amz-meta-") :]
            metadata[key] = metadata[key] + "," + value if key in metadata else value
        elif name in STORED_HEADERS:
            headers[name] = value
    encoding = headers.get("content-encoding")
    if encoding is not None:
        stored = _without_aws_chunked(encoding)
        if stored:
            headers["content-encoding"] = stored
        else:
            del headers["content-encoding"]
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_BYTES:
        raise S3Error("MetadataTooLarge")
    storage_class = call.header("x-amz-storage-class") or "STANDARD"
    if storage_class not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", StorageClassRequested=storage_class)
    return NewObject(
        size=0,
        etag="",
        content_type=call.header("content-type"),
        metadata=metadata,
        headers=headers,
        storage_class=storage_class,
    )


def new_object_acl(call: S3Call) -> dict[str, object] | None:
    """The stored ACL of a version a request writes (see
    :func:`s4d.s3.acls.object_acl_record`); None: the bucket owner's default."""
    if call.identities is None:
        return None
    return object_acl_record(call.headers, call.principal, call.access, call.identities.grantee)


def _without_aws_chunked(encoding: str) -> str:
    """Content-Encoding as sent, less any ``aws-chunked`` token (the framing, not the object's)."""
    pieces = encoding.split(",")
    kept = [p for p in pieces if p.strip().lower() != "aws-chunked"]
    if len(kept) == len(pieces):
        return encoding
    return ",".join(kept).strip(" \t,")


def write_conditions(call: S3Call) -> WriteConditions:
    """If-Match / If-None-Match on a write."""
    return WriteConditions(
        if_match=call.header("if-match"), if_none_match=call.header("if-none-match")
    )


def _version_headers(version: ObjectVersion, versioned: bool) -> dict[str, str]:
    if versioned or version.version_id != NULL_VERSION:
        return {"x-amz-version-id": version.version_id}
    return {}


OBJECT_ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})


def _wanted_attributes(call: S3Call) -> frozenset[str]:
    """The attributes ``x-amz-object-attributes`` names (at least one, each known)."""
    raw = ",".join(v for n, v in call.headers.items() if n == "x-amz-object-attributes")
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    unknown = names - OBJECT_ATTRIBUTES
    if not names or unknown:
        raise S3Error(
            "InvalidArgument",
            "Invalid attribute name specified.",
            ArgumentName="x-amz-object-attributes",
            ArgumentValue=",".join(sorted(unknown)),
        )
    return names


def _object_parts(call: S3Call, version: ObjectVersion) -> list[Node]:
    """ObjectParts of GetObjectAttributes: a page of parts (number, size, checksum)."""
    sizes = version.parts or []
    max_parts = decimal(call.header("x-amz-max-parts") or "1000")
    marker = decimal(call.header("x-amz-part-number-marker") or "0")
    if max_parts is None or marker is None:
        raise S3Error("InvalidArgument", "Invalid part number marker or max parts.")
    max_parts = min(max_parts, 1000)
    numbered = list(enumerate(sizes, 1))[marker:]
    page, truncated = numbered[:max_parts], len(numbered) > max_parts
    children: list[Node] = [
        ("IsTruncated", truncated),
        ("MaxParts", max_parts),
        ("NextPartNumberMarker", page[-1][0] if page else marker),
        ("PartNumberMarker", marker),
    ]
    for number, size in page:
        part: list[Node] = [("PartNumber", number), ("Size", size)]
        if version.part_checksums is not None:
            part += [
                (f"Checksum{alg}", version.part_checksums[number - 1]) for alg in version.checksums
            ]
        children.append(("Part", part))
    children.append(("PartsCount", len(sizes)))
    return children


def _etag_in(header: str, etag: str) -> bool:
    values = {v.strip() for v in header.split(",")}
    return "*" in values or f'"{etag}"' in values or etag in values


def check_read_conditions(call: S3Call, version: ObjectVersion) -> None:
    """If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since (RFC 7232 order)."""
    seconds = version.mtime_ns // 1_000_000_000
    if_match = call.header("if-match")
    if_none_match = call.header("if-none-match")
    if if_match is not None:
        if not _etag_in(if_match, version.etag):
            raise S3Error("PreconditionFailed", Condition="If-Match")
    else:
        since = call.header("if-unmodified-since")
        when = parse_http_date(since) if since else None
        if when is not None and seconds > when:
            raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")
    if if_none_match is not None:
        if _etag_in(if_none_match, version.etag):
            raise S3Error("NotModified", ETag=f'"{version.etag}"')
    else:
        since = call.header("if-modified-since")
        when = parse_http_date(since) if since else None
        if when is not None and seconds <= when:
            raise S3Error("NotModified", ETag=f'"{version.etag}"')


def object_headers(call: S3Call, version: ObjectVersion, versioned: bool) -> dict[str, str]:
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
    if checksum_mode(call):
        for alg, value in version.checksums.items():
            headers[ck.header_name(alg)] = value
            headers["x-amz-checksum-type"] = ck.checksum_type(value)
    if version.parts:
        headers["x-amz-mp-parts-count"] = str(len(version.parts))
    if version.tags:
        headers["x-amz-tagging-count"] = str(len(version.tags))
    # TODO(authorization issue): AWS returns these only to callers allowed
    # s3:GetObjectRetention / s3:GetObjectLegalHold; today's single user (root) is.
    if not version.lock.is_empty():
        headers.update(lock_headers(version.lock))
    for param, header in RESPONSE_OVERRIDES.items():
        if param in call.params:
            if call.identity is None:
                raise S3Error("InvalidRequest", "Response header overrides need a signed request.")
            headers[header] = call.params[param]
    return headers


def checksum_mode(call: S3Call) -> bool:
    """``x-amz-checksum-mode: ENABLED``: the client asks for stored checksums."""
    return (call.header("x-amz-checksum-mode") or "").upper() == "ENABLED"


def part_checksum_headers(version: ObjectVersion, number: int) -> dict[str, str]:
    """The checksum headers of part ``number`` of a multipart object (none if unknown).

    The type stays the object's (``COMPOSITE`` or ``FULL_OBJECT``), as AWS answers.
    """
    if version.part_checksums is None or len(version.checksums) != 1:
        return {}
    ((alg, value),) = version.checksums.items()
    return {
        ck.header_name(alg): version.part_checksums[number - 1],
        "x-amz-checksum-type": ck.checksum_type(value),
    }


def _part_range(call: S3Call, version: ObjectVersion) -> tuple[int, int] | None:
    raw = call.params.get("partNumber")
    if raw is None:
        return None
    number = decimal(raw)
    if number is None or not 1 <= number <= 10000:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000.",
            ArgumentName="partNumber",
        )
    sizes = version.parts or [version.size]
    if number > len(sizes):
        # a part the object does not have (a single-part object has only part 1);
        # InvalidPart as AWS and the conformance suite answer
        raise S3Error("InvalidPart", "The requested partnumber is not satisfiable")
    start = sum(sizes[: number - 1])
    return start, start + sizes[number - 1] - 1


def parse_copy_source(header: str) -> CopySource:
    """``/bucket/key?versionId=v`` (URL-encoded, leading slash optional)."""
    path, _, query = header.partition("?")
    text = unquote(path).lstrip("/")
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
        )
    version_id = None
    if query:
        name, _, value = query.partition("=")
        if name != "versionId" or not value:
            raise S3Error(
                "InvalidArgument",
                "Unsupported copy source parameter.",
                ArgumentName="x-amz-copy-source",
            )
        version_id = unquote(value)
    return CopySource(bucket, key, version_id)


def copy_source_conditions(call: S3Call) -> CopySourceConditions:
    """The x-amz-copy-source-if-* conditions, checked on the source inside the copy."""
    modified = call.header("x-amz-copy-source-if-modified-since")
    unmodified = call.header("x-amz-copy-source-if-unmodified-since")
    gate = call.gate
    return CopySourceConditions(
        check_access=(lambda v: gate.check_source(v.extra.get("acl"))) if gate else None,
        if_match=call.header("x-amz-copy-source-if-match"),
        if_none_match=call.header("x-amz-copy-source-if-none-match"),
        if_modified_since=parse_http_date(modified) if modified else None,
        if_unmodified_since=parse_http_date(unmodified) if unmodified else None,
    )


def _delete_request(body: bytes) -> tuple[bool, list[tuple[str, str | None]]]:
    """Quiet mode and the (key, version) pairs of a DeleteObjects document."""
    root = parse(body)
    if root.tag != "Delete":
        raise S3Error("MalformedXML")
    quiet = (child_text(root, "Quiet", "false") or "false").strip().lower() == "true"
    items: list[tuple[str, str | None]] = []
    for obj in root.findall("Object"):
        key = child_text(obj, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        items.append((key, child_text(obj, "VersionId")))
    if not items or len(items) > 1000:
        raise S3Error("MalformedXML")
    return quiet, items


async def expiration_header(
    lifecycle: LifecycleFacade | None, bucket: str, version: ObjectVersion
) -> dict[str, str]:
    """``x-amz-expiration`` for the current ``version``, when a lifecycle rule expires it."""
    if lifecycle is None:
        return {}
    found = lifecycle.expiration(bucket, version)
    if isinstance(found, Deferred):
        found = await found
    if found is None:
        return {}
    when, rule_id = found
    return {"x-amz-expiration": f'expiry-date="{http_date(when)}", rule-id="{rule_id}"'}


def object_url(call: S3Call, key: str) -> str:
    """The URL of ``key`` in the call's bucket, as the client addressed the server."""
    host = call.header("host")
    path = ("/" if call.virtual_host else f"/{quote(call.bucket)}/") + quote(key)
    if not host:
        return path
    return f"{'https' if call.secure else 'http'}://{host}{path}"


#: Form fields stored as headers of a POST Object upload.
FORM_HEADERS = ("cache-control", "content-disposition", "content-encoding", "expires")


class ObjectHandlers:
    """Object operations over the engine's object facade.

    :param lifecycle: tells when a lifecycle rule expires an object (``x-amz-expiration``).
    """

    def __init__(self, objects: ObjectsFacade, lifecycle: LifecycleFacade | None = None) -> None:
        self.objects = objects
        self.lifecycle = lifecycle

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        obj = "object"
        yield RouteKey("PUT", obj), route("PutObject", self.put_object, BodyMode.STREAM)
        yield (
            RouteKey("PUT", obj, copy=True),
            route("CopyObject", self.copy_object, action="s3:PutObject"),
        )
        yield RouteKey("GET", obj), route("GetObject", self.get_object)
        yield RouteKey("HEAD", obj), route("HeadObject", self.head_object, action="s3:GetObject")
        yield RouteKey("DELETE", obj), route("DeleteObject", self.delete_object)
        yield (
            RouteKey("GET", obj, frozenset({"attributes"})),
            route("GetObjectAttributes", self.get_attributes),
        )
        yield (
            RouteKey("POST", "bucket", frozenset({"delete"})),
            route("DeleteObjects", self.delete_objects, action="s3:DeleteObject"),
        )
        yield (
            RouteKey("POST", "bucket"),
            route("PostObject", self.post_object, BodyMode.FORM, action="s3:PutObject"),
        )

    async def put_object(self, call: S3Call) -> Response:
        """PutObject: the body streamed into segments as it arrived; check and commit it."""
        if call.upload is None:
            raise S3Error("InternalError", "upload without a body sink")
        new = new_object_from_headers(call)
        new.tags = query_tags(call.header("x-amz-tagging"))
        new.lock = requested_lock(call.headers)
        new.integrity_declared = declares_integrity(call.headers)
        new.acl = new_object_acl(call)
        body = await call.upload.receive()
        version = await self.objects.put(call.bucket, call.key, new, body, write_conditions(call))
        headers = {"ETag": f'"{version.etag}"'}
        headers.update(_version_headers(version, False))
        for alg, value in version.checksums.items():
            headers[ck.header_name(alg)] = value
        headers.update(await expiration_header(self.lifecycle, call.bucket, version))
        return Response(headers=headers)

    async def _read(self, call: S3Call, with_body: bool) -> Response:
        version_id = requested_version(call)
        opened = await self.objects.open(call.bucket, call.key, version_id, with_body)
        version = opened.version
        call.check_object(version.extra.get("acl"))
        check_read_conditions(call, version)
        versioned = opened.bucket is not None and opened.bucket.versioning is not None
        headers = object_headers(call, version, versioned)
        if version_id is None:
            headers.update(await expiration_header(self.lifecycle, call.bucket, version))
        part = _part_range(call, version)
        span = part if part is not None else parse_range(call.header("range"), version.size)
        status = 200
        first, last = 0, version.size - 1
        if span is not None:
            first, last = span
            if part is None or version.parts:
                status = 206
                headers["Content-Range"] = f"bytes {first}-{last}/{version.size}"
            for name in [h for h in headers if h.startswith("x-amz-checksum-")]:
                del headers[name]
            if part is not None and version.parts and checksum_mode(call):
                headers.update(part_checksum_headers(version, int(call.params["partNumber"])))
        length = max(0, last - first + 1)
        headers["Content-Length"] = str(length)
        if not with_body or length == 0:
            return Response(status=status, headers=headers)
        if opened.first_chunk is not None:
            return Response(
                status=status, headers=headers, body=opened.first_chunk[first : last + 1]
            )
        objects = self.objects

        async def stream(writer: ResponseWriter) -> None:
            await send_object(writer, objects, opened.locations, first, last)

        return Response(status=status, headers=headers, stream=stream)

    async def get_object(self, call: S3Call) -> Response:
        """GetObject: whole, one range, or one part; streamed chunk by chunk."""
        return await self._read(call, True)

    async def head_object(self, call: S3Call) -> Response:
        """HeadObject."""
        return await self._read(call, False)

    async def get_attributes(self, call: S3Call) -> Response:
        """GetObjectAttributes: the parts of a HEAD named by ``x-amz-object-attributes``."""
        wanted = _wanted_attributes(call)
        version_id = requested_version(call)
        opened = await self.objects.open(call.bucket, call.key, version_id, False)
        version = opened.version
        check_read_conditions(call, version)
        versioned = opened.bucket is not None and opened.bucket.versioning is not None
        headers = {"Last-Modified": http_date(version.mtime_ns)}
        headers.update(_version_headers(version, versioned))
        children: list[Node] = []
        if "ETag" in wanted:
            children.append(("ETag", version.etag))
        if "Checksum" in wanted and version.checksums:
            sums: list[Node] = [(f"Checksum{a}", v) for a, v in version.checksums.items()]
            kind = ck.checksum_type(next(iter(version.checksums.values())))
            children.append(("Checksum", [*sums, ("ChecksumType", kind)]))
        if "ObjectParts" in wanted and version.parts is not None:
            children.append(("ObjectParts", _object_parts(call, version)))
        if "StorageClass" in wanted:
            children.append(("StorageClass", version.storage_class))
        if "ObjectSize" in wanted:
            children.append(("ObjectSize", version.size))
        return xml_response("GetObjectAttributesResponse", children, headers=headers)

    async def delete_object(self, call: S3Call) -> Response:
        """DeleteObject (204 whether or not the key existed; 403 for a locked version)."""
        version_id = requested_version(call)
        bypass = bypass_governance(call.headers)
        await self.objects.bucket(call.bucket)
        outcome = await self.objects.delete(call.bucket, call.key, version_id, bypass)
        headers = {}
        if outcome.delete_marker:
            headers["x-amz-delete-marker"] = "true"
        if outcome.version_id:
            headers["x-amz-version-id"] = outcome.version_id
        return Response(status=204, headers=headers)

    async def copy_object(self, call: S3Call) -> Response:
        """CopyObject: a metadata-only copy that shares the source's chunks."""
        source = parse_copy_source(call.header("x-amz-copy-source") or "")
        directive = (call.header("x-amz-metadata-directive") or "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error(
                "InvalidArgument",
                "Unknown metadata directive.",
                ArgumentName="x-amz-metadata-directive",
            )
        replace = new_object_from_headers(call) if directive == "REPLACE" else None
        tagging = (call.header("x-amz-tagging-directive") or "COPY").upper()
        if tagging not in ("COPY", "REPLACE"):
            raise S3Error(
                "InvalidArgument",
                "Unknown tagging directive.",
                ArgumentName="x-amz-tagging-directive",
            )
        tags = query_tags(call.header("x-amz-tagging")) if tagging == "REPLACE" else None
        same = source.bucket == call.bucket and source.key == call.key and source.version_id is None
        if same and directive == "COPY" and call.header("x-amz-storage-class") is None:
            raise S3Error(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
            )
        src, version = await self.objects.copy(
            source,
            call.bucket,
            call.key,
            replace,
            write_conditions(call),
            copy_source_conditions(call),
            tags,
            requested_lock(call.headers),
            new_object_acl(call),
        )
        headers: dict[str, str] = {}
        if src.version_id != NULL_VERSION:
            headers["x-amz-copy-source-version-id"] = src.version_id
        headers.update(_version_headers(version, False))
        headers.update(await expiration_header(self.lifecycle, call.bucket, version))
        return xml_response(
            "CopyObjectResult",
            [("LastModified", iso8601(version.mtime_ns)), ("ETag", f'"{version.etag}"')],
            headers=headers,
        )

    async def delete_objects(self, call: S3Call) -> Response:
        """DeleteObjects: up to 1000 keys, Quiet mode, per-key errors (a locked version...)."""
        bypass = bypass_governance(call.headers)
        body = call.document()
        check_body_integrity(call, body)
        quiet, items = _delete_request(body)
        await self.objects.bucket(call.bucket)
        gate = call.gate
        permitted = [gate is None or gate.may_delete(*item) for item in items]
        allowed = [item for item, ok in zip(items, permitted, strict=True) if ok]
        done = iter(await self.objects.delete_many(call.bucket, allowed, bypass))
        outcomes = [next(done) if ok else S3Error("AccessDenied") for ok in permitted]
        children: list[Node] = []
        for (key, version_id), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, S3Error):
                children.append(
                    (
                        "Error",
                        [
                            ("Key", key),
                            ("VersionId", version_id),
                            ("Code", outcome.code),
                            ("Message", outcome.message),
                        ],
                    )
                )
                continue
            if quiet:
                continue
            entry: list[Node] = [("Key", key), ("VersionId", version_id)]
            if outcome.delete_marker:
                entry += [("DeleteMarker", True), ("DeleteMarkerVersionId", outcome.version_id)]
            children.append(("Deleted", entry))
        return xml_response("DeleteResult", children)

    async def post_object(self, call: S3Call) -> Response:
        """POST Object: a browser form upload (the policy was verified as the body arrived)."""
        if call.form is None:
            raise S3Error(
                "InvalidRequest", "POST to a bucket must be a multipart/form-data upload."
            )
        await self.objects.bucket(call.bucket)
        form = await call.form.finish()
        fields = form.fields
        principal = call.principal
        if form.policy is not None and call.identities is not None:
            principal = call.identities.principal_for(form.policy.auth.access_key)
        acl = object_acl_record(
            call.headers,
            principal,
            call.access,
            call.identities.grantee if call.identities is not None else lambda _: None,
            fields.get("acl", "private"),
        )
        new = NewObject(
            size=form.size,
            etag=form.md5_hex,
            content_type=fields.get("content-type"),
            metadata={
                k[len("x-amz-meta-") :]: v for k, v in fields.items() if k.startswith("x-amz-meta-")
            },
            headers={k: v for k, v in fields.items() if k in FORM_HEADERS},
            acl=acl,
        )
        if "tagging" in fields:
            new.tags = parse_tagging(fields["tagging"].encode(), MAX_OBJECT_TAGS)
        version = await self.objects.put(call.bucket, form.key, new, form.body, WriteConditions())
        etag = f'"{version.etag}"'
        redirect = fields.get("success_action_redirect") or fields.get("redirect")
        if redirect:
            sep = "&" if "?" in redirect else "?"
            location = (
                f"{redirect}{sep}bucket={quote(call.bucket)}&key={quote(form.key)}"
                f"&etag={quote(etag)}"
            )
            return Response(status=303, headers={"Location": location, "ETag": etag})
        status = fields.get("success_action_status", "204")
        if status == "201":
            # AWS's PostResponse document carries no namespace
            document = render(
                "PostResponse",
                [
                    ("Location", object_url(call, form.key)),
                    ("Bucket", call.bucket),
                    ("Key", form.key),
                    ("ETag", etag),
                ],
                namespace=None,
            )
            headers = {"ETag": etag, "Content-Type": "application/xml"}
            return Response(status=201, headers=headers, body=document)
        return Response(status=200 if status == "200" else 204, headers={"ETag": etag})
