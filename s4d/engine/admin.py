"""What the admin API asks of the store beyond S3: usage figures, emptying a bucket, counts.

The rules are in :mod:`s4d.features.bucket_contents`; here they run off the
reactor thread, a page per transaction: reads in short read transactions on a
worker thread, deletions as group commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from twisted.internet.defer import Deferred, ensureDeferred

from s4d.engine.core import EngineCore
from s4d.errors import S3Error
from s4d.features import bucket_contents as bc
from s4d.features import buckets as fb
from s4d.store.model import Bucket
from s4d.store.stats import StorageStats, read_stats
from s4d.store.txn import MetaTxn

#: Rounds of emptying a bucket that writers keep filling before giving up.
PURGE_ROUNDS = 5


@dataclass(frozen=True)
class StoreOverview:
    """The whole store at a glance: its statistics, bucket count and damaged chunks."""

    stats: StorageStats
    buckets: int
    damaged_chunks: int


class AdminFacade:
    """Operators' questions and actions over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def overview(self) -> Deferred[StoreOverview]:
        """Statistics, buckets and damaged chunks in one read (no scan: counters only)."""

        def read(t: MetaTxn) -> StoreOverview:
            return StoreOverview(
                read_stats(t.txn, t.dbs.counters, t.dbs.segments),
                bc.count_buckets(t),
                bc.count_damaged(t),
            )

        return self._core.read(read)

    def bucket_usage(self, name: str) -> Deferred[bc.BucketUsage]:
        """What one bucket holds (``NoSuchBucket`` if absent); walks its keys, a page a read."""
        return self._core.run(self._usage, name)

    def all_usage(self) -> Deferred[list[tuple[Bucket, bc.BucketUsage]]]:
        """Every bucket and what it holds (a bucket deleted meanwhile is left out)."""

        def run() -> list[tuple[Bucket, bc.BucketUsage]]:
            with self._core.store.read() as t:
                buckets = fb.list_buckets(t)
            found = []
            for bucket in buckets:
                try:
                    found.append((bucket, self._usage(bucket.name)))
                except S3Error:
                    continue  # deleted while we counted
            return found

        return self._core.run(run)

    def _usage(self, name: str) -> bc.BucketUsage:
        """In a worker thread: count the bucket's keys, one short read transaction a page."""
        total = bc.BucketUsage()
        after: bytes | None = None
        while True:
            with self._core.store.read() as t:
                page, after = bc.usage_page(t, name, after)
            total.add(page)
            if after is None:
                return total

    def empty_and_delete(self, name: str) -> Deferred[int]:
        """Delete every version of every key, then the bucket; how many keys went.

        Writers may keep adding keys meanwhile: the bucket is emptied again, up to
        :data:`PURGE_ROUNDS` times, before ``BucketNotEmpty`` is given up with. A
        version under object lock stops it (``InvalidBucketState``): the pages
        deleted before it stay deleted.
        """
        core = self._core

        async def purge() -> int:
            removed = 0
            for _round in range(PURGE_ROUNDS):
                while True:
                    try:
                        n = await core.commit(
                            partial(bc.purge_page, name=name, now_ns=core.now_ns())
                        )
                    except S3Error as e:
                        if e.code != "AccessDenied":
                            raise
                        raise S3Error(
                            "InvalidBucketState",
                            "The bucket holds object versions under object lock (retention "
                            "or legal hold): they cannot be deleted, nor the bucket.",
                            BucketName=name,
                        ) from None
                    removed += n
                    if not n:
                        break
                try:
                    await core.commit(lambda t: fb.delete_bucket(t, name))
                except S3Error as e:
                    if e.code != "BucketNotEmpty":
                        raise
                    continue
                return removed
            raise S3Error("BucketNotEmpty", BucketName=name)

        return ensureDeferred(purge())
