"""The ``iam`` sub-database: users, their access keys, and the change generation.

============================== ====================================================
key                            value
============================== ====================================================
``b"R"``                       the root user's id (ASCII)
``b"G"``                       the generation: u64, raised by every change to users
                               or keys (processes drop their caches when it moves)
``b"B"``                       the bucket generation: u64, raised whenever a bucket
                               is created or deleted (cached bucket owners go stale)
``b"U"`` + user id             codec: :class:`UserRecord`
``b"N"`` + user name           the user's id (ASCII): the name index
``b"K"`` + access key id       codec: :class:`KeyRecord` (its secret sealed)
``b"k"`` + user id + NUL + key ``b""``: a user's keys, in access key order
============================== ====================================================

Every lookup on the request path (a key by id, a user by id) is one get.
Passwords are stored as scrypt hashes, secret keys sealed with the server key
(:mod:`s4d.util.sealing`); this module only stores what it is given.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from s4d.store import codec
from s4d.store.schema import U64, u64
from s4d.store.views.base import View

ROOT = b"R"
GENERATION = b"G"
BUCKET_GENERATION = b"B"
USER = b"U"
NAME = b"N"
KEY = b"K"
USER_KEY = b"k"


@dataclass
class UserRecord:
    """One user.

    :ivar password_hash: scrypt hash (:mod:`s4d.util.passwords`); "" for no password
        (the user cannot log in to the admin API).
    :ivar password_version: raised at every password change (tokens name it).
    """

    user_id: str
    username: str
    role: str
    active: bool = True
    password_hash: str = ""
    password_version: int = 1
    created_ns: int = 0
    updated_ns: int = 0

    def encode(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "n": self.username,
            "r": self.role,
            "a": 1 if self.active else 0,
            "pw": self.password_hash,
            "pv": self.password_version,
            "c": self.created_ns,
            "u": self.updated_ns,
        }

    @classmethod
    def decode(cls, user_id: str, value: dict[str, Any]) -> UserRecord:
        """Build from the stored form."""
        return cls(
            user_id=user_id,
            username=str(value["n"]),
            role=str(value["r"]),
            active=bool(value.get("a", 1)),
            password_hash=str(value.get("pw", "")),
            password_version=int(value.get("pv", 1)),
            created_ns=int(value.get("c", 0)),
            updated_ns=int(value.get("u", 0)),
        )


@dataclass
class KeyRecord:
    """One access key: whose it is and its sealed secret."""

    access_key: str
    user_id: str
    sealed_secret: bytes
    created_ns: int = 0

    def encode(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "u": self.user_id,
            "s": base64.b64encode(self.sealed_secret).decode(),
            "c": self.created_ns,
        }

    @classmethod
    def decode(cls, access_key: str, value: dict[str, Any]) -> KeyRecord:
        """Build from the stored form."""
        return cls(
            access_key=access_key,
            user_id=str(value["u"]),
            sealed_secret=base64.b64decode(str(value["s"])),
            created_ns=int(value.get("c", 0)),
        )


class IamView(View):
    """Users and access keys."""

    # -- the generation and the root ---------------------------------------------------

    def generation(self) -> int:
        """The current generation (0 before the first change)."""
        raw = self.txn.get(GENERATION, db=self.db)
        return int(U64.unpack(raw)[0]) if raw else 0

    def bump(self) -> int:
        """Raise the generation (every change to users or keys calls this)."""
        value = self.generation() + 1
        self.txn.put(GENERATION, u64(value), db=self.db)
        return value

    def bump_buckets(self) -> None:
        """Raise the bucket generation (a bucket was created or deleted)."""
        raw = self.txn.get(BUCKET_GENERATION, db=self.db)
        value = (U64.unpack(raw)[0] if raw else 0) + 1
        self.txn.put(BUCKET_GENERATION, u64(value), db=self.db)

    def root_id(self) -> str | None:
        """The root user's id, once one was assigned."""
        raw = self.txn.get(ROOT, db=self.db)
        return bytes(raw).decode() if raw is not None else None

    def set_root_id(self, user_id: str) -> None:
        """Name the root user (once, when the directory is set up or upgraded)."""
        self.txn.put(ROOT, user_id.encode(), db=self.db)

    # -- users ------------------------------------------------------------------------------

    def user(self, user_id: str) -> UserRecord | None:
        """The user with this id, or None."""
        raw = self.txn.get(USER + user_id.encode(), db=self.db)
        return UserRecord.decode(user_id, codec.decode(raw)) if raw is not None else None

    def user_id_by_name(self, username: str) -> str | None:
        """The id of the user called ``username``, or None."""
        raw = self.txn.get(NAME + username.encode(), db=self.db)
        return bytes(raw).decode() if raw is not None else None

    def user_by_name(self, username: str) -> UserRecord | None:
        """The user called ``username``, or None."""
        user_id = self.user_id_by_name(username)
        return self.user(user_id) if user_id is not None else None

    def put_user(self, user: UserRecord, old_name: str | None = None) -> None:
        """Store a user (and its name index; ``old_name``: the name it had until now)."""
        if old_name is not None and old_name != user.username:
            self.txn.delete(NAME + old_name.encode(), db=self.db)
        self.txn.put(USER + user.user_id.encode(), codec.encode(user.encode()), db=self.db)
        self.txn.put(NAME + user.username.encode(), user.user_id.encode(), db=self.db)

    def delete_user(self, user: UserRecord) -> None:
        """Remove a user and its name (its keys are :meth:`delete_key`'s)."""
        self.txn.delete(USER + user.user_id.encode(), db=self.db)
        self.txn.delete(NAME + user.username.encode(), db=self.db)

    def users(self) -> list[UserRecord]:
        """Every user, by id."""
        found = []
        cursor = self.cursor()
        if cursor.set_range(USER):
            for key, value in cursor:
                if not key.startswith(USER):
                    break
                found.append(UserRecord.decode(bytes(key[1:]).decode(), codec.decode(value)))
        return found

    # -- keys -------------------------------------------------------------------------------

    def key(self, access_key: str) -> KeyRecord | None:
        """The access key with this id, or None."""
        raw = self.txn.get(KEY + access_key.encode(), db=self.db)
        return KeyRecord.decode(access_key, codec.decode(raw)) if raw is not None else None

    def put_key(self, key: KeyRecord) -> None:
        """Store an access key and index it under its user."""
        self.txn.put(KEY + key.access_key.encode(), codec.encode(key.encode()), db=self.db)
        self.txn.put(_user_key(key.user_id, key.access_key), b"", db=self.db)

    def delete_key(self, key: KeyRecord) -> None:
        """Remove an access key."""
        self.txn.delete(KEY + key.access_key.encode(), db=self.db)
        self.txn.delete(_user_key(key.user_id, key.access_key), db=self.db)

    def keys_of(self, user_id: str) -> list[KeyRecord]:
        """A user's access keys, by access key id."""
        prefix = USER_KEY + user_id.encode() + b"\0"
        names = []
        cursor = self.cursor()
        if cursor.set_range(prefix):
            for key in cursor.iternext(keys=True, values=False):
                if not key.startswith(prefix):
                    break
                names.append(bytes(key[len(prefix) :]).decode())
        found = [self.key(name) for name in names]
        return [k for k in found if k is not None]


def _user_key(user_id: str, access_key: str) -> bytes:
    return USER_KEY + user_id.encode() + b"\0" + access_key.encode()
