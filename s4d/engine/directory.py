"""Who holds an access key, who a user is, who owns a bucket: the request path's look-ups.

Authentication runs when a request's headers are in, synchronously on the
reactor thread, so :class:`Directory` answers synchronously: each look-up is
one short LMDB read transaction on the calling thread (a get or two in the
memory map, about a microsecond; never a scan) and what it finds about keys and
users is cached in this process. Every change to users or keys raises the
``iam`` generation in the same transaction; each look-up first reads the
generation and drops the caches when it moved, so a key revoked or a user
deactivated through any server process is refused by every process from its
next request on. Bucket owners are cached the same way, under a second
generation that creating or deleting a bucket raises, together with the
documents that decide who may use a bucket (:data:`ACCESS_DOCUMENTS`: changing
one raises that generation too).

Sealed secrets are opened here (AES-GCM, about a microsecond) and kept only in
the cache of this process. The root user's configured key
(``S4_ACCESS_KEY_ID``) is held in memory, never stored.
"""

from __future__ import annotations

from typing import NamedTuple

from s4d.errors import S3Error
from s4d.features.versions import find_version
from s4d.store import codec
from s4d.store.schema import ROOT_USER_KEY, U64, u64
from s4d.store.store import Store
from s4d.store.views.iam import (
    BUCKET_GENERATION,
    GENERATION,
    KEY,
    USER,
    KeyRecord,
    UserRecord,
)
from s4d.util.sealing import SealingError, SecretBox

#: Entries kept per cache before it is emptied (a bound against key-spraying clients).
MAX_CACHED = 200_000
#: Configuration documents that decide who may use a bucket (its policy, ACL,
#: public-access block, object ownership), read with its owner; changing any of
#: them raises the bucket generation in the same transaction.
ACCESS_DOCUMENTS = (b"policy", b"acl", b"pab", b"ownership")


class BucketEntry(NamedTuple):
    """What the request path needs of a bucket: its owner and its access documents."""

    owner: str
    documents: dict[bytes, bytes]


class UserEntry(NamedTuple):
    """What the request path needs of a user."""

    user_id: str
    username: str
    role: str
    active: bool
    password_version: int


class KeyEntry(NamedTuple):
    """An access key, its secret in the clear, and its user."""

    access_key: str
    secret: str
    user: UserEntry
    #: the key comes from the configuration (S4_ACCESS_KEY_ID), not the store
    configured: bool = False


def user_entry(user: UserRecord) -> UserEntry:
    """The cacheable part of a user record."""
    return UserEntry(user.user_id, user.username, user.role, user.active, user.password_version)


