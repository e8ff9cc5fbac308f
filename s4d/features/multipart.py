"""Multipart uploads as transaction functions.

Each function runs inside one LMDB write transaction (or, for listings, a read
transaction) handed to it by the committer, checks everything before it changes
anything, and returns a plain result. That makes every multipart step atomic:
an upload is created, a part lands, an upload completes or is aborted in one
commit or not at all, so a crash can never leave an object half visible, and of
a Complete and an Abort racing on one upload exactly one finds it.

Reference counting: a committed part holds one reference on every chunk it
names, exactly like an object version. Replacing a part releases the old one's
references. Completing moves the references of the named parts into the new
version unchanged (its chunk list is their concatenation, so not one byte is
read or copied) and releases the parts it does not name. Aborting and expiry
release everything. Parts therefore deduplicate against objects and each other
through the one chunk index.

A completion also leaves a :class:`~s4d.store.model.CompletedUpload` record,
written in its transaction: a Complete repeated with the same part list (a
client retrying one whose answer it lost) gets the same result instead of
``NoSuchUpload``, as in AWS, until :func:`forget_completed` drops the record.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from s4d.errors import S3Error
from s4d.features.lock import check_requested, now_ms
from s4d.features.tagging import query_tags
from s4d.features.versions import (
    NewObject,
    WriteConditions,
    check_conditions,
    check_key,
    install_version,
    reference_chunks,
    version_from,
)
from s4d.store.chunks import WrittenChunk
from s4d.store.model import (
    Bucket,
    ChunkLocation,
    ChunkRef,
    CompletedUpload,
    MultipartUpload,
    ObjectLock,
    ObjectVersion,
    PartRecord,
)
from s4d.store.txn import MetaTxn

#: The smallest part that may be followed by another (S3's 5 MiB).
MIN_PART_SIZE = 5 << 20
#: Part numbers run from 1 to this.
MAX_PART_NUMBER = 10000
#: The most uploads one expiry transaction releases (or completed records it forgets).
EXPIRY_BATCH = 100
#: Fields of an upload's ``extra`` carried over to the completed version.
CARRIED_EXTRA = ("tagging", "acl", "checksum_type")
#: The ``extra`` field holding the object lock asked for (:meth:`ObjectLock.encode`);
#: the completed version gets it (or the bucket's default retention).
LOCK_EXTRA = "lock"

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}\Z")

#: Computes a completed object's checksums from its upload and parts; raises
#: ``S3Error`` to refuse the completion (a full-object checksum that differs).
ObjectChecksums = Callable[[MultipartUpload, list[PartRecord]], dict[str, str]]


def new_upload_id(t: MetaTxn) -> str:
    """A fresh upload id: 12 hex digits of a counter (so ids sort by age), 20 random."""
    return f"{t.counters.next_id(b'upload'):012x}{secrets.token_hex(10)}"


def check_part_number(number: int) -> None:
    """``InvalidArgument`` unless 1 <= number <= 10000."""
    if not 1 <= number <= MAX_PART_NUMBER:
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(number),
        )


def require_upload(
    t: MetaTxn, bucket_name: str, key: str, upload_id: str
) -> tuple[Bucket, MultipartUpload]:
    """The bucket and the upload; ``NoSuchUpload`` if it is not in progress for ``key``."""
    bucket = t.buckets.require(bucket_name)
    raw_key = check_key(key)
    if not _UPLOAD_ID.match(upload_id):
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    upload = t.multipart.upload(bucket.bucket_id, raw_key, upload_id)
    if upload is None:
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    return bucket, upload


# -- create, upload a part, abort -----------------------------------------------------


def create_upload(
    t: MetaTxn, bucket_name: str, key: str, template: MultipartUpload, now_ns: int
) -> MultipartUpload:
    """Start an upload of ``key`` carrying ``template``'s attributes; returns the record."""
    bucket = t.buckets.require(bucket_name)
    check_key(key)
    check_requested(bucket, ObjectLock.decode(template.extra.get(LOCK_EXTRA)), now_ms(t))
    upload = MultipartUpload(
        upload_id=new_upload_id(t),
        bucket_id=bucket.bucket_id,
        key=key,
        initiated_ns=now_ns,
        content_type=template.content_type,
        metadata=dict(template.metadata),
        headers=dict(template.headers),
        storage_class=template.storage_class,
        checksum_algorithm=template.checksum_algorithm,
        extra=dict(template.extra),
    )
    t.multipart.put_upload(upload)
    return upload


