"""Rendering :class:`~s4d.errors.S3Error` as AWS's XML error document."""

from __future__ import annotations

from typing import Any

from s4d.errors import S3Error
from s4d.s3.xml import render


def error_body(error: S3Error, request: Any) -> bytes:
    """The XML body of an error response for ``request``."""
    children: list[tuple[str, Any]] = [("Code", error.code), ("Message", error.message)]
    for name, value in error.extra.items():
        children.append((name, value))
    resource = getattr(request, "raw_path", None)
    if isinstance(resource, bytes):
        children.append(("Resource", resource.decode("utf-8", "replace")))
    children.append(("RequestId", getattr(request, "request_id", "")))
    children.append(("HostId", getattr(request, "host_id", "")))
    return render("Error", children, namespace=None)
