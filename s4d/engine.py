"""The asynchronous facade over the store: the only module that hands work to threads.

Handlers call :class:`Engine` methods and get Deferreds. Blocking work (LMDB
reads, segment reads and appends, hashing) runs through an injected
:class:`~s4d.util.threads.Runner`; metadata changes go to the store's group
committer and come back through ``call_from_thread``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred, ensureDeferred, gatherResults, succeed
from twisted.python.failure import Failure

from s4d.errors import S3Error
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.features import rename as fr
from s4d.store.chunks import WrittenChunk
from s4d.store.compaction import DEFAULT_GRACE, CompactionReport, Compactor
from s4d.store.listing import list_objects
from s4d.store.model import (
    Bucket,
    ChunkLocation,
    ChunkRef,
    ListResult,
    MultipartUpload,
    ObjectVersion,
    PartRecord,
)
from s4d.store.scrub import Scrubber, ScrubReport
from s4d.store.stats import StorageStats, store_stats
from s4d.store.store import Store
from s4d.store.txn import MetaTxn
from s4d.util.threads import FutureBridge, Runner, SerialRunner

#: Largest single-chunk object whose bytes :meth:`Engine.open_object` reads up front.
PREFETCH_BYTES = 1 << 20
#: Most bytes an upload may have handed to threads and not yet stored.
MAX_INFLIGHT = 16 << 20


class Hasher(Protocol):
    """Anything with ``update(bytes)`` (hashlib objects, checksums)."""

    def update(self, data: bytes, /) -> None: ...


@dataclass(frozen=True)
class OpenObject:
    """A version ready to be read: its record and where its chunks are."""

    version: ObjectVersion
    locations: list[ChunkLocation]
    bucket: Bucket | None = None
    #: the bytes of the only chunk, when it was small enough to read at once
    first_chunk: bytes | None = None


class Engine:
    """Asynchronous access to one :class:`Store`.

    :param runner: runs blocking calls (a thread pool in the service).
    :param call_from_thread: ``reactor.callFromThread`` (or a direct call in tests).
    :param now_ns: the clock for modification times.
    """

    def __init__(
        self,
        store: Store,
        runner: Runner,
        call_from_thread: Callable[..., Any],
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.runner = runner
        self.bridge = getattr(runner, "bridge", None) or FutureBridge(call_from_thread)
        self.now_ns = now_ns
        self._compaction_lock = threading.Lock()
        self._scrub_lock = threading.Lock()
        self._scrubber: Scrubber | None = None
        #: set when the service stops: background passes end early
        self.stopping = threading.Event()

    # -- plumbing ------------------------------------------------------------------

    def _commit(
        self,
        operation: Callable[[MetaTxn], Any],
        segments: frozenset[int] = frozenset(),
        presynced: bool = False,
    ) -> Deferred[Any]:
        return self._from_future(self.store.submit(operation, segments, presynced))

    def _from_future(self, future: Future[Any]) -> Deferred[Any]:
        return self.bridge.deferred(future)

    def _read(self, f: Callable[[MetaTxn], Any]) -> Deferred[Any]:
        def in_thread() -> Any:
            with self.store.read() as t:
                return f(t)

        return self.runner.run(in_thread)

    # -- buckets -------------------------------------------------------------------

    def create_bucket(self, name: str, region: str) -> Deferred[Bucket]:
        """Create a bucket (``BucketAlreadyOwnedByYou`` if it exists)."""
        now = self.now_ns()
        return self._commit(lambda t: fo.create_bucket(t, name, region, now))

    def delete_bucket(self, name: str) -> Deferred[None]:
        """Delete an empty bucket."""
        return self._commit(lambda t: fo.delete_bucket(t, name))

    def get_bucket(self, name: str) -> Deferred[Bucket]:
        """The bucket's record (``NoSuchBucket`` if absent)."""
        return self._read(lambda t: t.require_bucket(name))

    def list_buckets(self) -> Deferred[list[Bucket]]:
        """Every bucket, by name."""
        return self._read(lambda t: t.buckets())

    def get_bucket_config(self, name: str, kind: bytes) -> Deferred[bytes | None]:
        """A stored bucket configuration document (``NoSuchBucket`` if absent)."""
        return self._read(lambda t: t.get_bucket_config(t.require_bucket(name), kind))

    def put_bucket_config(self, name: str, kind: bytes, value: bytes | None) -> Deferred[None]:
        """Store or delete a bucket configuration document."""
        return self._commit(lambda t: t.put_bucket_config(t.require_bucket(name), kind, value))

    # -- reading -------------------------------------------------------------------

    def head_object(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Deferred[ObjectVersion]:
        """The requested (or current) version's record."""

        def head(t: MetaTxn) -> ObjectVersion:
            return fo.find_version(t, t.require_bucket(bucket), key, version_id)[1]

        return self._read(head)

    def open_object(
        self, bucket: str, key: str, version_id: str | None = None, prefetch: bool = False
    ) -> Deferred[OpenObject]:
        """The bucket, the version's record and its chunk locations, in one worker job.

        With ``prefetch``, a small single-chunk object's bytes are read in the
        same job, so that a small GET costs one trip to a worker thread.
        """

        def open_() -> OpenObject:
            with self.store.read() as t:
                record = t.require_bucket(bucket)
                version = fo.find_version(t, record, key, version_id)[1]
                locations = self.store.locate(t, version.chunks)
            data = None
            if prefetch and len(locations) == 1 and locations[0].size <= PREFETCH_BYTES:
                data = self.store.read_chunk(locations[0])
            return OpenObject(version, locations, record, data)

        return self.runner.run(open_)

    def read_chunk(self, location: ChunkLocation) -> Deferred[bytes]:
        """One chunk's bytes, checked against its checksums."""
        return self.runner.run(self.store.read_chunk, location)

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        after: str | None = None,
        max_keys: int = 1000,
    ) -> Deferred[ListResult]:
        """One page of keys and common prefixes."""

        def page(t: MetaTxn) -> ListResult:
            return list_objects(
                t,
                t.require_bucket(bucket),
                prefix.encode("utf-8"),
                delimiter.encode("utf-8") if delimiter else None,
                after.encode("utf-8") if after is not None else None,
                max_keys,
            )

        return self._read(page)

    # -- writing -------------------------------------------------------------------

    def upload(self, hashers: list[Hasher] | None = None) -> Upload:
        """Start streaming a new object's bytes; see :class:`Upload`."""
        return Upload(self, hashers or [])

    def delete_object(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Deferred[fo.DeleteOutcome]:
        """Delete a key (or one version of it)."""
        now = self.now_ns()
        return self._commit(lambda t: fo.delete_object(t, bucket, key, version_id, now))

    def delete_objects(
        self, bucket: str, keys: list[tuple[str, str | None]]
    ) -> Deferred[list[fo.DeleteOutcome | Failure]]:
        """Delete many keys; each outcome or failure is reported in order."""
        now = self.now_ns()
        ds = []
        for key, version_id in keys:
            d = self._commit(lambda t, k=key, v=version_id: fo.delete_object(t, bucket, k, v, now))
            ds.append(d.addErrback(lambda f: f))
        return gatherResults(ds)

    def copy_object(
        self,
        source: fo.CopySource,
        bucket: str,
        key: str,
        replace: fo.NewObject | None,
        conditions: fo.WriteConditions,
        check_source: Callable[[ObjectVersion], None] | None = None,
    ) -> Deferred[tuple[ObjectVersion, ObjectVersion]]:
        """Copy without moving bytes: the new version shares the source's chunks."""
        now = self.now_ns()
        return self._commit(
            lambda t: fo.copy_object(t, source, bucket, key, replace, conditions, now, check_source)
        )

    def commit_put(
        self,
        bucket: str,
        key: str,
        new: fo.NewObject,
        chunks: list[WrittenChunk],
        conditions: fo.WriteConditions,
    ) -> Deferred[ObjectVersion]:
        """Commit an object whose chunks are written; on failure they become garbage."""
        now = self.now_ns()
        segments = frozenset(c.location.segment for c in chunks if c.location is not None)
        d = self._commit(
            lambda t: fo.put_object(t, bucket, key, new, chunks, conditions, now),
            segments,
        )

        def discard(failure: Failure) -> Failure:
            self.discard(chunks)
            return failure

        return d.addErrback(discard)

    def put_whole(
        self,
        bucket: str,
        key: str,
        data: bytes,
        hashers: list[Hasher],
        finalize: Callable[[], fo.NewObject],
        conditions: fo.WriteConditions,
    ) -> Deferred[ObjectVersion]:
        """Store a small object in one trip through the committer.

        Hashing and the segment append run in the committer's sync stage (no
        worker thread, no extra hop); ``finalize`` then runs in the transaction
        stage and returns the object's description, or raises ``S3Error`` (a
        digest mismatch) to refuse it, in which case its bytes become garbage.
        """
        now = self.now_ns()
        written: list[WrittenChunk] = []

        def prepare() -> frozenset[int]:
            for hasher in hashers:
                hasher.update(data)
            if data:
                written.append(self.store.put_chunk(data))
            return frozenset(c.location.segment for c in written if c.location is not None)

        def operation(t: MetaTxn) -> ObjectVersion | _Refused:
            try:
                new = finalize()
            except S3Error as e:
                fo.discard_chunks(t, written)
                return _Refused(e)
            return fo.put_object(t, bucket, key, new, written, conditions, now)

        def unwrap(result: ObjectVersion | _Refused) -> ObjectVersion:
            if isinstance(result, _Refused):
                raise result.error
            return result

        def discard(failure: Failure) -> Failure:
            self.discard(written)
            return failure

        d = self._from_future(self.store.submit(operation, prepare=prepare))
        return d.addErrback(discard).addCallback(unwrap)

    def discard(self, chunks: list[WrittenChunk]) -> None:
        """Record written-but-unused chunks as dead bytes (fire and forget)."""
        if any(c.location is not None for c in chunks):
            self.store.submit(lambda t: fo.discard_chunks(t, chunks))


    # == multipart uploads (rules in s4d/features/multipart.py) =====================

    #: The smallest part that may be followed by another; tests lower it.
    min_part_size: int = fm.MIN_PART_SIZE

    def create_multipart(
        self, bucket: str, key: str, template: MultipartUpload
    ) -> Deferred[MultipartUpload]:
        """Start a multipart upload carrying ``template``'s attributes."""
        now = self.now_ns()
        return self._commit(lambda t: fm.create_upload(t, bucket, key, template, now))

    def commit_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        chunks: list[WrittenChunk],
        size: int,
        md5_hex: str,
        checksums: dict[str, str],
    ) -> Deferred[PartRecord]:
        """Commit a part whose chunks are written (replacing any part of that number)."""
        part = PartRecord(number, size, md5_hex, self.now_ns(), dict(checksums))
        segments = frozenset(c.location.segment for c in chunks if c.location is not None)
        d = self._commit(
            lambda t: fm.upload_part(t, bucket, key, upload_id, part, chunks), segments
        )

        def discard(failure: Failure) -> Failure:
            self.discard(chunks)
            return failure

        return d.addErrback(discard)

    def copy_part(
        self,
        source: fo.CopySource,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        byte_range: tuple[int, int] | None,
        check_source: Callable[[ObjectVersion], None] | None,
        new_checksum: Callable[[str], Any],
    ) -> Deferred[tuple[ObjectVersion, PartRecord]]:
        """UploadPartCopy by reference: the part shares the source's chunks.

        Chunks wholly inside the range are shared, not copied; a chunk cut by the
        range's edges is re-cut (read, sliced, written as a new chunk). The bytes
        are read to compute the part's MD5 (its ETag) and any checksum the upload
        asks for, unless the range is a whole single-part source whose digests
        are known. ``new_checksum(algorithm)`` makes a running checksum.
        """
        now = self.now_ns()

        def prepare() -> tuple[ObjectVersion, PartRecord, list[WrittenChunk]]:
            with self.store.read() as t:
                fm.check_part_number(number)
                _, upload = fm.require_upload(t, bucket, key, upload_id)
                src_bucket = t.require_bucket(source.bucket)
                _, version = fo.find_version(t, src_bucket, source.key, source.version_id)
                if check_source is not None:
                    check_source(version)
                locations = self.store.locate(t, version.chunks)
            first, last = fm.copy_range(version.size, byte_range)
            alg = upload.checksum_algorithm
            whole = (first, last) == (0, version.size - 1) or version.size == 0
            known_md5 = whole and "-" not in version.etag and version.etag != ""
            known_sum = not alg or "-" not in version.checksums.get(alg, "-")
            written: list[WrittenChunk] = []
            md5 = hashlib.md5(usedforsecurity=False)
            checksum = new_checksum(alg) if alg else None
            must_read = not (known_md5 and known_sum)
            try:
                for loc, lo, hi in fm.copy_plan(locations, first, last):
                    shared = lo == 0 and hi == loc.size
                    if shared and not must_read:
                        written.append(WrittenChunk(ChunkRef(loc.digest, loc.size), None))
                        continue
                    data = self.store.read_chunk(loc)[lo:hi]
                    md5.update(data)
                    if checksum is not None:
                        checksum.update(data)
                    if shared:
                        written.append(WrittenChunk(ChunkRef(loc.digest, loc.size), None))
                    else:
                        written.append(self.store.put_chunk(data))
            except BaseException:
                self.discard(written)
                raise
            sums: dict[str, str] = {}
            if alg:
                sums[alg] = checksum.b64() if must_read else version.checksums[alg]
            md5_hex = md5.hexdigest() if must_read else version.etag
            part = PartRecord(number, last - first + 1, md5_hex, now, sums)
            return version, part, written

        def commit(
            prepared: tuple[ObjectVersion, PartRecord, list[WrittenChunk]],
        ) -> Deferred[tuple[ObjectVersion, PartRecord]]:
            version, part, written = prepared
            segments = frozenset(c.location.segment for c in written if c.location is not None)
            d = self._commit(
                lambda t: fm.upload_part(t, bucket, key, upload_id, part, written), segments
            )

            def discard(failure: Failure) -> Failure:
                self.discard(written)
                return failure

            return d.addCallbacks(lambda p: (version, p), discard)

        return self.runner.run(prepare).addCallback(commit)

    def complete_multipart(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[fm.RequestedPart],
        conditions: fo.WriteConditions,
        checksums: fm.ObjectChecksums | None = None,
        object_size: int | None = None,
    ) -> Deferred[fm.Completion]:
        """Complete an upload: one metadata transaction, no byte of part data copied."""
        now = self.now_ns()
        minimum = self.min_part_size
        return self._commit(
            lambda t: fm.complete_upload(
                t, bucket, key, upload_id, parts, conditions, now, checksums, object_size, minimum
            )
        )

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> Deferred[MultipartUpload]:
        """Abort an upload, releasing its parts."""
        return self._commit(lambda t: fm.abort_upload(t, bucket, key, upload_id))

    def list_parts(
        self, bucket: str, key: str, upload_id: str, marker: int = 0, max_parts: int = 1000
    ) -> Deferred[fm.PartsPage]:
        """One page of an upload's parts."""
        return self._read(lambda t: fm.list_parts(t, bucket, key, upload_id, marker, max_parts))

    def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> Deferred[fm.UploadsPage]:
        """One page of a bucket's uploads in progress."""
        return self._read(
            lambda t: fm.list_uploads(
                t, bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads
            )
        )

    def expire_multipart_uploads(self, max_age_ns: int) -> Deferred[int]:
        """Abort every upload initiated more than ``max_age_ns`` ago; fires with the count."""
        cutoff = self.now_ns() - max_age_ns

        async def expire() -> int:
            total = 0
            while True:
                batch = await self._commit(lambda t: fm.expire_uploads(t, cutoff))
                total += len(batch)
                if len(batch) < fm.EXPIRY_BATCH:
                    return total

        return ensureDeferred(expire())

    # == rename (rules in s4d/features/rename.py) ===================================

    def rename(self, request: fr.Rename) -> Deferred[fr.RenameOutcome]:
        """RenameObject: a key or a whole prefix, in one metadata transaction."""
        now = self.now_ns()
        return self._commit(lambda t: fr.rename(t, request, now))

    # == maintenance: compaction, scrubbing, statistics (s4d/store/compaction.py ...) ====

    def compact(
        self,
        threshold: float = 0.3,
        dry_run: bool = False,
        grace: float = DEFAULT_GRACE,
        rate: float | None = None,
    ) -> Deferred[CompactionReport]:
        """Run one compaction pass in a worker thread (the admin API calls this too).

        Only one pass runs at a time: a second caller gets :class:`MaintenanceBusy`.
        Commits of moved chunks go through the group committer in small batches,
        so requests keep flowing while it runs.
        """

        def run() -> CompactionReport:
            if not self._compaction_lock.acquire(blocking=False):
                raise MaintenanceBusy("a compaction pass is already running")
            try:
                return Compactor(
                    self.store,
                    threshold=threshold,
                    dry_run=dry_run,
                    grace=grace,
                    rate=rate,
                    should_stop=self.stopping.is_set,
                ).run()
            finally:
                self._compaction_lock.release()

        return self.runner.run(run)

    def scrub(self, max_bytes: int, rate: float | None = None) -> Deferred[ScrubReport]:
        """Check the next ``max_bytes`` of stored chunks (continuing where the last slice ended)."""

        def run() -> ScrubReport:
            if not self._scrub_lock.acquire(blocking=False):
                raise MaintenanceBusy("the scrubber is already running")
            try:
                if self._scrubber is None:
                    self._scrubber = Scrubber(self.store)
                self._scrubber.rate = rate
                return self._scrubber.run_slice(max_bytes, self.stopping.is_set)
            finally:
                self._scrub_lock.release()

        return self.runner.run(run)

    def storage_stats(self) -> Deferred[StorageStats]:
        """Objects, logical and physical bytes, dedup and compression ratios, dead bytes."""
        return self.runner.run(store_stats, self.store)


