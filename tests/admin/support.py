"""The ops surfaces in memory: the real site, ops app, engine and store, and a test guard.

:class:`OpsServer` is :class:`~tests.s3.memory.MemoryS3` with the ops app the
service builds (:func:`s4d.service.ops_app`: health probes, admin data routes,
``/metrics``) and the service's per-process figures and access log
(:class:`s4d.service.OpsTelemetry`) as the site's observer. The only stand-in
is the :class:`~s4d.admin.guard.AdminGuard`: :class:`TokenGuard` implements
the protocol over a fixed table of bearer tokens, so the routes can be tested
before (and independently of) the JWT guard of the users.

:class:`AdminClient` calls the identity API of a plain :class:`MemoryS3`
(whose ops app mounts it with the real JWT guard) with tokens from logging in.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from twisted.web.iweb import IRequest

from s4d import config as s4config
from s4d.admin.guard import AdminCaller, AdminDenied
from s4d.service import OpsTelemetry, ops_app
from tests.s3.memory import ROOT_NAME, ROOT_PASSWORD, MemoryResponse, MemoryS3

ROOT = "root-token"
READER = "reader-token"
WRITER = "writer-token"
INACTIVE = "inactive-token"


class TokenGuard:
    """An AdminGuard over a table of bearer tokens (a test double of the protocol)."""

    def __init__(self, callers: dict[str, AdminCaller], inactive: frozenset[str]) -> None:
        self.callers = callers
        self.inactive = inactive

    def caller(self, request: IRequest) -> AdminCaller:
        raw = request.getHeader(b"authorization")  # type: ignore[no-untyped-call]
        if not raw or not raw.startswith(b"Bearer "):
            raise AdminDenied(401, "a bearer token is needed")
        token = raw[7:].decode("latin-1")
        if token in self.inactive:
            raise AdminDenied(401, "the user is inactive")
        found = self.callers.get(token)
        if found is None:
            raise AdminDenied(401, "the token is not valid")
        return found

    def superuser(self, request: IRequest) -> AdminCaller:
        caller = self.caller(request)
        if caller.role != "SuperUser":
            raise AdminDenied(403, "this needs the SuperUser role")
        return caller


def token_guard() -> TokenGuard:
    """Root (SuperUser), a Reader, a Writer, and an inactive user's token."""
    return TokenGuard(
        {
            ROOT: AdminCaller("1", "root", "SuperUser"),
            READER: AdminCaller("2", "reader", "Reader"),
            WRITER: AdminCaller("3", "writer", "Writer"),
            INACTIVE: AdminCaller("4", "gone", "SuperUser"),
        },
        frozenset({INACTIVE}),
    )


class OpsServer:
    """An in-memory server with the ops app as the service builds it (see the module docstring).

    :param env: S4_* settings (the data directory and keys are filled in).
    """

    def __init__(self, env: dict[str, str] | None = None, segment_size: int = 1 << 30) -> None:
        self.guard = token_guard()
        self.env = dict(env or {})
        self.s3 = MemoryS3(ops=self._ops, segment_size=segment_size)
        self.s3.site.observer = self.telemetry.requests
        self.telemetry.board.connections = lambda: len(self.s3.site.channels)

    def _ops(self, memory: MemoryS3) -> Any:
        env = {
            "S4_DATA_DIR": memory.data_dir,
            "S4_ACCESS_KEY_ID": "AKIDMEMORY",
            "S4_SECRET_ACCESS_KEY": "memory/secret+key",
            "S4_WORKERS": "1",  # one process in memory (the default is one per core)
            **self.env,
        }
        self.config = s4config.build(env=env)
        self.telemetry = OpsTelemetry(self.config, memory.engine, memory.clock)
        self.app = ops_app(self.config, memory.engine, memory.clock, self.telemetry, self.guard)
        return self.app.resource()

    def close(self) -> None:
        """Close the store and remove its directory."""
        self.telemetry.stop()
        self.s3.close()

    def call(
        self,
        method: str,
        target: str,
        token: str | None = ROOT,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> MemoryResponse:
        """One admin API request (unsigned, with ``Authorization: Bearer <token>``)."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["authorization"] = f"Bearer {token}"
        raw = b""
        if body is not None:
            raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
            all_headers["content-type"] = "application/json"
        return self.s3.request(method, target, raw, all_headers, sign=False)

    def json(
        self, method: str, target: str, token: str | None = ROOT, body: Any = None
    ) -> tuple[int, Any]:
        """Status and decoded JSON body of one admin API request (None for an empty body)."""
        response = self.call(method, target, token, body)
        content_type = response.header("content-type") or ""
        if response.body or response.status != 204:
            assert content_type == "application/json", (response.status, response.body)
        return response.status, json.loads(response.body) if response.body else None


# -- the identity API (login, users, keys) with real tokens --------------------------------


class Answer(NamedTuple):
    """A decoded admin API answer."""

    status: int
    body: Any
    response: MemoryResponse


class AdminClient:
    """Calls the admin API of one in-memory server."""

    def __init__(self, server: MemoryS3) -> None:
        self.server = server

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request; its status and JSON body (None when empty)."""
        sent = {"content-type": "application/json"}
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.server.request(method, path, data, headers=sent, sign=False)
        if response.body:
            assert response.header("content-type") == "application/json", response
            decoded = json.loads(response.body)
        else:
            decoded = None
        return Answer(response.status, decoded, response)

    def login(self, username: str = ROOT_NAME, password: str = ROOT_PASSWORD) -> str:
        """A token (the login must succeed)."""
        answer = self.call("POST", "/api/admin/login", {"username": username, "password": password})
        assert answer.status == 200, answer
        token: str = answer.body["token"]
        return token

    def create_user(self, token: str, username: str, role: str, password: str = "password1") -> str:
        """A new user's id."""
        answer = self.call(
            "POST",
            "/api/admin/users",
            {"username": username, "password": password, "role": role},
            token,
        )
        assert answer.status == 200, answer
        user_id: str = answer.body["id"]
        return user_id

    def new_key(self, token: str, user_id: str, keep: bool = False) -> tuple[str, str]:
        """A new (access key, secret key) for a user."""
        query = "?keep=true" if keep else ""
        answer = self.call("POST", f"/api/admin/users/{user_id}/credentials{query}", token=token)
        assert answer.status == 200, answer
        return answer.body["access_key"], answer.body["secret_key"]
