"""Rendering :class:`~s4d.errors.S3Error` as AWS's XML error document."""

from __future__ import annotations

from s4d.errors import S3Error
from s4d.s3.xml import Node, render


def error_body(error: S3Error, resource: bytes, request_id: str, host_id: str) -> bytes:
    """The XML body of an error response to the request for ``resource`` (its raw path)."""
    children: list[Node] = [("Code", error.code), ("Message", error.message)]
    for name, value in error.extra.items():
        children.append((name, value))
    children.append(("Resource", resource.decode("utf-8", "replace")))
    children.append(("RequestId", request_id))
    children.append(("HostId", host_id))
    return render("Error", children, namespace=None)
