"""Shared helpers for the auth tests: a credential table and real botocore requests.

:func:`captured` runs a real boto3 client call and stops it just before the
request would go on the wire (a ``before-send`` handler raises), so tests see
exactly the method, URL, headers and body botocore would have sent, without
any network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.config import Config

from s4d.auth.request import SignedRequest

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class Credentials:
    """A :class:`~s4d.auth.request.CredentialSource` over a dict."""

    def __init__(self, table: dict[str, str] | None = None) -> None:
        self.table = {ACCESS_KEY: SECRET_KEY} if table is None else table

    def secret_for(self, access_key_id: str) -> str | None:
        return self.table.get(access_key_id)


class _Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


def _stop(request: AWSPreparedRequest, **kwargs: Any) -> None:
    raise _Captured(request)


def client(
    endpoint: str = "http://127.0.0.1:9000",
    *,
    signature_version: str = "s3v4",
    addressing_style: str = "path",
    region: str = "us-east-1",
    access_key: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
) -> Any:
    """A boto3 S3 client whose requests are captured, never sent."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(
            signature_version=signature_version,
            s3={"addressing_style": addressing_style},
            retries={"max_attempts": 1},
        ),
    )
    s3.meta.events.register("before-send.s3", _stop)
    return s3


def captured(call: Callable[..., Any], **params: Any) -> AWSPreparedRequest:
    """The prepared request of ``call(**params)`` on a :func:`client`."""
    try:
        call(**params)
    except _Captured as stop:
        return stop.request
    raise AssertionError("the request was not captured")


def body_of(request: AWSPreparedRequest | AWSRequest) -> bytes:
    """The body bytes of a prepared request."""
    body = request.body
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return body.read()


def from_url(method: str, url: str, headers: Any = ()) -> SignedRequest:
    """A :class:`SignedRequest` for ``url`` as an HTTP client would send it.

    ``Host`` is taken from the URL unless ``headers`` has one.
    """
    parts = urlsplit(url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    items: list[tuple[str | bytes, str | bytes]] = []
    names = set()
    for name, value in headers.items() if hasattr(headers, "items") else headers:
        items.append((name, value))
        names.add(name.lower() if isinstance(name, str) else name.decode().lower())
    if "host" not in names:
        items.append(("host", parts.netloc))
    return SignedRequest.from_wire(method, target.encode("ascii"), items)


def from_botocore(request: AWSPreparedRequest | AWSRequest) -> SignedRequest:
    """A :class:`SignedRequest` for a botocore request."""
    return from_url(request.method, request.url, list(request.headers.items()))
