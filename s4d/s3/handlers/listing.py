"""ListObjects V1 and V2."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from s4d.errors import S3Error
from s4d.s3.dates import iso8601
from s4d.s3.dispatch import Response
from s4d.s3.handlers.common import int_param, owner, url_encoder, xml_response
from s4d.s3.xml import Raw, escape
from s4d.store.model import ListResult

_TOKEN_PREFIX = b"s4d1:"


def encode_token(last: str) -> str:
    """An opaque continuation token for a page that ended at ``last``."""
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + last.encode("utf-8")).decode()


def decode_token(token: str) -> str:
    """The position a continuation token stands for."""
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
        if not raw.startswith(_TOKEN_PREFIX):
            raise ValueError
        return raw[len(_TOKEN_PREFIX) :].decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
        ) from None


def _contents(req: Any, result: ListResult, enc: Any, with_owner: bool) -> list[Any]:
    """The Contents and CommonPrefixes elements, rendered in one pass."""
    out: list[str] = []
    owner_xml = ""
    if with_owner:
        oid, name = (v for _, v in owner(req))
        owner_xml = f"<Owner><ID>{oid}</ID><DisplayName>{name}</DisplayName></Owner>"
    dates: dict[int, str] = {}
    for entry in result.entries:
        v = entry.version
        ms = v.mtime_ns // 1_000_000
        date = dates.get(ms)
        if date is None:
            date = dates[ms] = iso8601(v.mtime_ns)
        checksum = (
            f"<ChecksumAlgorithm>{next(iter(v.checksums))}</ChecksumAlgorithm>"
            if v.checksums
            else ""
        )
        out.append(
            f"<Contents><Key>{escape(enc(entry.key))}</Key><LastModified>{date}</LastModified>"
            f"<ETag>&quot;{escape(v.etag)}&quot;</ETag><Size>{v.size}</Size>{checksum}"
            f"{owner_xml}<StorageClass>{v.storage_class}</StorageClass></Contents>"
        )
    for prefix in result.common_prefixes:
        out.append(f"<CommonPrefixes><Prefix>{escape(enc(prefix))}</Prefix></CommonPrefixes>")
    return [("", Raw("".join(out)))]


async def list_objects_v1(req: Any) -> Response:
    """ListObjects with marker pagination."""
    enc = url_encoder(req)
    prefix = req.params.get("prefix", "")
    delimiter = req.params.get("delimiter") or None
    marker = req.params.get("marker") or None
    max_keys = int_param(req, "max-keys", 1000, 0, 1000)
    result = await req.front.engine.list_objects(
        req.target.bucket, prefix, delimiter, marker, max_keys
    )
    children: list[Any] = [
        ("Name", req.target.bucket),
        ("Prefix", enc(prefix)),
        ("Marker", enc(marker or "")),
        ("MaxKeys", max_keys),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("IsTruncated", result.is_truncated),
    ]
    if result.is_truncated and delimiter and result.last:
        children.append(("NextMarker", enc(result.last)))
    if "encoding-type" in req.params:
        children.append(("EncodingType", "url"))
    children += _contents(req, result, enc, True)
    return xml_response("ListBucketResult", children)


async def list_objects_v2(req: Any) -> Response:
    """ListObjectsV2 with opaque continuation tokens."""
    enc = url_encoder(req)
    prefix = req.params.get("prefix", "")
    delimiter = req.params.get("delimiter") or None
    token = req.params.get("continuation-token")
    start_after = req.params.get("start-after") or None
    max_keys = int_param(req, "max-keys", 1000, 0, 1000)
    after = decode_token(token) if token else start_after
    fetch_owner = req.params.get("fetch-owner", "false").lower() == "true"
    result = await req.front.engine.list_objects(
        req.target.bucket, prefix, delimiter, after, max_keys
    )
    children: list[Any] = [
        ("Name", req.target.bucket),
        ("Prefix", enc(prefix)),
        ("MaxKeys", max_keys),
        ("KeyCount", len(result.entries) + len(result.common_prefixes)),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("IsTruncated", result.is_truncated),
        ("ContinuationToken", token),
        ("StartAfter", enc(start_after) if start_after else None),
    ]
    if result.is_truncated and result.last:
        children.append(("NextContinuationToken", encode_token(result.last)))
    if "encoding-type" in req.params:
        children.append(("EncodingType", "url"))
    children += _contents(req, result, enc, fetch_owner)
    return xml_response("ListBucketResult", children)