def upload_part(
    t: MetaTxn,
    bucket_name: str,
    key: str,
    upload_id: str,
    part: PartRecord,
    chunks: list[WrittenChunk],
) -> PartRecord:
    """Commit a part whose chunks are written; a part of the same number is replaced.

    ``chunks`` are the part's bytes in order: new records (indexed here) or
    chunks that already exist (deduplicated, or shared with a copy source),
    which gain a reference.
    """
    check_part_number(part.number)
    _, upload = require_upload(t, bucket_name, key, upload_id)
    alg = upload.checksum_algorithm
    if alg and part.checksums and alg not in part.checksums:
        raise S3Error(
            "InvalidRequest",
            f"Checksum Type mismatch occurred, expected checksum Type: {alg.lower()}, "
            f"actual checksum Type: {next(iter(part.checksums)).lower()}",
        )
    reference_chunks(t, chunks)
    part.chunks = [c.ref for c in chunks]
    old = t.multipart.part(upload_id, part.number)
    if old is not None:
        _release_chunks(t, old.chunks)
    t.multipart.put_part(upload_id, part)
    return part


def abort_upload(t: MetaTxn, bucket_name: str, key: str, upload_id: str) -> MultipartUpload:
    """Abort an upload: its parts and their chunk references go."""
    _, upload = require_upload(t, bucket_name, key, upload_id)
    release_upload(t, upload)
    return upload


def release_upload(t: MetaTxn, upload: MultipartUpload) -> int:
    """Remove an upload and all its parts, releasing their chunks; returns the part count."""
    parts = list(t.multipart.parts(upload.upload_id))
    for part in parts:
        _release_chunks(t, part.chunks)
        t.multipart.delete_part(upload.upload_id, part.number)
    t.multipart.delete_upload(upload)
    return len(parts)


def abort_bucket_uploads(t: MetaTxn, bucket: Bucket) -> int:
    """Abort every upload in ``bucket`` (when the bucket goes); returns how many."""
    uploads = list(t.multipart.uploads(bucket.bucket_id))
    for upload in uploads:
        release_upload(t, upload)
    return len(uploads)


def expire_uploads(
    t: MetaTxn, cutoff_ns: int, limit: int = EXPIRY_BATCH, spare: frozenset[int] = frozenset()
) -> list[MultipartUpload]:
    """Abort up to ``limit`` uploads initiated before ``cutoff_ns``; returns them.

    Uploads of the buckets in ``spare`` (ids) are left alone (their lifecycle
    rules decide when they are aborted).
    """
    expired = []
    for upload in t.multipart.all_uploads():
        if upload.initiated_ns < cutoff_ns and upload.bucket_id not in spare:
            expired.append(upload)
            if len(expired) >= limit:
                break
    for upload in expired:
        release_upload(t, upload)
    return expired


def _release_chunks(t: MetaTxn, chunks: list[ChunkRef]) -> None:
    for chunk in chunks:
        t.chunks.decref(chunk.digest)


# -- copying a part --------------------------------------------------------------------


#: The largest part UploadPartCopy may make (5 GiB).
MAX_COPY_PART = 5 << 30


