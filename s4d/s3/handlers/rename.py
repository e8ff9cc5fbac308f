"""RenameObject (``PUT /{bucket}/{key}?renameObject``): a key or a whole prefix.

The wire format is AWS's: the new name is the request's key, the old one is
``x-amz-rename-source`` (``bucket/key``, URL-encoded, a leading ``/``
optional), ``If-*`` headers guard the destination and
``x-amz-rename-source-if-*`` the source, ``x-amz-client-token`` makes a retry
idempotent, and success is a 200 with an empty body. A source ending in ``/``
renames the prefix; ``x-amz-rename-merge: true`` (an s4d extension) lets it
merge into a destination prefix that already holds keys. The rules live in
:mod:`s4d.features.rename`.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

from s4d.engine import Rename, RenameConditions, RenameFacade
from s4d.errors import S3Error
from s4d.s3.call import Response, S3Call
from s4d.s3.dates import parse_http_date
from s4d.s3.dispatch import Route, RouteKey, route
from s4d.s3.objectlock import bypass_governance

#: s4d's extension header: merge a prefix into an existing destination prefix.
MERGE_HEADER = "x-amz-rename-merge"


def parse_rename_source(header: str | None) -> tuple[str, str]:
    """``bucket/key`` (URL-encoded, leading slash optional) as (bucket, key)."""
    if not header:
        raise S3Error(
            "InvalidArgument",
            "RenameObject needs the x-amz-rename-source header (bucket/key).",
            ArgumentName="x-amz-rename-source",
        )
    try:
        # Headers arrive as latin-1 text; raw UTF-8 (not URL-encoded) is taken too.
        raw = header.encode("latin-1").decode("utf-8")
        text = unquote(raw, errors="strict").lstrip("/")
    except UnicodeError:
        raise S3Error(
            "InvalidArgument",
            "x-amz-rename-source is not valid URL-encoded UTF-8.",
            ArgumentName="x-amz-rename-source",
        ) from None
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "x-amz-rename-source must name the source bucket and key: bucket/key.",
            ArgumentName="x-amz-rename-source",
        )
    return bucket, key


def _flag(call: S3Call, name: str) -> bool:
    raw = call.header(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise S3Error("InvalidArgument", f"{name} must be true or false.", ArgumentName=name)
    return value == "true"


def _date(call: S3Call, name: str) -> int | None:
    raw = call.header(name)
    return parse_http_date(raw) if raw else None


def rename_conditions(call: S3Call) -> RenameConditions:
    """The destination's and the source's preconditions."""
    src = "x-amz-rename-source-"
    return RenameConditions(
        if_match=call.header("if-match"),
        if_none_match=call.header("if-none-match"),
        if_modified_since=_date(call, "if-modified-since"),
        if_unmodified_since=_date(call, "if-unmodified-since"),
        source_if_match=call.header(src + "if-match"),
        source_if_none_match=call.header(src + "if-none-match"),
        source_if_modified_since=_date(call, src + "if-modified-since"),
        source_if_unmodified_since=_date(call, src + "if-unmodified-since"),
    )


class RenameHandlers:
    """RenameObject over the engine's rename facade."""

    def __init__(self, renames: RenameFacade) -> None:
        self.renames = renames

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        yield (
            RouteKey("PUT", "object", frozenset({"renameObject"})),
            route("RenameObject", self.rename_object),
        )

    async def rename_object(self, call: S3Call) -> Response:
        """RenameObject: 200 with an empty body once the new names are durable."""
        source_bucket, source = parse_rename_source(call.header("x-amz-rename-source"))
        request = Rename(
            bucket=call.bucket,
            destination=call.key,
            source_bucket=source_bucket,
            source=source,
            merge=_flag(call, MERGE_HEADER),
            conditions=rename_conditions(call),
            client_token=call.header("x-amz-client-token"),
            bypass_governance=bypass_governance(call.headers),
        )
        await self.renames.rename(request)
        return Response()
