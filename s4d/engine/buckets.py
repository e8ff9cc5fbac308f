"""Buckets: create, delete, look up, list, and their stored configuration documents."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from s4d.engine.core import EngineCore
from s4d.features import buckets as fb
from s4d.store.model import Bucket


class BucketsFacade:
    """Bucket operations over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def create(self, name: str, region: str, object_lock: bool = False) -> Deferred[Bucket]:
        """Create a bucket (``BucketAlreadyOwnedByYou`` if it exists), with object lock or not."""
        now = self._core.now_ns()
        return self._core.commit(lambda t: fb.create_bucket(t, name, region, now, object_lock))

    def delete(self, name: str) -> Deferred[None]:
        """Delete an empty bucket."""
        return self._core.commit(lambda t: fb.delete_bucket(t, name))

    def get(self, name: str) -> Deferred[Bucket]:
        """The bucket's record (``NoSuchBucket`` if absent)."""
        return self._core.read(lambda t: fb.require_bucket(t, name))

    def list_all(self) -> Deferred[list[Bucket]]:
        """Every bucket, by name."""
        return self._core.read(fb.list_buckets)

    def list_page(
        self, prefix: str, after: str | None, region: str | None, max_buckets: int
    ) -> Deferred[tuple[list[Bucket], bool]]:
        """A page of buckets by name (prefix, after a name, a region); whether more follow."""
        return self._core.read(
            lambda t: fb.list_buckets_page(t, prefix, after, region, max_buckets)
        )

    def get_config(self, name: str, kind: bytes) -> Deferred[bytes | None]:
        """A stored bucket configuration document (``NoSuchBucket`` if absent)."""
        return self._core.read(lambda t: fb.get_bucket_config(t, name, kind))

    def put_config(self, name: str, kind: bytes, value: bytes | None) -> Deferred[None]:
        """Store (or, with None, delete) a bucket configuration document."""
        return self._core.commit(lambda t: fb.put_bucket_config(t, name, kind, value))

    def set_versioning(self, name: str, status: str) -> Deferred[Bucket]:
        """Turn versioning on (``Enabled``) or pause it (``Suspended``)."""
        return self._core.commit(lambda t: fb.set_versioning(t, name, status))
