"""Whole-bucket work for operators: what a bucket holds, and emptying it.

S3 has neither; the admin API needs both (bucket statistics, ``DELETE
/api/admin/buckets/{name}?force=true``). Both walk the bucket's namespace tree
a page at a time, each page in its own transaction, so that no transaction is
long however big the bucket: :func:`usage_page` counts the keys after a
position, :func:`purge_page` deletes the first keys left with every version
they have. Deleting goes through :func:`~s4d.features.objects.delete_object`,
one version at a time, so every rule that guards a version's deletion applies
here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from s4d.features.objects import delete_object
from s4d.store.listing import walk
from s4d.store.schema import u64
from s4d.store.txn import MetaTxn
from s4d.store.version_record import decode_version

#: Keys counted per read transaction.
USAGE_PAGE = 2000
#: Keys deleted per write transaction.
PURGE_PAGE = 200


@dataclass
class BucketUsage:
    """What a bucket holds.

    :ivar objects: keys whose current version holds data (what a listing shows).
    :ivar versions: version records holding data, noncurrent ones included.
    :ivar delete_markers: delete markers.
    :ivar bytes: the sizes of those versions added up (what clients stored).
    """

    objects: int = 0
    versions: int = 0
    delete_markers: int = 0
    bytes: int = 0

    def add(self, other: BucketUsage) -> None:
        """Add ``other``'s figures to these."""
        self.objects += other.objects
        self.versions += other.versions
        self.delete_markers += other.delete_markers
        self.bytes += other.bytes


def usage_page(
    t: MetaTxn, name: str, after: bytes | None, limit: int = USAGE_PAGE
) -> tuple[BucketUsage, bytes | None]:
    """Count up to ``limit`` keys after ``after``; the usage and where to go on (None: done).

    ``NoSuchBucket`` if the bucket is gone.
    """
    bucket = t.buckets.require(name)
    usage = BucketUsage()
    versions = t.versions.cursor()
    seen = 0
    for _kind, raw, object_id in walk(t, bucket, b"", after, rollup_dirs=False):
        if seen >= limit:
            return usage, after
        seen += 1
        after = raw
        prefix = u64(object_id)
        if not versions.set_range(prefix):
            continue
        current = True
        for k, v in versions:
            if not k.startswith(prefix):
                break
            version = decode_version(v, chunks=False)
            if version.delete_marker:
                usage.delete_markers += 1
            else:
                usage.versions += 1
                usage.bytes += version.size
                usage.objects += current
            current = False
    return usage, None


def purge_page(t: MetaTxn, name: str, now_ns: int, limit: int = PURGE_PAGE) -> int:
    """Delete the first ``limit`` keys of the bucket with all their versions; how many went."""
    bucket = t.buckets.require(name)
    found: list[tuple[bytes, int]] = []
    for _kind, raw, object_id in walk(t, bucket, b"", None, rollup_dirs=False):
        found.append((raw, object_id))
        if len(found) >= limit:
            break
    for raw, object_id in found:
        versions = t.versions.all(object_id)
        if not versions:
            t.ns.unlink(bucket, raw)  # a name without versions: nothing to keep it
        for version in versions:
            delete_object(t, name, raw.decode("utf-8"), version.version_id, now_ns)
    return len(found)


def count_buckets(t: MetaTxn) -> int:
    """How many buckets there are (O(1))."""
    return t.buckets.record_count()


def count_damaged(t: MetaTxn) -> int:
    """How many chunks are recorded as damaged (O(1))."""
    return t.damaged.record_count()