def copy_range(size: int, byte_range: tuple[int, int] | None) -> tuple[int, int]:
    """The inclusive range of a source of ``size`` bytes that a part copies.

    ``InvalidArgument`` if the range ends before it starts; ``InvalidRange`` (416)
    if it does not lie within the source; ``InvalidRequest`` if the part would be
    over 5 GiB.
    """
    first, last = byte_range if byte_range is not None else (0, size - 1)
    if byte_range is not None and first > last:
        raise S3Error(
            "InvalidArgument",
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
        )
    if byte_range is not None and last >= size:
        raise S3Error(
            "InvalidRange",
            f"The requested range is not satisfiable for source object of size: {size}",
            ActualObjectSize=size,
            RangeRequested=f"bytes={first}-{last}",
        )
    if last - first + 1 > MAX_COPY_PART:
        raise S3Error(
            "InvalidRequest",
            "The specified copy source is larger than the maximum allowable size for a copy "
            "source: 5368709120",
        )
    return first, last


def copy_plan(
    locations: list[ChunkLocation], first: int, last: int
) -> list[tuple[ChunkLocation, int, int]]:
    """The chunks covering bytes ``first..last`` with the slice ``[lo, hi)`` of each."""
    plan = []
    offset = 0
    for loc in locations:
        end = offset + loc.size
        if offset > last:
            break
        if end > first:
            plan.append((loc, max(first, offset) - offset, min(last + 1, end) - offset))
        offset = end
    return plan


# -- complete ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestedPart:
    """One ``<Part>`` of a CompleteMultipartUpload request."""

    number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """What completing an upload made.

    ``result`` is what the answer reports; ``upload`` and ``version`` are None
    when the Complete repeated one that had succeeded before (nothing was made).
    """

    result: CompletedUpload
    upload: MultipartUpload | None = None
    version: ObjectVersion | None = None

    @property
    def repeated(self) -> bool:
        """True when this answers a repeat of an earlier completion."""
        return self.version is None


def multipart_etag(md5s: list[str]) -> str:
    """S3's multipart ETag: MD5 of the concatenated binary part MD5s, ``-`` part count."""
    digest = hashlib.md5(b"".join(bytes.fromhex(m) for m in md5s), usedforsecurity=False)
    return f"{digest.hexdigest()}-{len(md5s)}"


def _normal_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def named_parts(upload_id: str, requested: list[RequestedPart]) -> list[RequestedPart]:
    """The parts a Complete names, one per number: ``InvalidPartOrder`` unless they ascend.

    A number given twice in a row (a part uploaded twice whose client kept both
    answers) names that part once: the later entry counts, as the later upload
    is the one stored.
    """
    if not requested:
        raise S3Error("MalformedXML", "You must specify at least one part.")
    named: list[RequestedPart] = []
    for item in requested:
        if named and item.number == named[-1].number:
            named[-1] = item
        elif named and item.number < named[-1].number:
            raise S3Error("InvalidPartOrder", UploadId=upload_id)
        else:
            named.append(item)
    return named


