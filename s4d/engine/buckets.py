"""Buckets: create, delete, look up, list, and their stored configuration documents."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from s4d.engine.core import EngineCore
from s4d.features import objects as fo
from s4d.store.model import Bucket
from s4d.store.txn import MetaTxn


class BucketsFacade:
    """Bucket operations over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def create(self, name: str, region: str) -> Deferred[Bucket]:
        """Create a bucket (``BucketAlreadyOwnedByYou`` if it exists)."""
        now = self._core.now_ns()
        return self._core.commit(lambda t: fo.create_bucket(t, name, region, now))

    def delete(self, name: str) -> Deferred[None]:
        """Delete an empty bucket."""
        return self._core.commit(lambda t: fo.delete_bucket(t, name))

    def get(self, name: str) -> Deferred[Bucket]:
        """The bucket's record (``NoSuchBucket`` if absent)."""
        return self._core.read(lambda t: t.require_bucket(name))

    def list_all(self) -> Deferred[list[Bucket]]:
        """Every bucket, by name."""
        return self._core.read(lambda t: t.buckets())

    def get_config(self, name: str, kind: bytes) -> Deferred[bytes | None]:
        """A stored bucket configuration document (``NoSuchBucket`` if absent)."""
        return self._core.read(lambda t: t.get_bucket_config(t.require_bucket(name), kind))

    def put_config(self, name: str, kind: bytes, value: bytes | None) -> Deferred[None]:
        """Store (or, with None, delete) a bucket configuration document."""
        return self._core.commit(lambda t: t.put_bucket_config(t.require_bucket(name), kind, value))

    def set_versioning(self, name: str, status: str) -> Deferred[None]:
        """Turn versioning on (``Enabled``) or pause it (``Suspended``)."""

        def apply(t: MetaTxn) -> None:
            bucket = t.require_bucket(name)
            bucket.versioning = status
            t.put_bucket(bucket)

        return self._core.commit(apply)
