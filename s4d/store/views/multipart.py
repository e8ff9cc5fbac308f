"""The ``multipart`` sub-database: uploads in progress, their parts, completed uploads."""

from __future__ import annotations

from collections.abc import Iterator

from s4d.store import codec
from s4d.store.model import CompletedUpload, MultipartUpload, PartRecord
from s4d.store.schema import (
    COMPLETED_EXPIRY,
    U32,
    U64,
    UPLOAD_ID_LENGTH,
    UPLOAD_INDEX,
    completed_expiry_key,
    completed_key,
    part_key,
    part_prefix,
    upload_bucket_prefix,
    upload_group,
    upload_key,
    upload_seek,
)
from s4d.store.views.base import View


class MultipartView(View):
    """Upload records (in ListMultipartUploads order) and part records (by upload id)."""

    def upload(self, bucket_id: int, key: bytes, upload_id: str) -> MultipartUpload | None:
        """The upload ``upload_id`` of ``key`` in bucket ``bucket_id``, or None."""
        raw = self.txn.get(upload_key(bucket_id, key, upload_id), db=self.db)
        return MultipartUpload.decode(codec.decode(raw)) if raw is not None else None

    def put_upload(self, upload: MultipartUpload) -> None:
        """Store an upload record."""
        self.txn.put(
            upload_key(upload.bucket_id, upload.key.encode("utf-8"), upload.upload_id),
            codec.encode(upload.encode()),
            db=self.db,
        )

    def delete_upload(self, upload: MultipartUpload) -> None:
        """Remove an upload record (its parts are the caller's business)."""
        self.txn.delete(
            upload_key(upload.bucket_id, upload.key.encode("utf-8"), upload.upload_id),
            db=self.db,
        )

    def uploads(self, bucket_id: int, start: bytes = b"") -> Iterator[MultipartUpload]:
        """One bucket's uploads of keys >= ``start``, in (key, upload id) order.

        Uploads of long keys that share an index group come out of LMDB in hash
        order; each group is read whole and sorted here.
        """
        prefix = upload_bucket_prefix(bucket_id)
        cursor = self.cursor()
        if not cursor.set_range(upload_seek(bucket_id, start)):
            return
        group: bytes | None = None
        pending: list[tuple[bytes, MultipartUpload]] = []
        for k, v in cursor:
            if not k.startswith(prefix):
                break
            upload = MultipartUpload.decode(codec.decode(v))
            raw_key = upload.key.encode("utf-8")
            this_group = upload_group(k)
            if pending and this_group != group:
                yield from _sorted_group(pending, start)
                pending = []
            group = this_group
            if this_group is not None:
                pending.append((raw_key, upload))
            elif raw_key >= start:
                yield upload
        yield from _sorted_group(pending, start)

    def all_uploads(self) -> Iterator[MultipartUpload]:
        """Every upload of every bucket (in no useful order)."""
        cursor = self.cursor()
        if not cursor.set_range(UPLOAD_INDEX):
            return
        for k, v in cursor:
            if not k.startswith(UPLOAD_INDEX):
                break
            yield MultipartUpload.decode(codec.decode(v))

    def part(self, upload_id: str, number: int) -> PartRecord | None:
        """One part of an upload, or None."""
        raw = self.txn.get(part_key(upload_id, number), db=self.db)
        return PartRecord.decode(number, codec.decode(raw)) if raw is not None else None

    def parts(self, upload_id: str, after: int = 0) -> Iterator[PartRecord]:
        """An upload's parts numbered above ``after``, in order."""
        prefix = part_prefix(upload_id)
        cursor = self.cursor()
        if not cursor.set_range(prefix + U32.pack(after + 1)):
            return
        for k, v in cursor:
            if not k.startswith(prefix):
                break
            yield PartRecord.decode(U32.unpack_from(k, len(prefix))[0], codec.decode(v))

    def put_part(self, upload_id: str, part: PartRecord) -> None:
        """Store a part record (replacing one of the same number)."""
        self.txn.put(part_key(upload_id, part.number), codec.encode(part.encode()), db=self.db)

    def delete_part(self, upload_id: str, number: int) -> None:
        """Remove a part record (its chunk references are the caller's business)."""
        self.txn.delete(part_key(upload_id, number), db=self.db)

    def completed(self, upload_id: str) -> CompletedUpload | None:
        """The record of upload ``upload_id`` if it completed (and is not forgotten yet)."""
        raw = self.txn.get(completed_key(upload_id), db=self.db)
        return CompletedUpload.decode(upload_id, codec.decode(raw)) if raw is not None else None

    def put_completed(self, record: CompletedUpload) -> None:
        """Store a completed upload's record and its expiry-order entry."""
        self.txn.put(completed_key(record.upload_id), codec.encode(record.encode()), db=self.db)
        self.txn.put(completed_expiry_key(record.completed_ns, record.upload_id), b"", db=self.db)

    def delete_completed(self, completed_ns: int, upload_id: str) -> None:
        """Forget a completed upload (its record and its expiry-order entry)."""
        self.txn.delete(completed_key(upload_id), db=self.db)
        self.txn.delete(completed_expiry_key(completed_ns, upload_id), db=self.db)

    def completed_before(self, cutoff_ns: int) -> Iterator[tuple[int, str]]:
        """(completion time, upload id) of uploads completed before ``cutoff_ns``, oldest first."""
        cursor = self.cursor()
        if not cursor.set_range(COMPLETED_EXPIRY):
            return
        for k in cursor.iternext(keys=True, values=False):
            if not k.startswith(COMPLETED_EXPIRY) or len(k) != 9 + UPLOAD_ID_LENGTH:
                return
            (when,) = U64.unpack_from(k, 1)
            if when >= cutoff_ns:
                return
            yield when, bytes(k[9:]).decode("ascii")


def _sorted_group(
    pending: list[tuple[bytes, MultipartUpload]], start: bytes
) -> Iterator[MultipartUpload]:
    pending.sort(key=lambda item: (item[0], item[1].upload_id))
    for raw_key, upload in pending:
        if raw_key >= start:
            yield upload