class Directory:
    """Cached, synchronous look-ups of keys, users and bucket owners in one process.

    :param store: the open store.
    :param box: opens sealed secret keys.
    """

    def __init__(self, store: Store, box: SecretBox) -> None:
        self._env = store.env
        self._store = store
        self._iam = store.dbs.iam
        self._buckets = store.dbs.buckets
        self._bconf = store.dbs.bconf
        self._box = box
        self._configured: dict[str, str] = {}
        self._keys: dict[str, KeyEntry | None] = {}
        self._users: dict[str, UserEntry | None] = {}
        self._owners: dict[str, BucketEntry | None] = {}
        self._root: str | None = None
        #: the generation the caches hold (-1: none yet)
        self.generation = -1
        self._bucket_generation = -1

    def configure_root_key(self, access_key: str, secret: str) -> None:
        """Let ``access_key`` (from the configuration) sign as the root user."""
        self._configured = {access_key: secret}
        self._keys.clear()

    @property
    def configured_keys(self) -> frozenset[str]:
        """Access key ids that come from the configuration (the root's)."""
        return frozenset(self._configured)

    def refresh(self) -> int:
        """Read both generations; drop the caches that went stale. Returns the first."""
        shared = self._store.snapshot()  # the reactor thread's shared read transaction
        if shared is not None:
            raw = shared.txn.get(GENERATION, db=self._iam)
            raw_buckets = shared.txn.get(BUCKET_GENERATION, db=self._iam)
        else:
            with self._env.begin() as txn:
                raw = txn.get(GENERATION, db=self._iam)
                raw_buckets = txn.get(BUCKET_GENERATION, db=self._iam)
        generation = int(U64.unpack(raw)[0]) if raw else 0
        if generation != self.generation:
            self._keys.clear()
            self._users.clear()
            self.generation = generation
        buckets = int(U64.unpack(raw_buckets)[0]) if raw_buckets else 0
        if buckets != self._bucket_generation:
            self._owners.clear()
            self._bucket_generation = buckets
        return generation

    def key(self, access_key: str, refresh: bool = True) -> KeyEntry | None:
        """The key ``access_key`` with its secret and user; None if there is no such key.

        A key whose user is inactive is returned (callers decide); a sealed
        secret that does not open with the server key is no key. ``refresh``
        False skips the generation check (a second look-up within one request).
        """
        if refresh:
            self.refresh()
        keys = self._keys
        if access_key in keys:
            return keys[access_key]
        found = self._load_key(access_key)
        if len(keys) >= MAX_CACHED:
            keys.clear()
        keys[access_key] = found
        return found

    def user(self, user_id: str, refresh: bool = True) -> UserEntry | None:
        """The user with this id, or None (``refresh``: as for :meth:`key`)."""
        if refresh:
            self.refresh()
        return self._user(user_id)

    def root_id(self) -> str:
        """The root user's id ("" before the server set it up)."""
        if self._root is None:
            with self._env.begin() as txn:
                raw = txn.get(ROOT_USER_KEY, db=self._iam)
            if raw is None:
                return ""
            self._root = bytes(raw).decode()
        return self._root

    def bucket_owner(self, bucket: str, refresh: bool = True) -> str | None:
        """The id of the user who owns ``bucket``; None if there is no such bucket.

        ``refresh``: as for :meth:`key`.
        """
        entry = self.bucket(bucket, refresh)
        return entry.owner if entry is not None else None

    def bucket(self, bucket: str, refresh: bool = True) -> BucketEntry | None:
        """The owner and access documents of ``bucket``; None if there is no such bucket.

        ``refresh``: as for :meth:`key`. The access documents are cached under the
        bucket generation, so a change through any process is seen at once.
        """
        if refresh:
            self.refresh()
        owners = self._owners
        if bucket in owners:
            return owners[bucket]
        found = None
        with self._env.begin() as txn:
            raw = txn.get(bucket.encode(), db=self._buckets)
            if raw is not None:
                record = codec.decode(raw)
                owner = record.get("owner")
                prefix = u64(int(record["id"]))
                documents = {}
                for kind in ACCESS_DOCUMENTS:
                    value = txn.get(prefix + kind, db=self._bconf)
                    if value is not None:
                        documents[kind] = bytes(value)
                found = BucketEntry(str(owner) if owner else "", documents)
        if found is not None and not found.owner:
            found = found._replace(owner=self.root_id())
        if len(owners) >= MAX_CACHED:
            owners.clear()
        owners[bucket] = found
        return found

    @property
    def bucket_generation(self) -> int:
        """The bucket generation the cache holds (as of the last refresh)."""
        return self._bucket_generation

    def object_tags(self, bucket: str, key: str, version_id: str | None) -> dict[str, str] | None:
        """The tags of a version (the current one without ``version_id``); None if there is
        no such version. One short read, for a policy that asks (``s3:ExistingObjectTag``)."""
        try:
            with self._store.read() as t:
                found = t.buckets.get(bucket)
                if found is None:
                    return None
                _, version = find_version(t, found, key, version_id)
                return dict(version.tags)
        except S3Error:
            return None

    def user_ids(self) -> list[str]:
        """Every user's id (a scan: for resolving grants, never on the request path)."""
        found = []
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._iam)
            if cursor.set_range(USER):
                for key in cursor.iternext(keys=True, values=False):
                    if not key.startswith(USER):
                        break
                    found.append(bytes(key[len(USER) :]).decode())
        return found

    def _user(self, user_id: str) -> UserEntry | None:
        users = self._users
        if user_id in users:
            return users[user_id]
        with self._env.begin() as txn:
            raw = txn.get(USER + user_id.encode(), db=self._iam)
        found = user_entry(UserRecord.decode(user_id, codec.decode(raw))) if raw else None
        if len(users) >= MAX_CACHED:
            users.clear()
        users[user_id] = found
        return found

    def _load_key(self, access_key: str) -> KeyEntry | None:
        configured = self._configured.get(access_key)
        if configured is not None:
            root = self._user(self.root_id())
            return KeyEntry(access_key, configured, root, True) if root is not None else None
        with self._env.begin() as txn:
            raw = txn.get(KEY + access_key.encode(), db=self._iam)
        if raw is None:
            return None
        record = KeyRecord.decode(access_key, codec.decode(raw))
        user = self._user(record.user_id)
        if user is None:
            return None
        try:
            secret = self._box.open(record.sealed_secret, access_key)
        except SealingError:
            return None
        return KeyEntry(access_key, secret, user)
