"""The ``buckets`` and ``bconf`` sub-databases: bucket records and their configuration."""

from __future__ import annotations

from s4d.errors import S3Error
from s4d.store import codec
from s4d.store.model import Bucket
from s4d.store.schema import u64
from s4d.store.views.base import View


class BucketsView(View):
    """Bucket records, keyed by name."""

    def get(self, name: str) -> Bucket | None:
        """The bucket called ``name``, or None."""
        raw = self.txn.get(name.encode(), db=self.db)
        return Bucket.decode(name, codec.decode(raw)) if raw is not None else None

    def require(self, name: str) -> Bucket:
        """The bucket called ``name``; ``NoSuchBucket`` if there is none."""
        bucket = self.get(name)
        if bucket is None:
            raise S3Error("NoSuchBucket", BucketName=name)
        return bucket

    def put(self, bucket: Bucket) -> None:
        """Store a bucket record."""
        self.txn.put(bucket.name.encode(), codec.encode(bucket.encode()), db=self.db)

    def delete(self, bucket: Bucket) -> None:
        """Remove a bucket record (its configuration is :class:`BucketConfigView`'s)."""
        self.txn.delete(bucket.name.encode(), db=self.db)

    def all(self) -> list[Bucket]:
        """Every bucket, by name."""
        return [Bucket.decode(k.decode(), codec.decode(v)) for k, v in self.cursor()]

    def page(
        self,
        prefix: str,
        after: str | None,
        region: str | None,
        limit: int,
        owner: str | None = None,
        default_owner: str = "",
    ) -> list[Bucket]:
        """Up to ``limit`` buckets by name: names starting with ``prefix``, past ``after``,
        in ``region`` (any region if None), owned by ``owner`` (anyone's if None; a bucket
        without a recorded owner is ``default_owner``'s). A cursor walk from the first
        candidate name."""
        start = prefix.encode()
        if after is not None:
            start = max(start, after.encode() + b"\x00")
        found: list[Bucket] = []
        cursor = self.cursor()
        if not cursor.set_range(start):
            return found
        for raw_name, raw in cursor:
            if len(found) >= limit or not raw_name.startswith(prefix.encode()):
                break
            bucket = Bucket.decode(raw_name.decode(), codec.decode(raw))
            if owner is not None and (bucket.owner or default_owner) != owner:
                continue
            if region is None or bucket.region == region:
                found.append(bucket)
        return found


class BucketConfigView(View):
    """Configuration documents of buckets, keyed by bucket id and document name."""

    def get(self, bucket: Bucket, name: bytes) -> bytes | None:
        """A bucket's stored configuration document ``name``."""
        return self.txn.get(u64(bucket.bucket_id) + name, db=self.db)

    def put(self, bucket: Bucket, name: bytes, value: bytes | None) -> None:
        """Store (or with None, delete) a bucket configuration document."""
        key = u64(bucket.bucket_id) + name
        if value is None:
            self.txn.delete(key, db=self.db)
        else:
            self.txn.put(key, value, db=self.db)

    def delete_all(self, bucket: Bucket) -> None:
        """Remove every configuration document of a bucket."""
        prefix = u64(bucket.bucket_id)
        cursor = self.cursor()
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break
