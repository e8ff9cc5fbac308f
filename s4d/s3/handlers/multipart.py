"""Multipart uploads: create, upload and copy parts, complete, abort, list.

UploadPart bodies stream into segments through the request's body sink like
PutObject's; UploadPartCopy shares the source's chunks by reference; Complete
writes metadata only. The rules (validation, reference counting) live in
:mod:`s4d.features.multipart`.

A Complete that takes long is kept alive as AWS does: once it has run for
:data:`KEEPALIVE_AFTER` seconds the 200 status and headers go out, then a space
every :data:`KEEPALIVE_EVERY` seconds, then the result document, or an
``<Error>`` document if the completion failed after all (SDKs look for one in a
200 answer to CompleteMultipartUpload). A quick completion answers normally,
with a proper error status when it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from s4d.errors import S3Error
from s4d.features import multipart as fm
from s4d.s3 import checksums as ck
from s4d.s3.dates import iso8601
from s4d.s3.dispatch import DispatchTable, Response
from s4d.s3.errors import error_body
from s4d.s3.handlers.common import body_of, int_param, owner, url_encoder, xml_response
from s4d.s3.handlers.objects import (
    copy_source_check,
    new_object_from_headers,
    parse_copy_source,
    write_conditions,
)
from s4d.s3.xml import child_text, parse, render
from s4d.store.model import NULL_VERSION, MultipartUpload, PartRecord
from s4d.util.numbers import decimal

log = Logger()

#: Seconds a Complete may take before its 200 goes out and keep-alive starts.
KEEPALIVE_AFTER = 3.0
#: Seconds between keep-alive spaces.
KEEPALIVE_EVERY = 5.0
#: The largest CompleteMultipartUpload document (10000 parts with checksums fit).
MAX_COMPLETE_XML = 4 << 20

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
CHECKSUM_TYPES = ("COMPOSITE", "FULL_OBJECT")


def register(table: DispatchTable) -> None:
    """Add the multipart operations to ``table``."""
    table.add("POST", "object", "uploads")(create_multipart_upload)
    table.add("PUT", "object", ("partNumber", "uploadId"))(upload_part)
    table.add("POST", "object", "uploadId")(complete_multipart_upload)
    table.add("DELETE", "object", "uploadId")(abort_multipart_upload)
    table.add("GET", "object", "uploadId")(list_parts)
    table.add("GET", "bucket", "uploads")(list_multipart_uploads)


# -- create ---------------------------------------------------------------------------


def _checksum_settings(req: Any) -> tuple[str | None, str | None]:
    """The upload's checksum algorithm and type (S3's defaults filled in)."""
    raw_alg = req.header("x-amz-checksum-algorithm")
    raw_type = req.header("x-amz-checksum-type")
    alg = ck.normalise_algorithm(raw_alg) if raw_alg else None
    kind = raw_type.strip().upper() if raw_type else None
    if kind is not None and kind not in CHECKSUM_TYPES:
        raise S3Error(
            "InvalidRequest", f"Value for x-amz-checksum-type header is invalid: {raw_type}"
        )
    if alg is None:
        if kind is not None:
            raise S3Error(
                "InvalidRequest",
                "The x-amz-checksum-type header can only be used with the "
                "x-amz-checksum-algorithm header.",
            )
        return None, None
    if kind is None:
        kind = "FULL_OBJECT" if alg == "CRC64NVME" else "COMPOSITE"
    if kind == "FULL_OBJECT" and alg not in ck.COMBINABLE:
        raise S3Error(
            "InvalidRequest", f"The FULL_OBJECT checksum type is not supported for {alg}."
        )
    if kind == "COMPOSITE" and alg == "CRC64NVME":
        raise S3Error(
            "InvalidRequest", "The COMPOSITE checksum type is not supported for CRC64NVME."
        )
    return alg, kind


def _captured_extra(req: Any, checksum_type: str | None) -> dict[str, Any]:
    """Headers kept for the completed object: tagging, object lock, ACL, checksum type."""
    extra: dict[str, Any] = {}
    tagging = req.header("x-amz-tagging")
    if tagging is not None:
        extra["tagging"] = tagging
    lock = {
        name: req.header(f"x-amz-object-lock-{name}")
        for name in ("mode", "retain-until-date", "legal-hold")
        if req.header(f"x-amz-object-lock-{name}") is not None
    }
    if lock:
        extra["lock"] = lock
    acl = req.header("x-amz-acl")
    if acl is not None:
        extra["acl"] = acl
    if checksum_type is not None:
        extra["checksum_type"] = checksum_type
    return extra


def _checksum_headers(upload: MultipartUpload) -> dict[str, str]:
    if not upload.checksum_algorithm:
        return {}
    return {
        "x-amz-checksum-algorithm": upload.checksum_algorithm,
        "x-amz-checksum-type": upload.extra.get("checksum_type", "COMPOSITE"),
    }


async def create_multipart_upload(req: Any) -> Response:
    """CreateMultipartUpload: records the object's attributes; no data yet."""
    new = new_object_from_headers(req)
    alg, kind = _checksum_settings(req)
    template = MultipartUpload(
        upload_id="",
        bucket_id=0,
        key=req.target.key,
        initiated_ns=0,
        content_type=new.content_type,
        metadata=new.metadata,
        headers=new.headers,
        storage_class=new.storage_class,
        checksum_algorithm=alg,
        extra=_captured_extra(req, kind),
    )
    upload = await req.front.engine.create_multipart(req.target.bucket, req.target.key, template)
    return xml_response(
        "InitiateMultipartUploadResult",
        [("Bucket", req.target.bucket), ("Key", req.target.key), ("UploadId", upload.upload_id)],
        **_checksum_headers(upload),
    )


