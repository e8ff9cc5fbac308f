"""Tagging: Put/Get/DeleteObjectTagging and Put/Get/DeleteBucketTagging.

An object's tags live on its version record (one metadata transaction per
change); a bucket's tag set is a bucket configuration document (``tagging``),
stored as JSON pairs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from s4d.engine import (
    MAX_BUCKET_TAGS,
    MAX_OBJECT_TAGS,
    NULL_VERSION,
    BucketsFacade,
    ObjectsFacade,
    check_tags,
)
from s4d.errors import S3Error
from s4d.s3.call import Response, S3Call
from s4d.s3.dispatch import Route, RouteKey, route
from s4d.s3.handlers.bucket import check_body_integrity
from s4d.s3.handlers.common import requested_version, xml_response
from s4d.s3.xml import Node, parse

#: The kind of the bucket configuration document holding a bucket's tags.
BUCKET_TAGS = b"tagging"


def parse_tagging(body: bytes, limit: int) -> dict[str, str]:
    """The tag set of a ``<Tagging><TagSet><Tag>...`` document, checked against AWS's limits."""
    root = parse(body)
    if root.tag != "Tagging":
        raise S3Error("MalformedXML")
    sets = root.findall("TagSet")
    if len(sets) != 1:
        raise S3Error("MalformedXML")
    pairs: list[tuple[str, str]] = []
    for tag in sets[0]:
        if tag.tag != "Tag":
            raise S3Error("MalformedXML")
        keys, values = tag.findall("Key"), tag.findall("Value")
        if len(keys) != 1 or len(values) > 1:
            raise S3Error("MalformedXML")
        value = (values[0].text or "") if values else ""
        pairs.append((keys[0].text or "", value))
    return check_tags(pairs, limit)


def tagging_document(tags: dict[str, str], headers: dict[str, str] | None = None) -> Response:
    """A ``Tagging`` document listing ``tags`` in the order of their keys.

    AWS promises no order for a tag set; sorting by key gives the same answer
    whatever order the tags were set in (s3-tests compares the lists).
    """
    tag_set: list[Node] = [("Tag", [("Key", k), ("Value", v)]) for k, v in sorted(tags.items())]
    return xml_response("Tagging", [("TagSet", tag_set)], headers=headers)


def _version_header(version_id: str) -> dict[str, str]:
    return {} if version_id == NULL_VERSION else {"x-amz-version-id": version_id}


class TaggingHandlers:
    """Object and bucket tagging over the engine's object and bucket facades."""

    def __init__(self, objects: ObjectsFacade, buckets: BucketsFacade) -> None:
        self.objects = objects
        self.buckets = buckets

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        tagging = frozenset({"tagging"})
        obj, bucket = "object", "bucket"
        yield RouteKey("GET", obj, tagging), route("GetObjectTagging", self.get_object_tagging)
        yield RouteKey("PUT", obj, tagging), route("PutObjectTagging", self.put_object_tagging)
        yield (
            RouteKey("DELETE", obj, tagging),
            route("DeleteObjectTagging", self.delete_object_tagging),
        )
        yield RouteKey("GET", bucket, tagging), route("GetBucketTagging", self.get_bucket_tagging)
        yield (
            RouteKey("PUT", bucket, tagging),
            route("PutBucketTagging", self.put_bucket_tagging),
        )
        yield (
            RouteKey("DELETE", bucket, tagging),
            route("DeleteBucketTagging", self.delete_bucket_tagging),
        )

    # -- objects -------------------------------------------------------------------

    async def get_object_tagging(self, call: S3Call) -> Response:
        """GetObjectTagging: the tags of the requested (or current) version."""
        version_id = requested_version(call)
        version = await self.objects.head(call.bucket, call.key, version_id)
        return tagging_document(version.tags, _version_header(version.version_id))

    async def put_object_tagging(self, call: S3Call) -> Response:
        """PutObjectTagging: replace the version's whole tag set."""
        body = call.document()
        check_body_integrity(call, body)
        tags = parse_tagging(body, MAX_OBJECT_TAGS)
        version_id = requested_version(call)
        version = await self.objects.set_tags(call.bucket, call.key, version_id, tags)
        return Response(headers=_version_header(version.version_id))

    async def delete_object_tagging(self, call: S3Call) -> Response:
        """DeleteObjectTagging: 204, whether the version had tags or not."""
        version_id = requested_version(call)
        version = await self.objects.set_tags(call.bucket, call.key, version_id, {})
        return Response(status=204, headers=_version_header(version.version_id))

    # -- buckets -------------------------------------------------------------------

    async def get_bucket_tagging(self, call: S3Call) -> Response:
        """GetBucketTagging (``NoSuchTagSet`` when the bucket has none)."""
        stored = await self.buckets.get_config(call.bucket, BUCKET_TAGS)
        if stored is None:
            raise S3Error("NoSuchTagSet", BucketName=call.bucket)
        return tagging_document({k: v for k, v in json.loads(stored)})

    async def put_bucket_tagging(self, call: S3Call) -> Response:
        """PutBucketTagging: replace the bucket's tag set (up to 50 tags)."""
        body = call.document()
        check_body_integrity(call, body)
        tags = parse_tagging(body, MAX_BUCKET_TAGS)
        document = json.dumps([[k, v] for k, v in tags.items()]).encode("utf-8")
        # an empty set leaves the bucket without tags (GetBucketTagging: NoSuchTagSet)
        await self.buckets.put_config(call.bucket, BUCKET_TAGS, document if tags else None)
        return Response(status=204)

    async def delete_bucket_tagging(self, call: S3Call) -> Response:
        """DeleteBucketTagging: 204, whether the bucket had tags or not."""
        await self.buckets.put_config(call.bucket, BUCKET_TAGS, None)
        return Response(status=204)