def parts_digest(named: list[RequestedPart]) -> str:
    """A fingerprint of a Complete's part list (numbers and ETags) to recognise a repeat."""
    text = ",".join(f"{item.number}:{_normal_etag(item.etag)}" for item in named)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def complete_upload(
    t: MetaTxn,
    bucket_name: str,
    key: str,
    upload_id: str,
    requested: list[RequestedPart],
    conditions: WriteConditions,
    now_ns: int,
    checksums: ObjectChecksums | None = None,
    object_size: int | None = None,
    min_part_size: int = MIN_PART_SIZE,
) -> Completion:
    """Make the object from the named parts, validating as S3 does; only metadata is written.

    ``InvalidPartOrder`` unless part numbers ascend; ``InvalidPart`` for a
    part that is missing or whose ETag (or given checksum) differs;
    ``EntityTooSmall`` for a part under ``min_part_size`` that is not the last.
    An upload that already completed with the same part list answers with what
    it made then (see :func:`repeated_completion`).
    """
    bucket = t.buckets.require(bucket_name)
    raw_key = check_key(key)
    valid_id = _UPLOAD_ID.match(upload_id) is not None
    upload = t.multipart.upload(bucket.bucket_id, raw_key, upload_id) if valid_id else None
    if upload is None:
        return repeated_completion(t, bucket, key, upload_id, requested, object_size)
    named = named_parts(upload_id, requested)
    stored = {p.number: p for p in t.multipart.parts(upload_id)}
    chosen: list[PartRecord] = []
    for item in named:
        part = stored.get(item.number)
        if part is None or _normal_etag(item.etag) != part.md5:
            raise S3Error("InvalidPart", UploadId=upload_id, PartNumber=item.number, ETag=item.etag)
        for alg, value in item.checksums.items():
            if part.checksums.get(alg) not in (None, value):
                raise S3Error(
                    "InvalidPart",
                    f"The {alg.lower()} checksum of part {item.number} does not match.",
                    UploadId=upload_id,
                    PartNumber=item.number,
                )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < min_part_size:
            raise S3Error(
                "EntityTooSmall",
                ProposedSize=part.size,
                MinSizeAllowed=min_part_size,
                PartNumber=part.number,
                ETag=part.md5,
            )
    size = sum(p.size for p in chosen)
    _check_object_size(object_size, size)
    object_id = t.ns.lookup(bucket, raw_key)
    current = t.versions.current(object_id) if object_id is not None else None
    check_conditions(current, conditions)
    sums = checksums(upload, chosen) if checksums is not None else {}
    new = NewObject(
        size=size,
        etag=multipart_etag([p.md5 for p in chosen]),
        content_type=upload.content_type,
        metadata=upload.metadata,
        headers=upload.headers,
        storage_class=upload.storage_class,
        checksums=sums,
        parts=[p.size for p in chosen],
        lock=ObjectLock.decode(upload.extra.get(LOCK_EXTRA)),
        part_checksums=_part_checksums(sums, chosen),
    )
    refs = [ref for part in chosen for ref in part.chunks]
    version = version_from(new, refs, t.counters.next_id(b"seq"), now_ns)
    version.extra = {k: upload.extra[k] for k in CARRIED_EXTRA if k in upload.extra}
    version.tags = query_tags(upload.extra.get("tagging"))
    # The named parts' references now belong to the version; the rest are released.
    named_numbers = {p.number for p in chosen}
    for number, part in stored.items():
        if number not in named_numbers:
            _release_chunks(t, part.chunks)
        t.multipart.delete_part(upload_id, number)
    t.multipart.delete_upload(upload)
    installed = install_version(t, bucket, raw_key, object_id, version)
    result = CompletedUpload(
        upload_id=upload_id,
        bucket_id=bucket.bucket_id,
        key=key,
        version_id=installed.version_id,
        etag=installed.etag,
        size=installed.size,
        parts_digest=parts_digest(named),
        completed_ns=now_ns,
        checksums=dict(installed.checksums),
    )
    t.multipart.put_completed(result)
    return Completion(result, upload, installed)


def _check_object_size(object_size: int | None, size: int) -> None:
    if object_size is not None and object_size != size:
        raise S3Error(
            "InvalidRequest",
            f"The provided 'x-amz-mp-object-size' header value {object_size} does not match "
            f"what was computed: {size}",
        )


def _part_checksums(sums: dict[str, str], chosen: list[PartRecord]) -> list[str] | None:
    """Each part's checksum in the object's algorithm (None when the object has none)."""
    if len(sums) != 1:
        return None
    (alg,) = sums
    values = [p.checksums.get(alg) for p in chosen]
    return [v for v in values if v is not None] if None not in values else None


def repeated_completion(
    t: MetaTxn,
    bucket: Bucket,
    key: str,
    upload_id: str,
    requested: list[RequestedPart],
    object_size: int | None,
) -> Completion:
    """The answer to a Complete of an upload that is no longer in progress.

    If it completed (and its record is not forgotten yet) with the same part
    list, for the same bucket and key, the completion's result; otherwise
    ``NoSuchUpload``. Nothing is written.
    """
    record = t.multipart.completed(upload_id) if _UPLOAD_ID.match(upload_id) else None
    if record is None or record.bucket_id != bucket.bucket_id or record.key != key:
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    try:
        same = record.parts_digest == parts_digest(named_parts(upload_id, requested))
    except S3Error:
        same = False
    if not same:
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    _check_object_size(object_size, record.size)
    return Completion(record)