# -- parts ----------------------------------------------------------------------------


def _part_number(req: Any) -> int:
    raw = req.params.get("partNumber", "")
    try:
        number = int(raw)
    except ValueError:
        number = 0
    fm.check_part_number(number)
    return number


def _part_headers(part: PartRecord) -> dict[str, str]:
    headers = {"ETag": f'"{part.md5}"'}
    for alg, value in part.checksums.items():
        headers[ck.header_name(alg)] = value
    return headers


async def upload_part(req: Any) -> Response:
    """UploadPart: the body has streamed into segments already; check and commit it."""
    if req.header("x-amz-copy-source") is not None:
        return await upload_part_copy(req)
    if req.sink is None:
        raise S3Error("InternalError", "upload without a body sink")
    body = await req.sink.finish()
    engine = req.front.engine
    try:
        number = _part_number(req)
    except S3Error:
        engine.discard(body.chunks)
        raise
    part = await engine.commit_part(
        req.target.bucket,
        req.target.key,
        req.params["uploadId"],
        number,
        body.chunks,
        body.size,
        body.md5_hex,
        body.checksums,
    )
    return Response(headers=_part_headers(part))


def parse_copy_range(header: str | None) -> tuple[int, int] | None:
    """``bytes=first-last`` of x-amz-copy-source-range; ``InvalidArgument`` otherwise."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    first_text, dash, last_text = spec.partition("-")
    first, last = decimal(first_text), decimal(last_text)
    if unit != "bytes" or not dash or first is None or last is None:
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first "
            "and last are the zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    return first, last


async def upload_part_copy(req: Any) -> Response:
    """UploadPartCopy: a part that shares the source's chunks (edges re-cut)."""
    source = parse_copy_source(req.header("x-amz-copy-source") or "")
    byte_range = parse_copy_range(req.header("x-amz-copy-source-range"))
    number = _part_number(req)
    version, part = await req.front.engine.copy_part(
        source,
        req.target.bucket,
        req.target.key,
        req.params["uploadId"],
        number,
        byte_range,
        copy_source_check(req),
        ck.new_checksum,
    )
    headers: dict[str, str] = {}
    if version.version_id != NULL_VERSION:
        headers["x-amz-copy-source-version-id"] = version.version_id
    children: list[Any] = [("LastModified", iso8601(part.mtime_ns)), ("ETag", f'"{part.md5}"')]
    for alg, value in part.checksums.items():
        children.append((f"Checksum{alg}", value))
    return xml_response("CopyPartResult", children, **headers)


# -- complete and abort -----------------------------------------------------------------


def parse_complete(body: bytes) -> list[fm.RequestedPart]:
    """The parts named by a CompleteMultipartUpload document."""
    root = parse(body, MAX_COMPLETE_XML)
    if root.tag != "CompleteMultipartUpload":
        raise S3Error("MalformedXML")
    parts = []
    for element in root.findall("Part"):
        number = decimal((child_text(element, "PartNumber") or "").strip())
        etag = child_text(element, "ETag")
        if number is None or etag is None:
            raise S3Error("MalformedXML")
        sums = {}
        for alg in ck.ALGORITHMS:
            value = child_text(element, f"Checksum{alg}")
            if value:
                sums[alg] = value.strip()
        parts.append(fm.RequestedPart(number, etag, sums))
    return parts


