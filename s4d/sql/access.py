"""Which objects a query may read: the hook for users and roles.

A query reads only objects its caller may GET. The S3 layer hands each query
a :class:`ReadAccess` made for the caller; the query asks it about every
object before reading it (the object of S3 Select, each key a ``?sql`` glob
matches) and fails with ``AccessDenied`` on the first one refused. With one
user, as today, that is :class:`EveryObject`; per-user policies plug in here.
"""

from __future__ import annotations

from typing import Protocol


class ReadAccess(Protocol):
    """Decides whether the caller may read (GET) an object."""

    def may_read(self, bucket: str, key: str) -> bool:
        """True if the caller may GET ``key`` of ``bucket``."""
        ...


class EveryObject:
    """Read access to every object (the one user of a single-user server)."""

    def may_read(self, bucket: str, key: str) -> bool:
        """Always true."""
        return True