def forget_completed(t: MetaTxn, cutoff_ns: int, limit: int = EXPIRY_BATCH) -> int:
    """Drop up to ``limit`` records of uploads completed before ``cutoff_ns``; how many."""
    old = []
    for entry in t.multipart.completed_before(cutoff_ns):
        old.append(entry)
        if len(old) >= limit:
            break
    for completed_ns, upload_id in old:
        t.multipart.delete_completed(completed_ns, upload_id)
    return len(old)


# -- listings ---------------------------------------------------------------------------


@dataclass
class PartsPage:
    """A page of ListParts."""

    upload: MultipartUpload
    parts: list[PartRecord]
    is_truncated: bool
    next_marker: int | None


def list_parts(
    t: MetaTxn, bucket_name: str, key: str, upload_id: str, marker: int, max_parts: int
) -> PartsPage:
    """Parts numbered above ``marker``, at most ``max_parts`` of them."""
    _, upload = require_upload(t, bucket_name, key, upload_id)
    parts: list[PartRecord] = []
    truncated = False
    for part in t.multipart.parts(upload_id, marker):
        if len(parts) >= max_parts:
            truncated = True
            break
        parts.append(part)
    next_marker = parts[-1].number if parts else None
    return PartsPage(upload, parts, truncated, next_marker)


@dataclass
class UploadsPage:
    """A page of ListMultipartUploads: uploads and common prefixes in key order."""

    uploads: list[MultipartUpload]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


def list_uploads(
    t: MetaTxn,
    bucket_name: str,
    prefix: str = "",
    delimiter: str | None = None,
    key_marker: str | None = None,
    upload_id_marker: str | None = None,
    max_uploads: int = 1000,
) -> UploadsPage:
    """Uploads in (key, upload id) order after the markers, rolled up at ``delimiter``.

    Without ``upload_id_marker`` the listing starts after every upload of
    ``key_marker``; with it, after that upload of that key. Common prefixes
    count toward ``max_uploads``; a marker that is a common prefix skips it.
    """
    bucket = t.buckets.require(bucket_name)
    raw_prefix = prefix.encode("utf-8")
    raw_delim = delimiter.encode("utf-8") if delimiter else None
    raw_marker = key_marker.encode("utf-8") if key_marker else None
    start = max(raw_prefix, raw_marker or b"")
    uploads: list[MultipartUpload] = []
    prefixes: list[str] = []
    truncated = False
    last_prefix: bytes | None = None
    next_key: str | None = None
    next_uid: str | None = None
    for upload in t.multipart.uploads(bucket.bucket_id, start):
        raw_key = upload.key.encode("utf-8")
        if not raw_key.startswith(raw_prefix):
            if raw_key > raw_prefix:
                break
            continue
        if raw_marker is not None:
            if raw_key < raw_marker:
                continue
            if raw_key == raw_marker and (
                upload_id_marker is None or upload.upload_id <= upload_id_marker
            ):
                continue
        if raw_delim is not None:
            cut = raw_key.find(raw_delim, len(raw_prefix))
            if cut >= 0:
                common = raw_key[: cut + len(raw_delim)]
                if common == last_prefix or common == raw_marker:
                    continue
                if len(uploads) + len(prefixes) >= max_uploads:
                    truncated = True
                    break
                last_prefix = common
                prefixes.append(common.decode("utf-8"))
                next_key, next_uid = prefixes[-1], None
                continue
        if len(uploads) + len(prefixes) >= max_uploads:
            truncated = True
            break
        uploads.append(upload)
        next_key, next_uid = upload.key, upload.upload_id
    return UploadsPage(uploads, prefixes, truncated, next_key, next_uid)
