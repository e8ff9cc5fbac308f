"""Multipart uploads: create, parts (uploaded or copied), complete, abort, list, expire.

The rules (validation, reference counting, the completed object's ETag) live
in :mod:`s4d.features.multipart`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from twisted.internet.defer import Deferred, ensureDeferred

from s4d.engine.core import EngineCore
from s4d.engine.objects import CopySourceConditions
from s4d.engine.upload import StagedBody, UploadedBody, WholeBody, stage_whole
from s4d.errors import S3Error
from s4d.features import buckets as fb
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.features.lifecycle_sweep import governed_buckets
from s4d.store.chunks import WrittenChunk
from s4d.store.model import ChunkRef, InlineLocation, MultipartUpload, ObjectVersion, PartRecord
from s4d.store.txn import MetaTxn
from s4d.util import checksums as ck


def completed_checksums(expected: dict[str, str]) -> fm.ObjectChecksums:
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


def check_repeated_checksums(completion: fm.Completion, expected: dict[str, str]) -> fm.Completion:
    """A repeated Complete that names a whole-object checksum must name the one made.

    (A first completion checks it as it computes it: :func:`completed_checksums`.)
    """
    if completion.repeated:
        for alg, made in completion.result.checksums.items():
            wanted = expected.get(alg)
            if wanted is not None and wanted.split("-")[0] != made.split("-")[0]:
                raise S3Error(
                    "BadDigest",
                    f"The {alg.lower()} you specified did not match the calculated checksum.",
                )
    return completion


class MultipartFacade:
    """Multipart operations over one :class:`~s4d.engine.core.EngineCore`."""

    #: The smallest part that may be followed by another; tests lower it.
    min_part_size: int = fm.MIN_PART_SIZE

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def create(self, bucket: str, key: str, template: MultipartUpload) -> Deferred[MultipartUpload]:
        """Start a multipart upload carrying ``template``'s attributes."""
        now = self._core.now_ns()
        return self._core.commit(lambda t: fm.create_upload(t, bucket, key, template, now))

    def commit_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: UploadedBody
    ) -> Deferred[PartRecord]:
        """Commit an uploaded part (replacing any part of that number)."""
        if isinstance(body, WholeBody):
            staged = self._core.run(stage_whole, self._core, body)
            return staged.addCallback(lambda s: self.commit_part(bucket, key, upload_id, number, s))
        part = PartRecord(
            number, body.size, body.md5_hex, self._core.now_ns(), dict(body.checksums)
        )
        return self._core.commit_written(
            lambda t: fm.upload_part(t, bucket, key, upload_id, part, body.chunks), body.chunks
        )

    def discard(self, body: UploadedBody) -> None:
        """Give back a part body that will not be committed."""
        if isinstance(body, StagedBody):
            self._core.discard(body.chunks)

    def copy_part(
        self,
        source: fo.CopySource,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        byte_range: tuple[int, int] | None,
        check_source: CopySourceConditions | None,
    ) -> Deferred[tuple[ObjectVersion, PartRecord]]:
        """UploadPartCopy by reference: the part shares the source's chunks.

        Chunks wholly inside the range are shared, not copied; a chunk cut by the
        range's edges is re-cut (read, sliced, written as a new chunk). The bytes
        are read to compute the part's MD5 (its ETag) and any checksum the upload
        asks for, unless the range is a whole single-part source whose digests
        are known.
        """
        core = self._core
        store = core.store
        now = core.now_ns()

        def prepare() -> tuple[ObjectVersion, PartRecord, list[WrittenChunk]]:
            with store.read() as t:
                fm.check_part_number(number)
                _, upload = fm.require_upload(t, bucket, key, upload_id)
                src_bucket = fb.require_bucket(t, source.bucket)
                _, version = fo.find_version(
                    t, src_bucket, source.key, source.version_id, copy_source=True
                )
                if check_source is not None:
                    check_source(version)
                locations = store.locate(t, version.chunks, version.inline)
            first, last = fm.copy_range(version.size, byte_range)
            alg = upload.checksum_algorithm
            whole = (first, last) == (0, version.size - 1) or version.size == 0
            known_md5 = whole and "-" not in version.etag and version.etag != ""
            known_sum = not alg or "-" not in version.checksums.get(alg, "-")
            written: list[WrittenChunk] = []
            md5 = hashlib.md5(usedforsecurity=False)
            checksum = ck.new_checksum(alg) if alg else None
            must_read = not (known_md5 and known_sum)
            try:
                for loc, lo, hi in fm.copy_plan(locations, first, last):
                    # a whole chunk is shared by reference; inline bytes get a chunk of their own
                    shared = lo == 0 and hi == loc.size and not isinstance(loc, InlineLocation)
                    if shared and not must_read:
                        written.append(WrittenChunk(ChunkRef(loc.digest, loc.size), None))
                        continue
                    data = store.read_chunk(loc)[lo:hi]
                    md5.update(data)
                    if checksum is not None:
                        checksum.update(data)
                    if shared:
                        written.append(WrittenChunk(ChunkRef(loc.digest, loc.size), None))
                    else:
                        written.append(store.put_chunk(data))
            except BaseException:
                core.discard(written)
                raise
            sums: dict[str, str] = {}
            if alg:
                sums[alg] = (
                    checksum.b64() if must_read and checksum is not None else version.checksums[alg]
                )
            md5_hex = md5.hexdigest() if must_read else version.etag
            part = PartRecord(number, last - first + 1, md5_hex, now, sums)
            return version, part, written

        def commit(
            prepared: tuple[ObjectVersion, PartRecord, list[WrittenChunk]],
        ) -> Deferred[tuple[ObjectVersion, PartRecord]]:
            version, part, written = prepared
            d = core.commit_written(
                lambda t: fm.upload_part(t, bucket, key, upload_id, part, written), written
            )
            return d.addCallback(lambda p: (version, p))

        return core.run(prepare).addCallback(commit)

    def complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[fm.RequestedPart],
        conditions: fo.WriteConditions,
        expected_checksums: Mapping[str, str] | None = None,
        object_size: int | None = None,
    ) -> Deferred[fm.Completion]:
        """Complete an upload: one metadata transaction, no byte of part data copied.

        ``expected_checksums`` holds whole-object checksums the client sent (by
        algorithm); the computed one must match.
        """
        now = self._core.now_ns()
        minimum = self.min_part_size
        expected = dict(expected_checksums or {})
        checksums = completed_checksums(expected)
        d = self._core.commit(
            lambda t: fm.complete_upload(
                t, bucket, key, upload_id, parts, conditions, now, checksums, object_size, minimum
            )
        )
        return d.addCallback(check_repeated_checksums, expected)

    def forget_completed(self, max_age_ns: int) -> Deferred[int]:
        """Forget uploads completed more than ``max_age_ns`` ago; fires with the count.

        A Complete repeated after that answers ``NoSuchUpload``.
        """
        cutoff = self._core.now_ns() - max_age_ns

        async def forget() -> int:
            total = 0
            while True:
                count = await self._core.commit(lambda t: fm.forget_completed(t, cutoff))
                total += count
                if count < fm.EXPIRY_BATCH:
                    return total

        return ensureDeferred(forget())

    def abort(self, bucket: str, key: str, upload_id: str) -> Deferred[MultipartUpload]:
        """Abort an upload, releasing its parts."""
        return self._core.commit(lambda t: fm.abort_upload(t, bucket, key, upload_id))

    def list_parts(
        self, bucket: str, key: str, upload_id: str, marker: int = 0, max_parts: int = 1000
    ) -> Deferred[fm.PartsPage]:
        """One page of an upload's parts."""
        return self._core.read(
            lambda t: fm.list_parts(t, bucket, key, upload_id, marker, max_parts)
        )

    def list_uploads(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> Deferred[fm.UploadsPage]:
        """One page of a bucket's uploads in progress."""
        return self._core.read(
            lambda t: fm.list_uploads(
                t, bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads
            )
        )

    def expire(self, max_age_ns: int) -> Deferred[int]:
        """Abort every upload initiated more than ``max_age_ns`` ago; fires with the count.

        Buckets whose lifecycle rules abort incomplete uploads are left to them.
        """
        cutoff = self._core.now_ns() - max_age_ns

        def expire_some(t: MetaTxn) -> list[MultipartUpload]:
            return fm.expire_uploads(t, cutoff, spare=governed_buckets(t))

        async def expire() -> int:
            total = 0
            while True:
                batch = await self._core.commit(expire_some)
                total += len(batch)
                if len(batch) < fm.EXPIRY_BATCH:
                    return total

        return ensureDeferred(expire())
