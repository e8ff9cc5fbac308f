"""Who is calling: a user, its role, and the canonical id S3 documents show for it."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

READER = "Reader"
WRITER = "Writer"
SUPERUSER = "SuperUser"
#: Each role may do what the roles before it may, and more.
ROLE_RANK = {READER: 1, WRITER: 2, SUPERUSER: 3}


class Principal(NamedTuple):
    """An authenticated user, as authorization and S3 documents see it.

    :ivar canonical_id: the 64-hex-digit id S3 shows as ``Owner/ID`` (a hash of
        the user id, so it stays the same whatever key the user signs with).
    """

    user_id: str
    username: str
    role: str
    canonical_id: str

    @classmethod
    def of(cls, user_id: str, username: str, role: str) -> Principal:
        """A principal with its canonical id computed."""
        return cls(user_id, username, role, canonical_id(user_id))

    @property
    def is_superuser(self) -> bool:
        """A SuperUser: every bucket, and the admin API."""
        return self.role == SUPERUSER


def canonical_id(user_id: str) -> str:
    """The canonical id of a user: SHA-256 of its id, in hex."""
    return hashlib.sha256(user_id.encode()).hexdigest()
