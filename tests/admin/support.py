"""An admin API client over the in-memory server (:class:`tests.s3.memory.MemoryS3`).

Requests go through the whole seam as raw HTTP (channel, front end, ops app,
identity API, engine, store), unsigned, with ``Authorization: Bearer`` when a
token is given; answers are decoded as JSON (and must be JSON, or empty for 204).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from tests.s3.memory import ROOT_NAME, ROOT_PASSWORD, MemoryResponse, MemoryS3


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
