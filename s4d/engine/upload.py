"""An upload's bytes on their way into segments, and the checks they must pass.

:class:`Upload` gathers a streaming body into chunks and writes them in worker
threads while :class:`BodyDigests` hashes them (the MD5 that becomes the ETag,
the signed payload SHA-256, a flexible checksum). When the body is complete it
becomes an :data:`UploadedBody`: a :class:`StagedBody` whose chunks are written
and whose digests matched, or, for a body small enough to still be in memory, a
:class:`WholeBody` that the engine hashes, writes and checks in one trip through
the group committer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.python.failure import Failure

from s4d.engine.core import EngineCore
from s4d.errors import S3Error
from s4d.store.chunks import WrittenChunk
from s4d.util import checksums as ck
from s4d.util.threads import SerialRunner

#: Most bytes an upload may have handed to threads and not yet stored.
MAX_INFLIGHT = 16 << 20
#: Most bytes all the uploads of a process may have handed to threads and not yet
#: stored: many concurrent uploads then wait for the disk instead of filling memory.
MAX_INFLIGHT_TOTAL = 24 << 20
#: Received pieces smaller than this are copied together rather than kept apart
#: (bounding the buffers a chunk is written from to a few hundred).
SMALL_PIECE = 16 << 10


class Hasher(Protocol):
    """Anything with ``update(bytes)`` (hashlib objects, checksums)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


@dataclass(frozen=True)
class DeclaredDigests:
    """What a client declared about a body, checked once the body is complete.

    :ivar content_md5: the raw 16 bytes of ``Content-MD5``.
    :ivar sha256_hex: the signed payload hash (``x-amz-content-sha256``).
    :ivar checksums: flexible checksum algorithm to its declared base64 value;
        None where the value comes in a trailer or is only to be computed.
    """

    content_md5: bytes | None = None
    sha256_hex: str | None = None
    checksums: Mapping[str, str | None] = field(default_factory=dict)