def object_checksums(expected: dict[str, str]) -> fm.ObjectChecksums:
    """The completed object's checksum, checked against one the client sent, if any.

    ``COMPOSITE``: the checksum of the parts' raw checksums, ``-N``.
    ``FULL_OBJECT``: the CRC of the whole object, combined from the part CRCs.
    No checksum when the upload has no algorithm or a part lacks its value.
    """

    def compute(upload: MultipartUpload, parts: list[PartRecord]) -> dict[str, str]:
        alg = upload.checksum_algorithm
        if not alg:
            return {}
        values = [p.checksums.get(alg) for p in parts]
        if any(v is None for v in values):
            return {}
        if upload.extra.get("checksum_type") == "FULL_OBJECT":
            value = ck.full_object(
                alg, [(v or "", p.size) for v, p in zip(values, parts, strict=True)]
            )
        else:
            value = ck.composite(alg, [v or "" for v in values])
        wanted = expected.get(alg)
        if wanted is not None and wanted.split("-")[0] != value.split("-")[0]:
            raise S3Error(
                "BadDigest",
                f"The {alg.lower()} you specified did not match the calculated checksum.",
            )
        return {alg: value}

    return compute


def _location(req: Any) -> str:
    scheme = "https" if req.isSecure() else "http"
    host = req.header("host") or "localhost"
    if req.target.virtual_host:
        return f"{scheme}://{host}/{quote(req.target.key)}"
    return f"{scheme}://{host}/{req.target.bucket}/{quote(req.target.key)}"


def _completion_document(req: Any, completion: fm.Completion) -> tuple[bytes, dict[str, str]]:
    version = completion.version
    children: list[Any] = [
        ("Location", _location(req)),
        ("Bucket", req.target.bucket),
        ("Key", req.target.key),
        ("ETag", f'"{version.etag}"'),
    ]
    for alg, value in version.checksums.items():
        children.append((f"Checksum{alg}", value))
    if version.checksums:
        children.append(("ChecksumType", completion.upload.extra.get("checksum_type", "COMPOSITE")))
    headers = {"Content-Type": "application/xml"}
    if version.version_id != NULL_VERSION:
        headers["x-amz-version-id"] = version.version_id
    return render("CompleteMultipartUploadResult", children), headers


def settles_within(d: Deferred[Any], clock: Any, seconds: float) -> Deferred[bool]:
    """Fires True as soon as ``d`` has a result, or False after ``seconds``.

    ``d``'s result passes through untouched.
    """
    out: Deferred[bool] = Deferred()

    def fire(settled: bool) -> None:
        if not out.called:
            out.callback(settled)

    call = clock.callLater(seconds, fire, False)

    def done(result: Any) -> Any:
        if call.active():
            call.cancel()
        # Fire on the next turn: the waiter then awaits ``d``, which must have
        # finished running its callbacks by then.
        clock.callLater(0, fire, True)
        return result

    d.addBoth(done)
    return out


async def complete_multipart_upload(req: Any) -> Response:
    """CompleteMultipartUpload: one metadata transaction, no part data copied."""
    parts = parse_complete(body_of(req))
    expected = {}
    for alg in ck.ALGORITHMS:
        value = req.header(ck.header_name(alg))
        if value is not None:
            expected[alg] = value.strip()
    size_header = req.header("x-amz-mp-object-size")
    object_size = None
    if size_header is not None:
        object_size = decimal(size_header.strip())
        if object_size is None:
            raise S3Error(
                "InvalidArgument",
                "Invalid x-amz-mp-object-size.",
                ArgumentName="x-amz-mp-object-size",
            )
    d = req.front.engine.complete_multipart(
        req.target.bucket,
        req.target.key,
        req.params["uploadId"],
        parts,
        write_conditions(req),
        object_checksums(expected),
        object_size,
    )
    clock = req.front.clock
    if clock is None or await settles_within(d, clock, KEEPALIVE_AFTER):
        body, headers = _completion_document(req, await d)
        return Response(headers=headers, body=body)

    async def keep_alive(request: Any) -> None:
        await _keep_alive(request, d, clock)

    return Response(headers={"Content-Type": "application/xml"}, stream=keep_alive)


