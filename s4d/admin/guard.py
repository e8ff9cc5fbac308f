"""Who may call an admin route: the seam between the admin routes and identity.

The admin routes (stats, buckets, users, compaction ...) ask an
:class:`AdminGuard` for the caller before doing anything; the guard reads
``Authorization: Bearer <JWT>`` and answers with the caller or raises
:class:`AdminDenied` (401 without a valid token, 403 for a token whose role
may not do this). The JWT implementation lives with the users and keys; the
routes depend only on this protocol.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from twisted.web.iweb import IRequest


class AdminCaller(NamedTuple):
    """The authenticated caller of an admin route."""

    user_id: str
    username: str
    role: str  # "Reader", "Writer" or "SuperUser"


class AdminDenied(Exception):
    """The caller may not use this route: answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdminGuard(Protocol):
    """Decides who is calling an admin route."""

    def caller(self, request: IRequest) -> AdminCaller:
        """The caller named by a valid bearer token; :class:`AdminDenied` (401) otherwise."""

    def superuser(self, request: IRequest) -> AdminCaller:
        """As :meth:`caller`, and :class:`AdminDenied` (403) unless the caller is a SuperUser."""
