"""Which bucket and key a request names: path style and virtual-host style."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from s4d.engine import check_bucket_name
from s4d.errors import S3Error

__all__ = ["Target", "check_bucket_name", "decode_path", "resolve"]


@dataclass(frozen=True)
class Target:
    """The bucket and key of a request (either may be empty)."""

    bucket: str
    key: str
    virtual_host: bool = False


def decode_path(raw: bytes) -> str:
    """Percent-decode a raw path into text; ``InvalidURI`` if it is not UTF-8 or holds a NUL.

    A NUL can be neither a bucket name nor part of a key: XML 1.0 cannot carry it.
    """
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI") from None  # S3's text: "Couldn't parse the specified URI."
    if "\0" in path:
        raise S3Error("InvalidURI", "The path holds a NUL character.")
    return path


def resolve(raw_path: bytes, host: str | None, domain: str | None) -> Target:
    """Find the bucket and key from the raw request path and ``Host`` header.

    With ``domain`` set, ``Host: <bucket>.<domain>`` selects the bucket and the
    whole path is the key. Otherwise the first path segment is the bucket.
    """
    path = decode_path(raw_path)
    if not path.startswith("/"):
        path = "/" + path
    if domain and host:
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        hostname = hostname.lower()
        suffix = "." + domain.lower()
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            return Target(hostname[: -len(suffix)], path[1:], True)
    bucket, _, key = path[1:].partition("/")
    return Target(bucket, key)
