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

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from s4d.engine import (
    NULL_VERSION,
    Completion,
    LifecycleFacade,
    MultipartFacade,
    MultipartUpload,
    PartRecord,
    RequestedPart,
    check_part_number,
    query_tags,
)
from s4d.errors import S3Error
from s4d.s3.call import Response, ResponseWriter, S3Call
from s4d.s3.dates import http_date, iso8601
from s4d.s3.dispatch import BodyMode, Route, RouteKey, route
from s4d.s3.errors import error_body
from s4d.s3.handlers.common import int_param, owner, url_encoder, xml_response
from s4d.s3.handlers.objects import (
    copy_source_conditions,
    expiration_header,
    new_object_acl,
    new_object_from_headers,
    parse_copy_source,
    write_conditions,
)
from s4d.s3.objectlock import requested_lock
from s4d.s3.xml import Node, child_text, parse, render
from s4d.util import checksums as ck
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


# -- create ---------------------------------------------------------------------------


def _checksum_settings(call: S3Call) -> tuple[str | None, str | None]:
    """The upload's checksum algorithm and type (S3's defaults filled in)."""
    raw_alg = call.header("x-amz-checksum-algorithm")
    raw_type = call.header("x-amz-checksum-type")
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


def _captured_extra(call: S3Call, checksum_type: str | None) -> dict[str, Any]:
    """Headers kept for the completed object: tagging, ACL, checksum type, object lock."""
    extra: dict[str, Any] = {}
    lock = requested_lock(call.headers)
    if not lock.is_empty():
        extra["lock"] = lock.encode()
    tagging = call.header("x-amz-tagging")
    if tagging is not None:
        query_tags(tagging)  # refused now (InvalidTag), not at completion
        extra["tagging"] = tagging
    acl = new_object_acl(call)
    if acl is not None:
        extra["acl"] = acl
    if checksum_type is not None:
        extra["checksum_type"] = checksum_type
    return extra


def upload_owner(call: S3Call, upload: MultipartUpload) -> list[Node]:
    """The Owner of an upload: whoever will own the object (its ACL's owner), else the
    bucket's owner."""
    acl = upload.extra.get("acl")
    user_id = acl.get("o") if isinstance(acl, dict) else None
    found = call.identities.principal_of(user_id) if user_id and call.identities else None
    if found is None:
        return owner(call)
    return [("ID", found.canonical_id), ("DisplayName", found.username)]


def _checksum_headers(upload: MultipartUpload) -> dict[str, str]:
    if not upload.checksum_algorithm:
        return {}
    return {
        "x-amz-checksum-algorithm": upload.checksum_algorithm,
        "x-amz-checksum-type": upload.extra.get("checksum_type", "COMPOSITE"),
    }


# -- parts ----------------------------------------------------------------------------


def _part_number(call: S3Call) -> int:
    raw = call.params.get("partNumber", "")
    try:
        number = int(raw)
    except ValueError:
        number = 0
    check_part_number(number)
    return number


def _part_headers(part: PartRecord) -> dict[str, str]:
    headers = {"ETag": f'"{part.md5}"'}
    for alg, value in part.checksums.items():
        headers[ck.header_name(alg)] = value
    return headers


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


# -- complete and abort -----------------------------------------------------------------


def parse_complete(body: bytes) -> list[RequestedPart]:
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
        parts.append(RequestedPart(number, etag, sums))
    return parts


def _location(call: S3Call) -> str:
    scheme = "https" if call.secure else "http"
    host = call.header("host") or "localhost"
    if call.virtual_host:
        return f"{scheme}://{host}/{quote(call.key)}"
    return f"{scheme}://{host}/{call.bucket}/{quote(call.key)}"


def _completion_document(call: S3Call, completion: Completion) -> tuple[bytes, dict[str, str]]:
    """The result document and headers (the same for a repeat of a completion)."""
    result = completion.result
    children: list[Node] = [
        ("Location", _location(call)),
        ("Bucket", call.bucket),
        ("Key", call.key),
        ("ETag", f'"{result.etag}"'),
    ]
    for alg, value in result.checksums.items():
        children.append((f"Checksum{alg}", value))
        children.append(("ChecksumType", ck.checksum_type(value)))
    headers = {"Content-Type": "application/xml"}
    if result.version_id != NULL_VERSION:
        headers["x-amz-version-id"] = result.version_id
    return render("CompleteMultipartUploadResult", children), headers


def settles_within(d: Deferred[Any], clock: IReactorTime, seconds: float) -> Deferred[bool]:
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


async def _keep_alive(
    writer: ResponseWriter, call: S3Call, d: Deferred[Completion], clock: IReactorTime
) -> None:
    """Write the declaration, spaces while ``d`` is pending, then its result or error."""
    _write(writer, _DECLARATION)
    while not await settles_within(d, clock, KEEPALIVE_EVERY):
        _write(writer, b" ")
    try:
        completion = await d
    except S3Error as e:
        document = error_body(e, call.raw_path, call.request_id, call.host_id)
    except Exception:  # noqa: BLE001 - the status is sent: report in the body
        log.failure("completing a multipart upload")
        document = error_body(
            S3Error("InternalError"), call.raw_path, call.request_id, call.host_id
        )
    else:
        document = _completion_document(call, completion)[0]
    _write(writer, document.removeprefix(_DECLARATION).lstrip())