class BodyDigests:
    """The running digests of one body, and their comparison with what was declared."""

    def __init__(self, declared: DeclaredDigests) -> None:
        self.declared = declared
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256() if declared.sha256_hex is not None else None
        self.checksums = {alg: ck.new_checksum(alg) for alg in declared.checksums}

    @property
    def hashers(self) -> list[Hasher]:
        """Every running digest, to be fed the body's bytes in order."""
        out: list[Hasher] = [self.md5]
        if self.sha256 is not None:
            out.append(self.sha256)
        out.extend(self.checksums.values())
        return out

    def verify(self, trailers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """Compare each digest with its declared value; the MD5 (hex) and the checksums.

        ``trailers`` holds values that arrived after the body (by header name).
        """
        md5 = self.md5.digest()
        declared = self.declared
        if declared.content_md5 is not None and declared.content_md5 != md5:
            raise S3Error("BadDigest")
        if self.sha256 is not None and self.sha256.hexdigest() != (declared.sha256_hex or ""):
            raise S3Error("XAmzContentSHA256Mismatch")
        sums: dict[str, str] = {}
        for alg, checksum in self.checksums.items():
            actual = checksum.b64()
            expected = declared.checksums.get(alg)
            if expected is None:
                expected = trailers.get(ck.header_name(alg))
            if expected is not None and expected != actual:
                raise S3Error(
                    "BadDigest", f"The {alg} you specified did not match the calculated checksum."
                )
            sums[alg] = actual
        return md5.hex(), sums


@dataclass(frozen=True)
class StagedBody:
    """A complete body whose chunks are written (not yet committed) and whose digests matched."""

    chunks: list[WrittenChunk]
    size: int
    md5_hex: str
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WholeBody:
    """A complete small body still in memory: hashed, written and checked when committed."""

    data: bytes
    digests: BodyDigests
    trailers: Mapping[str, str] = field(default_factory=dict)


#: What an upload handler gets from its body sink.
UploadedBody = StagedBody | WholeBody


class InflightBudget:
    """The bytes every upload of a process has in flight, and the uploads waiting for room.

    Used on the reactor thread only.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        #: each returns True once its upload has resumed (and is dropped then)
        self._waiting: list[Callable[[], bool]] = []

    @property
    def full(self) -> bool:
        """Whether an upload should stop reading until some bytes land."""
        return self.used > self.limit

    def wait(self, resume: Callable[[], bool]) -> None:
        """Call ``resume`` as bytes land until it returns True."""
        self._waiting.append(resume)

    def landed(self, length: int) -> None:
        """``length`` bytes were stored: let waiting uploads try to go on."""
        self.used -= length
        if self._waiting and self.used <= self.limit // 2:
            self._waiting = [resume for resume in self._waiting if not resume()]


#: The budget of this process's uploads.
BUDGET = InflightBudget(MAX_INFLIGHT_TOTAL)


class Upload:
    """An object's bytes on their way into segments.

    Bytes are gathered into chunks of the store's chunk size; each chunk is
    addressed and appended in one serial worker queue while each hasher (MD5
    for the ETag, checksums, payload SHA-256) runs in a queue of its own, so
    hashing and writing use separate cores. :meth:`write` returns a Deferred
    when too much is in flight: the caller should stop reading until it fires.
    """

    def __init__(self, core: EngineCore, hashers: list[Hasher]) -> None:
        self._core = core
        self.chunk_size = core.store.config.chunk_size
        self.size = 0
        self.chunks: list[WrittenChunk] = []
        #: the next chunk's bytes so far, as received, and how many there are
        self._pieces: list[bytes | memoryview] = []
        self._filled = 0
        self._small = bytearray()
        self._hashers = hashers
        #: built when the first full chunk is dispatched (small bodies never need them)
        self._store_queue: SerialRunner | None = None
        self._hash_queues: list[SerialRunner] = []
        self._pending: list[Deferred[Any]] = []
        self._inflight = 0
        self._waiter: Deferred[None] | None = None
        self._error: Failure | None = None
        self._closed = False

    def write(self, data: bytes | memoryview) -> Deferred[None] | None:
        """Add bytes; returns a Deferred to wait on when the pipeline is full.

        ``data`` is kept, not copied (it must not change afterwards): a chunk is
        the list of the pieces that filled it, cut with memoryviews at chunk
        boundaries, and goes to the hashers and to the segment file as such.
        """
        if self._closed:
            raise RuntimeError("upload already finished")
        self.size += len(data)
        piece: bytes | memoryview = data
        while piece:
            room = self.chunk_size - self._filled
            if len(piece) < room:
                self._add(piece)
                break
            head: bytes | memoryview = piece
            if len(piece) > room:
                view = memoryview(piece)
                head, piece = view[:room], view[room:]
            else:
                piece = b""
            self._add(head)
            self._dispatch(self._take())
        if self._waiter is None and (self._inflight > MAX_INFLIGHT or BUDGET.full):
            self._waiter = Deferred()
            BUDGET.wait(self._resume)
        return self._waiter

    def _resume(self) -> bool:
        """Fire the waiter once this upload and the process have room again."""
        if self._inflight > MAX_INFLIGHT // 2 or BUDGET.used > BUDGET.limit // 2:
            return False
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.callback(None)
        return True

    def _add(self, piece: bytes | memoryview) -> None:
        self._filled += len(piece)
        if len(piece) < SMALL_PIECE:
            # Tiny pieces (a client's small aws-chunked frames) are gathered into one.
            self._small += piece
            return
        self._flush_small()
        self._pieces.append(piece)

    def _flush_small(self) -> None:
        if self._small:
            self._pieces.append(bytes(self._small))
            self._small.clear()

    def _take(self) -> list[bytes | memoryview]:
        """The pieces of the chunk gathered so far, handed over (and forgotten here)."""
        self._flush_small()
        pieces, self._pieces, self._filled = self._pieces, [], 0
        return pieces

    def _take_pieces(self) -> bytes:
        """Every byte not yet dispatched, as one buffer (a single piece is not copied)."""
        pieces = self._take()
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]
        return b"".join(pieces)

    def _dispatch(self, pieces: list[bytes | memoryview]) -> None:
        if self._store_queue is None:
            self._store_queue = SerialRunner(self._core.runner)
            self._hash_queues = [SerialRunner(self._core.runner) for _ in self._hashers]
        length = sum(len(piece) for piece in pieces)
        self._inflight += length
        BUDGET.used += length
        store = self._core.store
        jobs: list[Deferred[Any]] = [
            self._store_queue.run(store.put_chunk_pieces, pieces).addCallback(self.chunks.append)
        ]
        for hasher, queue in zip(self._hashers, self._hash_queues, strict=True):
            jobs.append(queue.run(feed_hasher, hasher, pieces))
        done = gatherResults(jobs, consumeErrors=True)
        done.addCallbacks(lambda _: None, self._failed)
        done.addBoth(self._landed, length)
        self._pending.append(done)

    def _failed(self, failure: Failure) -> None:
        if self._error is None:
            self._error = getattr(failure.value, "subFailure", failure)

    def _landed(self, _: object, length: int) -> None:
        self._inflight -= length
        BUDGET.landed(length)

    def close(self) -> Deferred[list[WrittenChunk]]:
        """Flush the last partial chunk; fires with every written chunk, in order."""
        self._closed = True
        if not self._pending:
            # The whole object is in hand: hash and store it in one worker job.
            return self._core.run(self._store_whole, self._take_pieces())
        if self._filled:
            self._dispatch(self._take())
        pending = gatherResults(self._pending)

        def finished(_: object) -> list[WrittenChunk] | Failure:
            if self._error is not None:
                self._core.discard(self.chunks)
                return self._error
            return self.chunks

        return pending.addBoth(finished)

    def finish(self, digests: BodyDigests, trailers: Mapping[str, str]) -> Deferred[StagedBody]:
        """Close, then check ``digests``; a body that fails its checks is discarded."""

        def check(chunks: list[WrittenChunk]) -> StagedBody:
            try:
                md5_hex, sums = digests.verify(trailers)
            except S3Error:
                self._core.discard(chunks)
                raise
            return StagedBody(chunks, self.size, md5_hex, sums)

        return self.close().addCallback(check)

    def take_whole(self) -> bytes | None:
        """Close, handing back every byte if none has been dispatched yet (small objects)."""
        if self._pending or self._closed:
            return None
        self._closed = True
        return self._take_pieces()

    def _store_whole(self, piece: bytes) -> list[WrittenChunk]:
        for hasher in self._hashers:
            hasher.update(piece)
        if piece:
            self.chunks.append(self._core.store.put_chunk(piece))
        return self.chunks

    def abort(self) -> None:
        """Give up: whatever was written becomes garbage once in-flight jobs end."""
        self._closed = True
        pending = gatherResults(self._pending) if self._pending else succeed(None)
        pending.addBoth(lambda _: self._core.discard(self.chunks))


def feed_hasher(hasher: Hasher, pieces: list[bytes | memoryview]) -> None:
    """Feed ``pieces`` to ``hasher`` in order (blocking: run it on a worker thread)."""
    for piece in pieces:
        hasher.update(piece)


def stage_whole(core: EngineCore, body: WholeBody) -> StagedBody:
    """Hash, write and check a small body (blocking: run it on a worker thread)."""
    for hasher in body.digests.hashers:
        hasher.update(body.data)
    written = [core.store.put_chunk(body.data)] if body.data else []
    try:
        md5_hex, sums = body.digests.verify(body.trailers)
    except S3Error:
        core.discard(written)
        raise
    return StagedBody(written, len(body.data), md5_hex, sums)
