"""Buckets: create, delete, look up, list, and their stored configuration documents."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from twisted.internet.defer import Deferred

from s4d.engine.configs import ConfigCache
from s4d.engine.core import EngineCore
from s4d.engine.directory import ACCESS_DOCUMENTS
from s4d.features import buckets as fb
from s4d.store.model import Bucket

T = TypeVar("T")


class BucketsFacade:
    """Bucket operations over one :class:`~s4d.engine.core.EngineCore`.

    :param configs: the process's cache of configuration documents, told of every change.
    """

    def __init__(self, core: EngineCore, configs: ConfigCache | None = None) -> None:
        self._core = core
        self._configs = configs or ConfigCache(core)

    def create(
        self,
        name: str,
        region: str,
        object_lock: bool = False,
        *,
        owner: str = "",
        documents: Mapping[bytes, bytes] | None = None,
    ) -> Deferred[Bucket]:
        """Create a bucket, with object lock or not, owned by user ``owner`` ("": the root),
        with its first access ``documents`` (ACL, ownership) stored in the same transaction.

        ``BucketAlreadyOwnedByYou`` if it exists and is the owner's,
        ``BucketAlreadyExists`` if it is another user's.
        """
        now = self._core.now_ns()
        return self._core.commit(
            lambda t: fb.create_bucket(
                t, name, region, now, object_lock, owner=owner, documents=documents
            )
        )

    def delete(self, name: str) -> Deferred[None]:
        """Delete an empty bucket."""
        self._configs.forget(name)
        d = self._core.commit(lambda t: fb.delete_bucket(t, name))
        return d.addBoth(self._forgetting(name, None))

    def get(self, name: str) -> Deferred[Bucket]:
        """The bucket's record (``NoSuchBucket`` if absent)."""
        return self._core.read(lambda t: fb.require_bucket(t, name))

    def list_all(self) -> Deferred[list[Bucket]]:
        """Every bucket, by name."""
        return self._core.read(fb.list_buckets)

    def list_page(
        self,
        prefix: str,
        after: str | None,
        region: str | None,
        max_buckets: int,
        owner: str | None = None,
    ) -> Deferred[tuple[list[Bucket], bool]]:
        """A page of buckets by name (prefix, after a name, a region, only ``owner``'s
        unless None); whether more follow."""
        return self._core.read(
            lambda t: fb.list_buckets_page(t, prefix, after, region, max_buckets, owner)
        )

    def get_config(self, name: str, kind: bytes) -> Deferred[bytes | None]:
        """A stored bucket configuration document (``NoSuchBucket`` if absent)."""
        return self._core.read(lambda t: fb.get_bucket_config(t, name, kind))

    def put_config(self, name: str, kind: bytes, value: bytes | None) -> Deferred[None]:
        """Store (or, with None, delete) a bucket configuration document."""
        d = self._core.commit(lambda t: fb.put_bucket_config(t, name, kind, value))
        return d.addBoth(self._forgetting(name, kind))

    def cached_config(self, name: str, kind: bytes) -> Deferred[bytes | None]:
        """A configuration document through this process's cache (None: none, or no bucket).

        Fresh within a second (see :mod:`s4d.engine.configs`); use :meth:`get_config`
        where a missing bucket must be ``NoSuchBucket``.
        """
        return self._configs.fetch(name, kind)

    def peek_config(self, name: str, kind: bytes) -> bytes | None:
        """The cached document, however old, without reading (None if none is cached)."""
        return self._configs.peek(name, kind)

    def _forgetting(self, name: str, kind: bytes | None) -> Callable[[T], T]:
        """A callback that drops the cached documents once the change is committed."""

        def forget(result: T) -> T:
            self._configs.forget(name, kind)
            return result

        return forget

    def put_access(
        self, name: str, kind: bytes, value: bytes | None, check: fb.AccessCheck | None = None
    ) -> Deferred[None]:
        """Store (None: delete) an access document (policy, ACL, public-access block,
        ownership), raising the bucket generation with it; ``check`` sees the current
        access documents in the same transaction and may refuse the change."""
        return self._core.commit(
            lambda t: fb.put_access_document(t, name, kind, value, ACCESS_DOCUMENTS, check)
        )

    def set_versioning(self, name: str, status: str) -> Deferred[Bucket]:
        """Turn versioning on (``Enabled``) or pause it (``Suspended``)."""
        return self._core.commit(lambda t: fb.set_versioning(t, name, status))
