"""AWS's bucket naming rules, for every way a bucket is created (S3 and the admin API)."""

from __future__ import annotations

import re

from s4d.errors import S3Error

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_IP_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")
#: Name prefixes and suffixes AWS reserves (access points, directory and table buckets...).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str) -> None:
    """AWS's bucket naming rules; ``InvalidBucketName`` otherwise."""
    if (
        not _BUCKET_RE.fullmatch(name)
        or ".." in name
        or _IP_RE.fullmatch(name)
        or name.startswith(_RESERVED_PREFIXES)
        or name.endswith(_RESERVED_SUFFIXES)
        or ".-" in name
        or "-." in name
    ):
        raise S3Error("InvalidBucketName", BucketName=name)
