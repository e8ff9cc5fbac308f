"""The admin API for identity: log in, users, and their access keys (S4's shapes).

==========================================================  ======================================
route                                                       answer
==========================================================  ======================================
``POST /api/admin/login`` ``{username, password}``          ``{token, expires_at}``
``GET /api/admin/users``                                    ``{users: [User]}``
``POST /api/admin/users`` ``{username, password, role}``    ``User``
``GET /api/admin/users/{id}``                               ``User``
``PUT /api/admin/users/{id}`` ``{role?, is_active?, password?}``  ``User``
``DELETE /api/admin/users/{id}``                            204
``POST /api/admin/users/{id}/credentials[?keep=true]``      ``{access_key, secret_key}``
``DELETE /api/admin/users/{id}/credentials``                204
``GET /api/admin/users/{id}/credentials``                   ``{credentials: [Key]}`` (beyond S4)
``DELETE /api/admin/users/{id}/credentials/{access_key}``   204 (beyond S4)
==========================================================  ======================================

``User`` is ``{id, username, role, access_key, created_at, updated_at,
is_active}`` (ISO 8601 dates; ``access_key``: the newest key, or null) plus,
beyond S4, ``access_keys`` (every key id) and ``is_root``. A new key's secret is
in the answer that creates it and never again. As in S4, a POST of credentials
replaces the user's stored keys; ``?keep=true`` adds one beside them instead
(rotation: add, move clients, revoke the old one). Every route but login needs
a SuperUser's token (:class:`~s4d.admin.guard.AdminGuard`); logins are
throttled (:class:`~s4d.admin.throttle.LoginThrottle`).

Every store access goes through the engine's :class:`~s4d.engine.UsersFacade`:
reads in worker threads, changes through the group committer, password
hashing in worker threads.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from klein import Klein
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from s4d.admin.guard import AdminCaller, AdminGuard
from s4d.admin.jsonapi import (
    ApiError,
    Query,
    json_error,
    json_response,
    no_content,
    note_caller,
    read_json,
)
from s4d.admin.throttle import LoginThrottle
from s4d.auth.tokens import TokenIssuer
from s4d.engine import IdentityError, KeyInfo, UserInfo, UsersFacade

log = Logger()


def iso_time(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 in UTC (``2026-11-29T12:00:00.123456Z``)."""
    when = datetime.fromtimestamp(ns / 1e9, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_json(user: UserInfo) -> dict[str, Any]:
    """S4's ``UserResponse``, plus ``access_keys`` and ``is_root``."""
    return {
        "id": user.user_id,
        "username": user.username,
        "role": user.role,
        "access_key": user.access_key,
        "created_at": iso_time(user.created_ns),
        "updated_at": iso_time(user.updated_ns),
        "is_active": user.active,
        "access_keys": [k.access_key for k in user.keys],
        "is_root": user.is_root,
    }


def key_json(key: KeyInfo) -> dict[str, Any]:
    """One access key, without its secret."""
    return {
        "access_key": key.access_key,
        "created_at": iso_time(key.created_ns) if key.created_ns else None,
        "configured": key.configured,
    }


class IdentityApi:
    """Login, users and keys: a surface of the ops app (:class:`s4d.admin.app.OpsApp`).

    :param users: the engine's users facade.
    :param guard: decides who calls (SuperUsers only here).
    :param issuer: signs tokens at login.
    :param throttle: slows down password guessing.
    """

    app = Klein()
    #: the paths this surface owns (and every path below them)
    prefixes: tuple[bytes, ...] = (b"/api/admin/login", b"/api/admin/users")

    def __init__(
        self,
        users: UsersFacade,
        guard: AdminGuard,
        issuer: TokenIssuer,
        throttle: LoginThrottle,
    ) -> None:
        self.users = users
        self.guard = guard
        self.issuer = issuer
        self.throttle = throttle

    def resource(self) -> IResource:
        """The Klein resource serving these routes."""
        served: IResource = self.app.resource()
        return served

    def _superuser(self, request: IRequest) -> AdminCaller:
        """The calling SuperUser (401/403 otherwise), named in the access log."""
        return note_caller(request, self.guard.superuser(request))

    # -- errors -------------------------------------------------------------------------------

    @app.handle_errors(IdentityError)
    def refused(self: Any, request: IRequest, failure: Failure) -> bytes:
        """A rule about users or keys: 404 for what does not exist, else 400."""
        error = failure.value
        assert isinstance(error, IdentityError)
        return json_response(
            request, {"error": error.message}, 404 if error.kind == "not_found" else 400
        )

    app.handle_errors(Exception)(json_error)

    # -- logging in ---------------------------------------------------------------------------

    @app.route("/api/admin/login", methods=["POST"])
    async def login(self, request: IRequest) -> bytes:
        """``{username, password}`` -> ``{token, expires_at}``; 401 for wrong credentials."""
        Query(request).done()
        body = read_json(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, "username and password are required")
        address = _address(request)
        wait = self.throttle.wait(username, address)
        if wait > 0:
            seconds = math.ceil(wait)
            request.responseHeaders.setRawHeaders(b"Retry-After", [str(seconds).encode()])
            raise ApiError(429, f"too many failed logins: try again in {seconds} s")
        user = await self.users.check_password(username, password)
        if user is None:
            self.throttle.failed(username, address)
            log.info("Failed admin login for {username} from {address}", username=username,
                     address=address)  # fmt: skip
            raise ApiError(401, "invalid username or password")
        self.throttle.succeeded(username, address)
        note_caller(request, AdminCaller(user.user_id, user.username, user.role))
        claims = self.issuer.issue(user.user_id, user.username, user.role, user.password_version)
        expires = datetime.fromtimestamp(claims.expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return json_response(request, {"token": self.issuer.encode(claims), "expires_at": expires})

    # -- users --------------------------------------------------------------------------------

    @app.route("/api/admin/users", methods=["GET"])
    async def list_users(self, request: IRequest) -> bytes:
        """Every user."""
        self._superuser(request)
        Query(request).done()
        users = await self.users.all()
        return json_response(request, {"users": [user_json(u) for u in users]})

    @app.route("/api/admin/users", methods=["POST"])
    async def create_user(self, request: IRequest) -> bytes:
        """A new user (no keys yet)."""
        caller = self._superuser(request)
        Query(request).done()
        body = read_json(request)
        user = await self.users.create(body.get("username"), body.get("password"), body.get("role"))
        log.info("{caller} created user {username} ({role})", caller=caller.username,
                 username=user.username, role=user.role)  # fmt: skip
        return json_response(request, user_json(user))

    @app.route("/api/admin/users/<user_id>", methods=["GET"])
    async def get_user(self, request: IRequest, user_id: str) -> bytes:
        """One user."""
        self._superuser(request)
        Query(request).done()
        return json_response(request, user_json(await self.users.get(user_id)))

    @app.route("/api/admin/users/<user_id>", methods=["PUT"])
    async def update_user(self, request: IRequest, user_id: str) -> bytes:
        """Change role, active state or password."""
        caller = self._superuser(request)
        Query(request).done()
        body = read_json(request)
        user = await self.users.update(
            user_id, body.get("role"), body.get("is_active"), body.get("password")
        )
        changed = sorted(k for k in ("role", "is_active", "password") if body.get(k) is not None)
        log.info("{caller} changed {what} of user {username}", caller=caller.username,
                 what=", ".join(changed) or "nothing", username=user.username)  # fmt: skip
        return json_response(request, user_json(user))

    @app.route("/api/admin/users/<user_id>", methods=["DELETE"])
    async def delete_user(self, request: IRequest, user_id: str) -> bytes:
        """Delete a user and its keys."""
        caller = self._superuser(request)
        Query(request).done()
        await self.users.delete(user_id)
        log.info("{caller} deleted user {user_id}", caller=caller.username, user_id=user_id)
        return no_content(request)

    # -- keys ---------------------------------------------------------------------------------

    @app.route("/api/admin/users/<user_id>/credentials", methods=["GET"])
    async def list_keys(self, request: IRequest, user_id: str) -> bytes:
        """A user's access keys (ids and dates, never secrets)."""
        self._superuser(request)
        Query(request).done()
        user = await self.users.get(user_id)
        return json_response(request, {"credentials": [key_json(k) for k in user.keys]})

    @app.route("/api/admin/users/<user_id>/credentials", methods=["POST"])
    async def new_key(self, request: IRequest, user_id: str) -> bytes:
        """A new key; its secret is shown this once."""
        caller = self._superuser(request)
        query = Query(request)
        keep = query.flag("keep")
        query.done()
        made = await self.users.new_key(user_id, replace=not keep)
        log.info("{caller} made access key {ak} for user {user_id}", caller=caller.username,
                 ak=made.access_key, user_id=user_id)  # fmt: skip
        return json_response(
            request, {"access_key": made.access_key, "secret_key": made.secret_key}
        )

    @app.route("/api/admin/users/<user_id>/credentials", methods=["DELETE"])
    async def revoke_keys(self, request: IRequest, user_id: str) -> bytes:
        """Revoke every stored key of a user."""
        caller = self._superuser(request)
        Query(request).done()
        count = await self.users.revoke(user_id)
        log.info("{caller} revoked {n} key(s) of user {user_id}", caller=caller.username,
                 n=count, user_id=user_id)  # fmt: skip
        return no_content(request)

    @app.route("/api/admin/users/<user_id>/credentials/<access_key>", methods=["DELETE"])
    async def revoke_key(self, request: IRequest, user_id: str, access_key: str) -> bytes:
        """Revoke one key of a user."""
        caller = self._superuser(request)
        Query(request).done()
        await self.users.revoke(user_id, access_key)
        log.info("{caller} revoked access key {ak} of user {user_id}", caller=caller.username,
                 ak=access_key, user_id=user_id)  # fmt: skip
        return no_content(request)


def _address(request: IRequest) -> str:
    client = request.getClientAddress()  # type: ignore[no-untyped-call]
    return str(getattr(client, "host", "") or "unknown")
