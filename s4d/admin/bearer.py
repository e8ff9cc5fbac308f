"""The admin API's guard: ``Authorization: Bearer <JWT>`` checked against the users store.

:class:`JwtGuard` implements :class:`~s4d.admin.guard.AdminGuard`. A token is
accepted when :class:`~s4d.auth.tokens.TokenIssuer` finds it valid (HS256, the
server's key, unexpired) *and* its user still exists, is active, and has the
password version the token was issued for; the role that counts is the user's
role now, not the one written in the token. Anything else is 401; a valid
caller without the SuperUser role gets 403 from :meth:`JwtGuard.superuser`.
The user look-up goes through the engine's :class:`~s4d.engine.Directory`
(cached per process; one short read of the store's generation per call).
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from s4d.admin.guard import AdminCaller, AdminDenied
from s4d.auth.principal import SUPERUSER
from s4d.auth.tokens import TokenIssuer, TokenRefused
from s4d.engine import Directory


class JwtGuard:
    """Decides who calls an admin route from the request's bearer token."""

    def __init__(self, issuer: TokenIssuer, directory: Directory) -> None:
        self.issuer = issuer
        self.directory = directory

    def caller(self, request: IRequest) -> AdminCaller:
        """The caller named by a valid bearer token; :class:`AdminDenied` (401) otherwise."""
        found = request.requestHeaders.getRawHeaders(b"authorization") or [b""]
        header: bytes = found[0]
        scheme, _, token = header.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            raise AdminDenied(401, "log in first: send Authorization: Bearer <token>")
        try:
            claims = self.issuer.decode(token.strip().decode("ascii"))
        except UnicodeDecodeError:
            raise AdminDenied(401, "the token is not valid") from None
        except TokenRefused as e:
            raise AdminDenied(401, str(e)) from None
        user = self.directory.user(claims.user_id)
        if user is None or not user.active:
            raise AdminDenied(401, "the token's user is gone or inactive")
        if user.password_version != claims.password_version:
            raise AdminDenied(401, "the password changed since this token was issued")
        return AdminCaller(user.user_id, user.username, user.role)

    def superuser(self, request: IRequest) -> AdminCaller:
        """As :meth:`caller`, and :class:`AdminDenied` (403) unless the caller is a SuperUser."""
        caller = self.caller(request)
        if caller.role != SUPERUSER:
            raise AdminDenied(403, "this needs the SuperUser role")
        return caller