def _write(writer: ResponseWriter, data: bytes) -> None:
    if not writer.gone:
        writer.write(data)


# -- listings ---------------------------------------------------------------------------


class MultipartHandlers:
    """Multipart operations over the engine's multipart facade.

    :param multipart: the engine's multipart facade.
    :param clock: the timer for keeping a long CompleteMultipartUpload alive
        (None turns keep-alive off).
    :param lifecycle: tells when lifecycle rules abort an upload or expire its object.
    """

    def __init__(
        self,
        multipart: MultipartFacade,
        clock: IReactorTime | None,
        lifecycle: LifecycleFacade | None = None,
    ) -> None:
        self.multipart = multipart
        self.clock = clock
        self.lifecycle = lifecycle

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        part = frozenset({"partNumber", "uploadId"})
        upload = frozenset({"uploadId"})
        yield (
            RouteKey("POST", "object", frozenset({"uploads"})),
            route("CreateMultipartUpload", self.create_multipart_upload, action="s3:PutObject"),
        )
        yield (
            RouteKey("PUT", "object", part),
            route("UploadPart", self.upload_part, BodyMode.STREAM, action="s3:PutObject"),
        )
        yield (
            RouteKey("PUT", "object", part, copy=True),
            route("UploadPartCopy", self.upload_part_copy, action="s3:PutObject"),
        )
        yield (
            RouteKey("POST", "object", upload),
            route("CompleteMultipartUpload", self.complete_multipart_upload, action="s3:PutObject"),
        )
        yield (
            RouteKey("DELETE", "object", upload),
            route("AbortMultipartUpload", self.abort_multipart_upload),
        )
        yield (
            RouteKey("GET", "object", upload),
            route("ListParts", self.list_parts, action="s3:ListMultipartUploadParts"),
        )
        yield (
            RouteKey("GET", "bucket", frozenset({"uploads"})),
            route(
                "ListMultipartUploads",
                self.list_multipart_uploads,
                action="s3:ListBucketMultipartUploads",
            ),
        )

    async def create_multipart_upload(self, call: S3Call) -> Response:
        """CreateMultipartUpload: records the object's attributes; no data yet."""
        new = new_object_from_headers(call)
        alg, kind = _checksum_settings(call)
        template = MultipartUpload(
            upload_id="",
            bucket_id=0,
            key=call.key,
            initiated_ns=0,
            content_type=new.content_type,
            metadata=new.metadata,
            headers=new.headers,
            storage_class=new.storage_class,
            checksum_algorithm=alg,
            extra=_captured_extra(call, kind),
        )
        upload = await self.multipart.create(call.bucket, call.key, template)
        headers = _checksum_headers(upload)
        headers.update(await self._abort_headers(call.bucket, upload))
        return xml_response(
            "InitiateMultipartUploadResult",
            [("Bucket", call.bucket), ("Key", call.key), ("UploadId", upload.upload_id)],
            headers=headers,
        )

    async def _abort_headers(self, bucket: str, upload: MultipartUpload) -> dict[str, str]:
        """``x-amz-abort-date`` and ``x-amz-abort-rule-id`` when a lifecycle rule aborts it."""
        if self.lifecycle is None:
            return {}
        found = await self.lifecycle.abort_date(bucket, upload.key, upload.initiated_ns)
        if found is None:
            return {}
        return {"x-amz-abort-date": http_date(found[0]), "x-amz-abort-rule-id": found[1]}

    async def upload_part(self, call: S3Call) -> Response:
        """UploadPart: the body streamed into segments as it arrived; check and commit it."""
        if call.upload is None:
            raise S3Error("InternalError", "upload without a body sink")
        body = await call.upload.receive()
        try:
            number = _part_number(call)
        except S3Error:
            self.multipart.discard(body)
            raise
        part = await self.multipart.commit_part(
            call.bucket, call.key, call.params["uploadId"], number, body
        )
        return Response(headers=_part_headers(part))

    async def upload_part_copy(self, call: S3Call) -> Response:
        """UploadPartCopy: a part that shares the source's chunks (edges re-cut)."""
        source = parse_copy_source(call.header("x-amz-copy-source") or "")
        byte_range = parse_copy_range(call.header("x-amz-copy-source-range"))
        number = _part_number(call)
        version, part = await self.multipart.copy_part(
            source,
            call.bucket,
            call.key,
            call.params["uploadId"],
            number,
            byte_range,
            copy_source_conditions(call),
        )
        headers: dict[str, str] = {}
        if version.version_id != NULL_VERSION:
            headers["x-amz-copy-source-version-id"] = version.version_id
        children: list[Node] = [("LastModified", iso8601(part.mtime_ns)), ("ETag", f'"{part.md5}"')]
        for alg, value in part.checksums.items():
            children.append((f"Checksum{alg}", value))
        return xml_response("CopyPartResult", children, headers=headers)

    async def complete_multipart_upload(self, call: S3Call) -> Response:
        """CompleteMultipartUpload: one metadata transaction, no part data copied."""
        parts = parse_complete(call.document())
        expected = {}
        for alg in ck.ALGORITHMS:
            value = call.header(ck.header_name(alg))
            if value is not None:
                expected[alg] = value.strip()
        size_header = call.header("x-amz-mp-object-size")
        object_size = None
        if size_header is not None:
            object_size = decimal(size_header.strip())
            if object_size is None:
                raise S3Error(
                    "InvalidArgument",
                    "Invalid x-amz-mp-object-size.",
                    ArgumentName="x-amz-mp-object-size",
                )
        d = self.multipart.complete(
            call.bucket,
            call.key,
            call.params["uploadId"],
            parts,
            write_conditions(call),
            expected,
            object_size,
        )
        clock = self.clock
        if clock is None or await settles_within(d, clock, KEEPALIVE_AFTER):
            completion = await d
            body, headers = _completion_document(call, completion)
            if completion.version is not None:  # a repeated Complete made nothing new
                headers.update(
                    await expiration_header(self.lifecycle, call.bucket, completion.version)
                )
            return Response(headers=headers, body=body)

        async def keep_alive(writer: ResponseWriter) -> None:
            await _keep_alive(writer, call, d, clock)

        return Response(headers={"Content-Type": "application/xml"}, stream=keep_alive)

    async def abort_multipart_upload(self, call: S3Call) -> Response:
        """AbortMultipartUpload: the parts go; ``NoSuchUpload`` if there is no such upload."""
        await self.multipart.abort(call.bucket, call.key, call.params["uploadId"])
        return Response(status=204)

    async def list_parts(self, call: S3Call) -> Response:
        """ListParts with max-parts and part-number-marker."""
        enc = url_encoder(call)
        marker = int_param(call, "part-number-marker", 0, 0)
        max_parts = int_param(call, "max-parts", 1000, 0, 1000)
        page = await self.multipart.list_parts(
            call.bucket, call.key, call.params["uploadId"], marker, max_parts
        )
        upload = page.upload
        children: list[Node] = [
            ("Bucket", call.bucket),
            ("Key", enc(call.key)),
            ("UploadId", upload.upload_id),
            ("PartNumberMarker", marker),
            ("NextPartNumberMarker", page.next_marker if page.next_marker is not None else marker),
            ("MaxParts", max_parts),
            ("IsTruncated", page.is_truncated),
            ("Initiator", upload_owner(call, upload)),
            ("Owner", upload_owner(call, upload)),
            ("StorageClass", upload.storage_class),
        ]
        if upload.checksum_algorithm:
            children.append(("ChecksumAlgorithm", upload.checksum_algorithm))
            children.append(("ChecksumType", upload.extra.get("checksum_type", "COMPOSITE")))
        if "encoding-type" in call.params:
            children.append(("EncodingType", "url"))
        for part in page.parts:
            item: list[Node] = [
                ("PartNumber", part.number),
                ("LastModified", iso8601(part.mtime_ns)),
                ("ETag", f'"{part.md5}"'),
                ("Size", part.size),
            ]
            for alg, value in part.checksums.items():
                item.append((f"Checksum{alg}", value))
            children.append(("Part", item))
        abort = await self._abort_headers(call.bucket, upload)
        return xml_response("ListPartsResult", children, headers=abort)

    async def list_multipart_uploads(self, call: S3Call) -> Response:
        """ListMultipartUploads: prefix, delimiter, key-marker, upload-id-marker, max-uploads."""
        enc = url_encoder(call)
        prefix = call.params.get("prefix", "")
        delimiter = call.params.get("delimiter") or None
        key_marker = call.params.get("key-marker") or None
        upload_id_marker = (call.params.get("upload-id-marker") or None) if key_marker else None
        max_uploads = int_param(call, "max-uploads", 1000, 0, 1000)
        page = await self.multipart.list_uploads(
            call.bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads
        )
        children: list[Node] = [
            ("Bucket", call.bucket),
            ("KeyMarker", enc(key_marker or "")),
            ("UploadIdMarker", upload_id_marker or ""),
            ("NextKeyMarker", enc(page.next_key_marker or "")),
            ("NextUploadIdMarker", page.next_upload_id_marker or ""),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("Prefix", enc(prefix)),
            ("MaxUploads", max_uploads),
            ("IsTruncated", page.is_truncated),
        ]
        if "encoding-type" in call.params:
            children.append(("EncodingType", "url"))
        for upload in page.uploads:
            item: list[Node] = [
                ("Key", enc(upload.key)),
                ("UploadId", upload.upload_id),
                ("Initiator", upload_owner(call, upload)),
                ("Owner", upload_owner(call, upload)),
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
