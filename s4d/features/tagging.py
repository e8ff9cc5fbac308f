"""Tag sets of objects and buckets: AWS's limits, and changing an object version's tags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from s4d.errors import S3Error
from s4d.features.versions import ACL_EXTRA, find_version
from s4d.store.model import ObjectVersion
from s4d.store.txn import MetaTxn

#: At most this many tags on one object version, and on one bucket.
MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256


def check_tags(pairs: Iterable[tuple[str, str]], limit: int = MAX_OBJECT_TAGS) -> dict[str, str]:
    """The tag set ``pairs`` as a dict, or ``InvalidTag`` with AWS's message for the limit hit."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid")
        if len(value) > MAX_VALUE_CHARS:
            raise S3Error("InvalidTag", "The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:")
        if key in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        tags[key] = value
    if len(tags) > limit:
        kind = "Object tags" if limit == MAX_OBJECT_TAGS else "Bucket tag count"
        raise S3Error("InvalidTag", f"{kind} cannot be greater than {limit}")
    return tags


def query_tags(query: str | None) -> dict[str, str]:
    """The tags of an ``x-amz-tagging`` header (``k1=v1&k2=v2``, URL-encoded), checked."""
    if not query:
        return {}
    return check_tags(parse_qsl(query, keep_blank_values=True))


def set_object_tags(
    t: MetaTxn, bucket_name: str, key: str, version_id: str | None, tags: dict[str, str]
) -> ObjectVersion:
    """Replace the tags of the requested (or current) version; the version, as stored."""
    bucket = t.buckets.require(bucket_name)
    object_id, version = find_version(t, bucket, key, version_id)
    version.tags = dict(tags)
    t.versions.put(object_id, version)
    return version


def set_object_acl(
    t: MetaTxn,
    bucket_name: str,
    key: str,
    version_id: str | None,
    acl: dict[str, Any],
) -> ObjectVersion:
    """Replace the ACL of the requested (or current) version; the version, as stored."""
    bucket = t.buckets.require(bucket_name)
    object_id, version = find_version(t, bucket, key, version_id)
    version.extra = {**version.extra, ACL_EXTRA: dict(acl)}
    t.versions.put(object_id, version)
    return version