async def _keep_alive(request: Any, d: Deferred[fm.Completion], clock: Any) -> None:
    """Write the declaration, spaces while ``d`` is pending, then its result or error."""
    _write(request, _DECLARATION)
    while not await settles_within(d, clock, KEEPALIVE_EVERY):
        _write(request, b" ")
    try:
        completion = await d
    except S3Error as e:
        document = error_body(e, request)
    except Exception:  # noqa: BLE001 - the status is sent: report in the body
        log.failure("completing a multipart upload")
        document = error_body(S3Error("InternalError"), request)
    else:
        document = _completion_document(request, completion)[0]
    _write(request, document.removeprefix(_DECLARATION).lstrip())


def _write(request: Any, data: bytes) -> None:
    if not request.finished and not getattr(request, "_disconnected", False):
        request.write(data)


async def abort_multipart_upload(req: Any) -> Response:
    """AbortMultipartUpload: the parts go; ``NoSuchUpload`` if there is no such upload."""
    await req.front.engine.abort_multipart(
        req.target.bucket, req.target.key, req.params["uploadId"]
    )
    return Response(status=204)


# -- listings ---------------------------------------------------------------------------


def _initiator(req: Any) -> list[Any]:
    return owner(req)


async def list_parts(req: Any) -> Response:
    """ListParts with max-parts and part-number-marker."""
    enc = url_encoder(req)
    marker = int_param(req, "part-number-marker", 0, 0)
    max_parts = int_param(req, "max-parts", 1000, 0, 1000)
    page = await req.front.engine.list_parts(
        req.target.bucket, req.target.key, req.params["uploadId"], marker, max_parts
    )
    upload = page.upload
    children: list[Any] = [
        ("Bucket", req.target.bucket),
        ("Key", enc(req.target.key)),
        ("UploadId", upload.upload_id),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", page.next_marker if page.next_marker is not None else marker),
        ("MaxParts", max_parts),
        ("IsTruncated", page.is_truncated),
        ("Initiator", _initiator(req)),
        ("Owner", owner(req)),
        ("StorageClass", upload.storage_class),
    ]
    if upload.checksum_algorithm:
        children.append(("ChecksumAlgorithm", upload.checksum_algorithm))
        children.append(("ChecksumType", upload.extra.get("checksum_type", "COMPOSITE")))
    if "encoding-type" in req.params:
        children.append(("EncodingType", "url"))
    for part in page.parts:
        item: list[Any] = [
            ("PartNumber", part.number),
            ("LastModified", iso8601(part.mtime_ns)),
            ("ETag", f'"{part.md5}"'),
            ("Size", part.size),
        ]
        for alg, value in part.checksums.items():
            item.append((f"Checksum{alg}", value))
        children.append(("Part", item))
    return xml_response("ListPartsResult", children)


async def list_multipart_uploads(req: Any) -> Response:
    """ListMultipartUploads: prefix, delimiter, key-marker, upload-id-marker, max-uploads."""
    enc: Callable[[Any], Any] = url_encoder(req)
    prefix = req.params.get("prefix", "")
    delimiter = req.params.get("delimiter") or None
    key_marker = req.params.get("key-marker") or None
    upload_id_marker = (req.params.get("upload-id-marker") or None) if key_marker else None
    max_uploads = int_param(req, "max-uploads", 1000, 0, 1000)
    page = await req.front.engine.list_multipart_uploads(
        req.target.bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads
    )
    children: list[Any] = [
        ("Bucket", req.target.bucket),
        ("KeyMarker", enc(key_marker or "")),
        ("UploadIdMarker", upload_id_marker or ""),
        ("NextKeyMarker", enc(page.next_key_marker or "")),
        ("NextUploadIdMarker", page.next_upload_id_marker or ""),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("Prefix", enc(prefix)),
        ("MaxUploads", max_uploads),
        ("IsTruncated", page.is_truncated),
    ]
    if "encoding-type" in req.params:
        children.append(("EncodingType", "url"))
    for upload in page.uploads:
        item: list[Any] = [
            ("Key", enc(upload.key)),
            ("UploadId", upload.upload_id),
            ("Initiator", _initiator(req)),
            ("Owner", owner(req)),
            ("StorageClass", upload.storage_class),
            ("Initiated", iso8601(upload.initiated_ns)),
        ]
        if upload.checksum_algorithm:
            item.append(("ChecksumAlgorithm", upload.checksum_algorithm))
            item.append(("ChecksumType", upload.extra.get("checksum_type", "COMPOSITE")))
        children.append(("Upload", item))
    for common in page.common_prefixes:
        children.append(("CommonPrefixes", [("Prefix", enc(common))]))
    return xml_response("ListMultipartUploadsResult", children)
