"""Objects: read, list, write, copy and delete (the rules live in :mod:`s4d.features.objects`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.python.failure import Failure

from s4d.engine.core import EngineCore
from s4d.engine.upload import Hasher, StagedBody, Upload, UploadedBody, WholeBody
from s4d.errors import S3Error
from s4d.features import buckets as fb
from s4d.features import objects as fo
from s4d.features import tagging as ft
from s4d.store import model
from s4d.store.chunks import WrittenChunk
from s4d.store.listing import list_keys, list_objects
from s4d.store.model import (
    NO_LOCK,
    Bucket,
    ChunkLocation,
    KeysPage,
    ListResult,
    ObjectLock,
    ObjectVersion,
    VersionsPage,
)
from s4d.store.txn import MetaTxn
from s4d.store.version_listing import list_versions

#: a listing page's type (:class:`ListResult` or :class:`KeysPage`)
PageT = TypeVar("PageT")

#: Largest single-chunk object whose bytes :meth:`ObjectsFacade.open` reads up front.
PREFETCH_BYTES = 1 << 20
#: The largest object :meth:`ObjectsFacade.open` reads on the calling (reactor) thread,
#: and only from the page cache; larger ones, and any read that would wait, go to a worker.
INLINE_READ_BYTES = 64 << 10


@dataclass(frozen=True)
class OpenObject:
    """A version ready to be read: its record and where its chunks are."""

    version: ObjectVersion
    locations: list[ChunkLocation]
    bucket: Bucket | None = None
    #: the bytes of the only chunk, when it was small enough to read at once
    first_chunk: bytes | None = None


def _described(new: fo.NewObject, size: int, etag: str, checksums: dict[str, str]) -> fo.NewObject:
    """``new`` with the body's size, ETag and checksums (a copy: the caller's stays as it was)."""
    described = copy.copy(new)
    described.size, described.etag, described.checksums = size, etag, checksums
    return described


def _delete_one(
    t: MetaTxn, *, bucket: str, key: str, version_id: str | None, now_ns: int, bypass: bool
) -> fo.DeleteOutcome:
    return fo.delete_object(t, bucket, key, version_id, now_ns, bypass)


def etag_listed(header: str, etag: str) -> bool:
    """An ``If-Match``-style header names ``etag`` (quoted or not) or ``*``."""
    values = {v.strip() for v in header.split(",")}
    return "*" in values or f'"{etag}"' in values or etag in values


@dataclass(frozen=True)
class CopySourceConditions:
    """The ``x-amz-copy-source-if-*`` conditions, checked on the source inside the copy.

    Dates are seconds since the epoch; None leaves a condition out.
    """

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: int | None = None
    if_unmodified_since: int | None = None
    #: refuses a source version the caller may not read (its ACL), before the rest
    check_access: Callable[[ObjectVersion], None] | None = None

    def __call__(self, version: ObjectVersion) -> None:
        """Refuse ``version`` as a copy source (``PreconditionFailed``) unless it qualifies."""
        if self.check_access is not None:
            self.check_access(version)
        seconds = version.mtime_ns // 1_000_000_000
        prefix = "x-amz-copy-source-"
        if self.if_match is not None and not etag_listed(self.if_match, version.etag):
            raise S3Error("PreconditionFailed", Condition=prefix + "If-Match")
        if self.if_none_match is not None and etag_listed(self.if_none_match, version.etag):
            raise S3Error("PreconditionFailed", Condition=prefix + "If-None-Match")
        unmodified = self.if_unmodified_since
        if self.if_match is None and unmodified is not None and seconds > unmodified:
            raise S3Error("PreconditionFailed", Condition=prefix + "If-Unmodified-Since")
        modified = self.if_modified_since
        if self.if_none_match is None and modified is not None and seconds <= modified:
            raise S3Error("PreconditionFailed", Condition=prefix + "If-Modified-Since")


def _s3_error(failure: Failure) -> S3Error:
    """The S3 error a failure holds, as a result (any other failure goes on)."""
    error = failure.value
    if not isinstance(error, S3Error):
        failure.raiseException()
    assert isinstance(error, S3Error)
    return error


@dataclass(frozen=True)
class _Refused:
    """A write refused by its own checks (its bytes already accounted as garbage)."""

    error: S3Error


class ObjectsFacade:
    """Object operations over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    # -- reading -------------------------------------------------------------------

    def bucket(self, name: str) -> Deferred[Bucket]:
        """The bucket's record (``NoSuchBucket`` if absent): objects need their bucket."""
        return self._core.read(lambda t: fb.require_bucket(t, name))

    def head(self, bucket: str, key: str, version_id: str | None = None) -> Deferred[ObjectVersion]:
        """The requested (or current) version's record."""

        def head(t: MetaTxn) -> ObjectVersion:
            return fo.find_version(t, fb.require_bucket(t, bucket), key, version_id)[1]

        return self._core.read(head)

    def open(
        self, bucket: str, key: str, version_id: str | None = None, prefetch: bool = False
    ) -> Deferred[OpenObject]:
        """The bucket, the version's record and its chunk locations.

        With ``prefetch``, a small single-chunk object's bytes are read too. All
        of it is read on the calling thread when it needs no disk access (a
        HEAD, or a GET of at most :data:`INLINE_READ_BYTES` whose chunk is in
        the page cache); otherwise in one worker job, so that a small GET costs
        at most one trip to a worker thread.
        """
        store = self._core.store

        def locate(t: MetaTxn) -> tuple[Bucket, ObjectVersion, list[ChunkLocation]]:
            record = fb.require_bucket(t, bucket)
            version = fo.find_version(t, record, key, version_id)[1]
            return record, version, store.locate(t, version.chunks, version.inline)

        def open_(here: bool = False) -> OpenObject | None:
            # on the reactor thread, the read transaction its other small reads share
            shared = store.snapshot() if here else None
            if shared is not None:
                record, version, locations = locate(shared)
            else:
                with store.read() as t:
                    record, version, locations = locate(t)
            data = None
            if prefetch and len(locations) == 1 and locations[0].size <= PREFETCH_BYTES:
                if not here:
                    data = store.read_chunk(locations[0])
                elif locations[0].size > INLINE_READ_BYTES:
                    return None
                else:
                    data = store.read_chunk_cached(locations[0])
                    if data is None:
                        return None
            elif here and prefetch and locations:
                return None  # a streamed body: its reads go to worker threads anyway
            return OpenObject(version, locations, record, data)

        # Answered here when everything is in memory (LMDB's map, the page cache):
        # a trip to a worker thread and back costs more than the reads themselves.
        try:
            opened = open_(True)
        except S3Error:
            return fail()
        except Exception:  # noqa: BLE001 - a moved or damaged chunk: the worker's path retries
            opened = None
        if opened is not None:
            return succeed(opened)

        def in_worker() -> OpenObject:
            found = open_()
            assert found is not None  # only a read here gives up
            return found

        return self._core.run(in_worker)

    def read_chunk(self, location: ChunkLocation) -> Deferred[bytes]:
        """One chunk's bytes, checked against its checksums."""
        return self._core.run(self._core.store.read_chunk, location)

    def open_chunk(self, location: ChunkLocation) -> Deferred[tuple[int, int] | None]:
        """A descriptor to send an uncompressed chunk from and the offset of its bytes there.

        The payload is checked first; the caller closes the descriptor. None
        (compressed, or anything amiss): use :meth:`read_chunk`.
        """
        return self._core.run(self._core.store.open_chunk, location)

    def list_page(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        after: str | None = None,
        max_keys: int = 1000,
    ) -> Deferred[ListResult]:
        """One page of keys and common prefixes."""
        return self._core.read(_key_page(list_objects, bucket, prefix, delimiter, after, max_keys))

    def list_keys_page(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        after: str | None = None,
        max_keys: int = 1000,
    ) -> Deferred[KeysPage]:
        """The page :meth:`list_page` finds, as rows for S3's ListObjects (no objects per key)."""
        return self._core.read(_key_page(list_keys, bucket, prefix, delimiter, after, max_keys))

    def list_versions_page(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
        max_keys: int = 1000,
    ) -> Deferred[VersionsPage]:
        """One page of versions and delete markers (ListObjectVersions), in one read job.

        ``version_id_marker`` counts only with ``key_marker``; see
        :mod:`s4d.store.version_listing` for how the markers continue a listing.
        """

        def page(t: MetaTxn) -> VersionsPage:
            return list_versions(
                t,
                fb.require_bucket(t, bucket),
                prefix.encode("utf-8"),
                delimiter.encode("utf-8") if delimiter else None,
                key_marker.encode("utf-8") if key_marker is not None else None,
                version_id_marker,
                max_keys,
            )

        return self._core.read(page)

    # -- writing -------------------------------------------------------------------

    def upload(self, hashers: list[Hasher] | None = None) -> Upload:
        """Start streaming a new object's bytes; see :class:`~s4d.engine.upload.Upload`."""
        return Upload(self._core, hashers or [])

    def discard(self, chunks: list[WrittenChunk]) -> None:
        """Give back chunks written for a body that will not be committed."""
        self._core.discard(chunks)

    def put(
        self,
        bucket: str,
        key: str,
        new: fo.NewObject,
        body: UploadedBody,
        conditions: fo.WriteConditions,
    ) -> Deferred[ObjectVersion]:
        """Commit ``body`` as object ``key``; ``new`` describes it (its size and ETag are set here).

        A :class:`~s4d.engine.upload.WholeBody` takes one trip through the group
        committer: hashing and the segment append run in its sync stage, the
        digest check in its transaction stage; a mismatch refuses the write and
        its bytes become garbage.
        """
        if isinstance(body, StagedBody):
            described = _described(new, body.size, body.md5_hex, dict(body.checksums))
            return self._commit_staged(bucket, key, described, body.chunks, conditions)
        return self._put_whole(bucket, key, new, body, conditions)

    def _commit_staged(
        self,
        bucket: str,
        key: str,
        new: fo.NewObject,
        chunks: list[WrittenChunk],
        conditions: fo.WriteConditions,
    ) -> Deferred[ObjectVersion]:
        now = self._core.now_ns()
        return self._core.commit_written(
            lambda t: fo.put_object(t, bucket, key, new, chunks, conditions, now), chunks
        )

    def _put_whole(
        self,
        bucket: str,
        key: str,
        new: fo.NewObject,
        body: WholeBody,
        conditions: fo.WriteConditions,
    ) -> Deferred[ObjectVersion]:
        core = self._core
        now = core.now_ns()
        written: list[WrittenChunk] = []
        data = body.data

        # A small body stays in its version record: no segment record, no chunk entry.
        inline = bytes(data) if 0 < len(data) <= model.INLINE_MAX else None

        def prepare() -> frozenset[int]:
            for hasher in body.digests.hashers:
                hasher.update(data)
            if data and inline is None:
                written.append(core.store.put_chunk(data))
            return frozenset(c.location.segment for c in written if c.location is not None)

        def operation(t: MetaTxn) -> ObjectVersion | _Refused:
            try:
                md5_hex, sums = body.digests.verify(body.trailers)
            except S3Error as e:
                fo.discard_chunks(t, written)
                return _Refused(e)
            described = _described(new, len(data), md5_hex, sums)
            return fo.put_object(t, bucket, key, described, written, conditions, now, inline)

        def unwrap(result: ObjectVersion | _Refused) -> ObjectVersion:
            if isinstance(result, _Refused):
                raise result.error
            return result

        def discard(failure: Failure) -> Failure:
            core.discard(written)
            return failure

        d = core.commit(operation, prepare=prepare)
        return d.addErrback(discard).addCallback(unwrap)

    def delete(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        bypass_governance: bool = False,
    ) -> Deferred[fo.DeleteOutcome]:
        """Delete a key (or one version of it, unless object lock keeps it: ``AccessDenied``).

        ``bypass_governance`` overrides GOVERNANCE retention.
        """
        now = self._core.now_ns()
        return self._core.commit(
            lambda t: fo.delete_object(t, bucket, key, version_id, now, bypass_governance)
        )

    def delete_many(
        self,
        bucket: str,
        keys: list[tuple[str, str | None]],
        bypass_governance: bool = False,
    ) -> Deferred[list[fo.DeleteOutcome | S3Error]]:
        """Delete many keys; each outcome or S3 error (a locked version...) in order.

        An error that is not an S3 error fails the whole Deferred.
        """
        now = self._core.now_ns()
        ds: list[Deferred[fo.DeleteOutcome | S3Error]] = []
        for key, version_id in keys:
            d: Deferred[fo.DeleteOutcome | S3Error] = self._core.commit(
                partial(
                    _delete_one,
                    bucket=bucket,
                    key=key,
                    version_id=version_id,
                    now_ns=now,
                    bypass=bypass_governance,
                )
            )
            ds.append(d.addErrback(_s3_error))
        return gatherResults(ds, consumeErrors=True)

    def copy(
        self,
        source: fo.CopySource,
        bucket: str,
        key: str,
        replace_with: fo.NewObject | None,
        conditions: fo.WriteConditions,
        source_conditions: CopySourceConditions | None = None,
        tags: dict[str, str] | None = None,
        lock: ObjectLock = NO_LOCK,
        acl: dict[str, Any] | None = None,
    ) -> Deferred[tuple[ObjectVersion, ObjectVersion]]:
        """Copy without moving bytes: the new version shares the source's chunks.

        ``replace_with`` carries new metadata (``REPLACE``); None keeps the source's.
        ``source_conditions`` may refuse the source version. ``tags`` replace the
        source's tags (``x-amz-tagging-directive: REPLACE``); None copies them.
        ``lock`` is the object lock asked for (the source's is never copied);
        ``acl`` the copy's ACL and owner (the source's is never copied either).
        """
        check_source = source_conditions
        now = self._core.now_ns()
        return self._core.commit(
            lambda t: fo.copy_object(
                t,
                source,
                bucket,
                key,
                replace_with,
                conditions,
                now,
                check_source,
                tags,
                lock,
                acl,
            )
        )

    def set_tags(
        self, bucket: str, key: str, version_id: str | None, tags: dict[str, str]
    ) -> Deferred[ObjectVersion]:
        """Replace the tags of one version (the current one without ``version_id``).

        One metadata transaction; an empty ``tags`` removes them (DeleteObjectTagging).
        """
        return self._core.commit(lambda t: ft.set_object_tags(t, bucket, key, version_id, tags))

    def set_acl(
        self, bucket: str, key: str, version_id: str | None, acl: dict[str, Any]
    ) -> Deferred[ObjectVersion]:
        """Replace the ACL of one version (the current one without ``version_id``)."""
        return self._core.commit(lambda t: ft.set_object_acl(t, bucket, key, version_id, acl))


def _key_page(
    lister: Callable[[MetaTxn, Bucket, bytes, bytes | None, bytes | None, int], PageT],
    bucket: str,
    prefix: str,
    delimiter: str | None,
    after: str | None,
    max_keys: int,
) -> Callable[[MetaTxn], PageT]:
    """A read of one listing page of ``bucket`` by ``lister``, the request's strings as bytes."""

    def page(t: MetaTxn) -> PageT:
        return lister(
            t,
            fb.require_bucket(t, bucket),
            prefix.encode("utf-8"),
            delimiter.encode("utf-8") if delimiter else None,
            after.encode("utf-8") if after is not None else None,
            max_keys,
        )

    return page