class MaintenanceBusy(Exception):
    """A compaction pass (or scrub slice) is already running in this process."""


@dataclass(frozen=True)
class _Refused:
    """A write refused by its own checks (already accounted as garbage)."""

    error: S3Error


class Upload:
    """An object's bytes on their way into segments.

    Bytes are gathered into chunks of the store's chunk size; each chunk is
    addressed and appended in one serial worker queue while each hasher (MD5
    for the ETag, checksums, payload SHA-256) runs in a queue of its own, so
    hashing and writing use separate cores. :meth:`write` returns a Deferred
    when too much is in flight: the caller should stop reading until it fires.
    """

    def __init__(self, engine: Engine, hashers: list[Hasher]) -> None:
        self.engine = engine
        self.chunk_size = engine.store.config.chunk_size
        self.size = 0
        self.chunks: list[WrittenChunk] = []
        self._buffer = bytearray()
        self._hashers = hashers
        self._store_queue = SerialRunner(engine.runner)
        self._hash_queues = [SerialRunner(engine.runner) for _ in hashers]
        self._pending: list[Deferred[Any]] = []
        self._inflight = 0
        self._waiter: Deferred[None] | None = None
        self._error: Failure | None = None
        self._closed = False

    def write(self, data: bytes) -> Deferred[None] | None:
        """Add bytes; returns a Deferred to wait on when the pipeline is full."""
        if self._closed:
            raise RuntimeError("upload already finished")
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) >= self.chunk_size:
            piece = bytes(self._buffer[: self.chunk_size])
            del self._buffer[: self.chunk_size]
            self._dispatch(piece)
        if self._inflight > MAX_INFLIGHT and self._waiter is None:
            self._waiter = Deferred()
            return self._waiter
        return self._waiter

    def _dispatch(self, piece: bytes) -> None:
        self._inflight += len(piece)
        jobs: list[Deferred[Any]] = [
            self._store_queue.run(self.engine.store.put_chunk, piece).addCallback(
                self.chunks.append
            )
        ]
        for hasher, queue in zip(self._hashers, self._hash_queues, strict=True):
            jobs.append(queue.run(hasher.update, piece))
        done = gatherResults(jobs, consumeErrors=True)
        done.addCallbacks(lambda _: None, self._failed)
        done.addBoth(self._landed, len(piece))
        self._pending.append(done)

    def _failed(self, failure: Failure) -> None:
        if self._error is None:
            self._error = getattr(failure.value, "subFailure", failure)

    def _landed(self, _: object, length: int) -> None:
        self._inflight -= length
        if self._inflight <= MAX_INFLIGHT // 2 and self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.callback(None)

    def close(self) -> Deferred[list[WrittenChunk]]:
        """Flush the last partial chunk; fires with every written chunk, in order."""
        self._closed = True
        piece = bytes(self._buffer)
        self._buffer.clear()
        if not self._pending:
            # The whole object is in hand: hash and store it in one worker job.
            return self.engine.runner.run(self._store_whole, piece)
        if piece:
            self._dispatch(piece)
        pending = gatherResults(self._pending)

        def finished(_: object) -> Deferred[list[WrittenChunk]] | Failure:
            if self._error is not None:
                self.engine.discard(self.chunks)
                return self._error
            return self.chunks

        return pending.addBoth(finished)

    def take_whole(self) -> bytes | None:
        """Close, handing back every byte if none has been dispatched yet (small objects)."""
        if self._pending or self._closed:
            return None
        self._closed = True
        piece = bytes(self._buffer)
        self._buffer.clear()
        return piece

    def _store_whole(self, piece: bytes) -> list[WrittenChunk]:
        for hasher in self._hashers:
            hasher.update(piece)
        if piece:
            self.chunks.append(self.engine.store.put_chunk(piece))
        return self.chunks

    def abort(self) -> None:
        """Give up: whatever was written becomes garbage once in-flight jobs end."""
        self._closed = True
        pending = gatherResults(self._pending) if self._pending else succeed(None)
        pending.addBoth(lambda _: self.engine.discard(self.chunks))


def md5_hasher() -> Any:
    """A fresh MD5 for ETags."""
    return hashlib.md5(usedforsecurity=False)
