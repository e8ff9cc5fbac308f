"""Signed raw HTTP requests for tests that need exact control of the wire."""

from __future__ import annotations

import hashlib
import http.client
import socket
from datetime import UTC, datetime
from urllib.parse import quote

from s4d.auth.sigv4 import sign_request
from tests.s3.server import ACCESS_KEY, SECRET_KEY


def signed_headers(
    host: str,
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    payload_hash: str | None = None,
    body: bytes = b"",
    secret: str = SECRET_KEY,
    access_key: str = ACCESS_KEY,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers (including Authorization) for a SigV4-signed request."""
    hdrs = {"host": host}
    hdrs.update(headers or {})
    if payload_hash is None:
        payload_hash = hashlib.sha256(body).hexdigest()
    hdrs.update(
        sign_request(
            method,
            path,
            query or [],
            hdrs,
            access_key,
            secret,
            now=now or datetime.now(UTC),
            payload_hash=payload_hash,
        )
    )
    return hdrs


def request(
    port: int,
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    sign: bool = True,
    host: str | None = None,
    **sign_options: object,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request; return (status, lower-case headers, body)."""
    host = host or f"127.0.0.1:{port}"
    hdrs = dict(headers or {})
    if sign:
        hdrs = signed_headers(host, method, path, query, hdrs, body=body, **sign_options)  # type: ignore[arg-type]
    else:
        hdrs.setdefault("host", host)
    target = path
    if query:
        target += "?" + "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" if v != "" else quote(k, safe="-_.~")
            for k, v in query
        )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in hdrs.items():
            conn.putheader(name, value)
        if body and "content-length" not in {k.lower() for k in hdrs}:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def send_raw(port: int, head: bytes, body_after_head: bytes = b"", wait: float = 2.0) -> bytes:
    """Write raw bytes, read until the server closes or ``wait`` seconds pass."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        sock.sendall(head)
        if body_after_head:
            try:
                sock.sendall(body_after_head)
            except OSError:
                pass
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (TimeoutError, OSError):
            pass
        return b"".join(chunks)
    finally:
        sock.close()


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split raw bytes from the server into (status, lower-case headers, body) triples.

    Interim ``100 Continue`` responses are included; a response without a
    Content-Length takes the rest of the data. A body that would start with a
    status line belongs to a HEAD answer, which has none.
    """
    out: list[tuple[int, dict[str, str], bytes]] = []
    while data.startswith(b"HTTP/"):
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head, data = data[:end].decode("latin-1"), data[end + 4 :]
        status_line, *lines = head.split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100 or status == 204 or status == 304:
            size = 0
        elif "content-length" in headers:
            size = int(headers["content-length"])
            if data[:size].startswith(b"HTTP/1."):
                size = 0
        else:
            size = len(data)
        out.append((status, headers, data[:size]))
        data = data[size:]
    return out
