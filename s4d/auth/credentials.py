"""The S3 front end's view of users: secrets to verify signatures, principals, bucket owners.

:class:`IdentitySource` is what the S3 layer asks, when a request's headers are
in: the secret of an access key (to check the signature), then who holds it
(a :class:`~s4d.auth.principal.Principal`), then who owns the bucket named.
:class:`UserCredentials` answers from the users store through the engine's
:class:`~s4d.engine.Directory` (cached per process, refreshed when users or
keys change). A key whose user is inactive has no secret: its requests are
refused as ``InvalidAccessKeyId`` like those of a revoked key.
"""

from __future__ import annotations

from typing import Protocol

from s4d.auth.access import BucketAccess
from s4d.auth.bucket_access import bucket_access as make_access
from s4d.auth.policy import compile_policy
from s4d.auth.principal import Principal, canonical_id
from s4d.auth.request import CredentialSource
from s4d.engine import BucketEntry, Directory, UserEntry

#: Buckets whose compiled access one process keeps.
MAX_CACHED_ACCESS = 100_000


class IdentitySource(CredentialSource, Protocol):
    """Secrets, principals and bucket owners for the S3 front end.

    :ivar knows_buckets: :meth:`bucket_access` answers None only for a bucket that
        does not exist (False: it knows no bucket's access at all).
    """

    knows_buckets: bool

    def principal_for(self, access_key_id: str) -> Principal | None:
        """Who holds ``access_key_id`` (call after :meth:`secret_for` found it)."""
        ...

    def principal_of(self, user_id: str) -> Principal | None:
        """The user with this id (to show a bucket's owner), or None."""
        ...

    def bucket_owner(self, bucket: str) -> str | None:
        """The id of the user who owns ``bucket``; None if there is no such bucket."""
        ...

    def bucket_access(self, bucket: str, refresh: bool = False) -> BucketAccess | None:
        """Who may use ``bucket`` (owner, ACL, policy...); None if there is no such bucket.

        ``refresh``: look at the generations first (an unsigned request, which
        :meth:`secret_for` did not refresh for).
        """
        ...

    def grantee(self, user_id_or_canonical: str) -> Principal | None:
        """The user a grant names, by user id or canonical id; None if there is none."""
        ...

    def object_tags(self, bucket: str, key: str, version_id: str | None) -> dict[str, str] | None:
        """The tags of a version (current without ``version_id``); None if there is none."""
        ...


class UserCredentials:
    """An :class:`IdentitySource` over the users store (the service's)."""

    knows_buckets = True

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._principals: dict[str, Principal] = {}
        self._generation = -1
        #: compiled access by bucket, with the directory entry it was made from
        self._access: dict[str, tuple[BucketEntry, BucketAccess]] = {}
        self._canonical: dict[str, str] = {}
        self._canonical_generation = -1

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of an active user's key (this refreshes the directory)."""
        entry = self.directory.key(access_key_id)
        if entry is None or not entry.user.active:
            return None
        return entry.secret

    def principal_for(self, access_key_id: str) -> Principal | None:
        """Who holds ``access_key_id``, as of the last :meth:`secret_for`."""
        entry = self.directory.key(access_key_id, refresh=False)
        if entry is None or not entry.user.active:
            return None
        return self._principal(entry.user)

    def principal_of(self, user_id: str) -> Principal | None:
        """The user with this id (without refreshing the directory)."""
        user = self.directory.user(user_id, refresh=False)
        return self._principal(user) if user is not None else None

    def bucket_owner(self, bucket: str) -> str | None:
        """The id of the user who owns ``bucket`` (None: no such bucket), as of the last
        :meth:`secret_for` (every signed request calls that first)."""
        return self.directory.bucket_owner(bucket, refresh=False)

    def bucket_access(self, bucket: str, refresh: bool = False) -> BucketAccess | None:
        """The bucket's access configuration, compiled once per change of its documents."""
        entry = self.directory.bucket(bucket, refresh)
        if entry is None:
            return None
        cached = self._access.get(bucket)
        if cached is not None and cached[0] is entry:
            return cached[1]
        access = make_access(bucket, entry.owner, entry.documents, compile_policy)
        if len(self._access) >= MAX_CACHED_ACCESS:
            self._access.clear()
        self._access[bucket] = (entry, access)
        return access

    def object_tags(self, bucket: str, key: str, version_id: str | None) -> dict[str, str] | None:
        """The tags of a version (a short read, when a policy asks)."""
        return self.directory.object_tags(bucket, key, version_id)

    def grantee(self, user_id_or_canonical: str) -> Principal | None:
        """The user a grant names (by id, or by canonical id: a scan of the users, cached)."""
        found = self.principal_of(user_id_or_canonical)
        if found is not None:
            return found
        if self._canonical_generation != self.directory.generation:
            self._canonical = {canonical_id(u): u for u in self.directory.user_ids()}
            self._canonical_generation = self.directory.generation
        user_id = self._canonical.get(user_id_or_canonical.lower())
        return self.principal_of(user_id) if user_id is not None else None

    def _principal(self, user: UserEntry) -> Principal:
        if self._generation != self.directory.generation:
            self._principals.clear()
            self._generation = self.directory.generation
        found = self._principals.get(user.user_id)
        if found is None:
            found = Principal.of(user.user_id, user.username, user.role)
            self._principals[user.user_id] = found
        return found
