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

from typing import Any
from urllib.parse import unquote

from s4d.errors import S3Error
from s4d.features.rename import Rename, RenameConditions
from s4d.s3.dates import parse_http_date
from s4d.s3.dispatch import DispatchTable, Response

#: s4d's extension header: merge a prefix into an existing destination prefix.
MERGE_HEADER = "x-amz-rename-merge"


def register(table: DispatchTable) -> None:
    """Add RenameObject to ``table``."""
    table.add("PUT", "object", "renameObject")(rename_object)


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


def _flag(req: Any, name: str) -> bool:
    raw = req.header(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise S3Error("InvalidArgument", f"{name} must be true or false.", ArgumentName=name)
    return value == "true"


def _date(req: Any, name: str) -> int | None:
    raw = req.header(name)
    return parse_http_date(raw) if raw else None


def rename_conditions(req: Any) -> RenameConditions:
    """The destination's and the source's preconditions."""
    src = "x-amz-rename-source-"
    return RenameConditions(
        if_match=req.header("if-match"),
        if_none_match=req.header("if-none-match"),
        if_modified_since=_date(req, "if-modified-since"),
        if_unmodified_since=_date(req, "if-unmodified-since"),
        source_if_match=req.header(src + "if-match"),
        source_if_none_match=req.header(src + "if-none-match"),
        source_if_modified_since=_date(req, src + "if-modified-since"),
        source_if_unmodified_since=_date(req, src + "if-unmodified-since"),
    )


async def rename_object(req: Any) -> Response:
    """RenameObject: 200 with an empty body once the new names are durable."""
    source_bucket, source = parse_rename_source(req.header("x-amz-rename-source"))
    request = Rename(
        bucket=req.target.bucket,
        destination=req.target.key,
        source_bucket=source_bucket,
        source=source,
        merge=_flag(req, MERGE_HEADER),
        conditions=rename_conditions(req),
        client_token=req.header("x-amz-client-token"),
    )
    await req.front.engine.rename(request)
    return Response()
