"""CORS: Put/Get/DeleteBucketCors, preflight requests, and the headers of actual requests.

A preflight (``OPTIONS`` on a bucket or object) is answered from the bucket's
rules without authentication, as browsers send it without credentials (and,
for a presigned URL, with a query signed for another method): 200 with the
``Access-Control-*`` headers of the first matching rule; ``400 BadRequest``
without ``Origin``; ``403 AccessForbidden`` for a bucket without rules (or
without existence); ``400 BadRequest`` without a valid
``Access-Control-Request-Method``; ``403 AccessForbidden`` when no rule matches.

An actual request that carries ``Origin`` gets ``Access-Control-Allow-Origin``
and its companions when a rule allows its origin and method, whether it
succeeds or fails (:meth:`CorsHandlers.actual`, called by the S3 resource for
every answer). Rules are read through the engine's per-process cache, so a
request without ``Origin`` costs nothing and one with it a dictionary look-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element

from twisted.internet.defer import Deferred

from s4d.engine import (
    CORS,
    BucketsFacade,
    CorsRule,
    actual_headers,
    check_cors_rules,
    decode_cors,
    encode_cors,
    preflight_headers,
)
from s4d.errors import S3Error
from s4d.s3.call import Response, S3Call
from s4d.s3.dispatch import Route, RouteKey, route
from s4d.s3.handlers.bucket import check_body_integrity
from s4d.s3.handlers.common import xml_response
from s4d.s3.xml import Node, parse

#: The largest PutBucketCors document (AWS: 64 KB).
MAX_CORS_XML = 64 << 10
_RULE_CHILDREN = frozenset(
    {"ID", "AllowedMethod", "AllowedOrigin", "AllowedHeader", "ExposeHeader", "MaxAgeSeconds"}
)
#: The methods a preflight may ask about.
PREFLIGHT_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD"})


def _rule(element: Element) -> CorsRule:
    found: dict[str, list[str]] = {}
    for child in element:
        if child.tag not in _RULE_CHILDREN:
            raise S3Error("MalformedXML")
        found.setdefault(child.tag, []).append((child.text or "").strip())
    if len(found.get("ID", [])) > 1 or len(found.get("MaxAgeSeconds", [])) > 1:
        raise S3Error("MalformedXML")
    max_age = None
    if "MaxAgeSeconds" in found:
        try:
            max_age = int(found["MaxAgeSeconds"][0])
        except ValueError:
            raise S3Error("MalformedXML") from None
    return CorsRule(
        allowed_methods=tuple(found.get("AllowedMethod", [])),
        allowed_origins=tuple(found.get("AllowedOrigin", [])),
        allowed_headers=tuple(found.get("AllowedHeader", [])),
        expose_headers=tuple(found.get("ExposeHeader", [])),
        max_age_seconds=max_age,
        rule_id=found["ID"][0] if "ID" in found else None,
    )


def parse_cors(body: bytes) -> list[CorsRule]:
    """The rules of a ``CORSConfiguration`` document, checked as AWS checks them."""
    root = parse(body, MAX_CORS_XML)
    if root.tag != "CORSConfiguration":
        raise S3Error("MalformedXML")
    rules = []
    for element in root:
        if element.tag != "CORSRule":
            raise S3Error("MalformedXML")
        rules.append(_rule(element))
    return check_cors_rules(rules)


def rule_nodes(rule: CorsRule) -> list[Node]:
    """A rule as ``CORSRule`` children."""
    nodes: list[Node] = [("ID", rule.rule_id)]
    nodes += [("AllowedHeader", h) for h in rule.allowed_headers]
    nodes += [("AllowedMethod", m) for m in rule.allowed_methods]
    nodes += [("AllowedOrigin", o) for o in rule.allowed_origins]
    nodes += [("ExposeHeader", h) for h in rule.expose_headers]
    nodes.append(("MaxAgeSeconds", rule.max_age_seconds))
    return nodes


class CorsHandlers:
    """Bucket CORS configuration and its enforcement, over the engine's bucket facade."""

    def __init__(self, buckets: BucketsFacade) -> None:
        self.buckets = buckets

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes (the preflights take no credentials)."""
        cors = frozenset({"cors"})
        yield (
            RouteKey("PUT", "bucket", cors),
            route("PutBucketCors", self.put_cors, action="s3:PutBucketCORS"),
        )
        yield (
            RouteKey("GET", "bucket", cors),
            route("GetBucketCors", self.get_cors, action="s3:GetBucketCORS"),
        )
        yield (
            RouteKey("DELETE", "bucket", cors),
            route("DeleteBucketCors", self.delete_cors, action="s3:PutBucketCORS"),
        )
        for level in ("bucket", "object"):
            yield (
                RouteKey("OPTIONS", level),
                route("PreflightRequest", self.preflight, action="", public=True),
            )

    async def put_cors(self, call: S3Call) -> Response:
        """PutBucketCors: replace the bucket's rules."""
        body = call.document()
        check_body_integrity(call, body)
        rules = parse_cors(body)
        await self.buckets.put_config(call.bucket, CORS, encode_cors(rules))
        return Response()

    async def get_cors(self, call: S3Call) -> Response:
        """GetBucketCors (``NoSuchCORSConfiguration`` when none)."""
        stored = await self.buckets.get_config(call.bucket, CORS)
        if stored is None:
            raise S3Error("NoSuchCORSConfiguration", BucketName=call.bucket)
        rules = decode_cors(stored)
        return xml_response("CORSConfiguration", [("CORSRule", rule_nodes(r)) for r in rules])

    async def delete_cors(self, call: S3Call) -> Response:
        """DeleteBucketCors: 204, whether the bucket had rules or not."""
        await self.buckets.put_config(call.bucket, CORS, None)
        return Response(status=204)

    async def preflight(self, call: S3Call) -> Response:
        """An ``OPTIONS`` preflight, answered from the bucket's rules."""
        origin = call.header("origin")
        if not origin:
            raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
        method = call.header("access-control-request-method")
        stored = await self.buckets.cached_config(call.bucket, CORS)
        if stored is None:
            await self._bucket_exists(call.bucket)
            raise S3Error(
                "AccessForbidden",
                "CORSResponse: CORS is not enabled for this bucket.",
                Method=method or "OPTIONS",
                ResourceType="BUCKET",
            )
        if method not in PREFLIGHT_METHODS:
            raise S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method}")
        headers = preflight_headers(
            decode_cors(stored), origin, method, call.header("access-control-request-headers")
        )
        if headers is None:
            raise S3Error(
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the "
                "evalution of Origin, request method / Access-Control-Request-Method or "
                "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                Method=method,
                ResourceType="OBJECT" if call.key else "BUCKET",
            )
        return Response(headers=headers)

    async def _bucket_exists(self, bucket: str) -> None:
        """``AccessForbidden`` "Bucket not found" for a bucket that does not exist."""
        try:
            await self.buckets.get(bucket)
        except S3Error as e:
            if e.code != "NoSuchBucket":
                raise
            raise S3Error("AccessForbidden", "CORSResponse: Bucket not found") from None

    def actual(self, bucket: str, origin: str, method: str) -> Deferred[dict[str, str] | None]:
        """The CORS headers for a ``method`` request from ``origin`` to ``bucket`` (or None)."""

        def answer(stored: bytes | None) -> dict[str, str] | None:
            return actual_headers(decode_cors(stored), origin, method) if stored else None

        return self.buckets.cached_config(bucket, CORS).addCallback(answer)

    def actual_now(self, bucket: str, origin: str, method: str) -> dict[str, str] | None:
        """:meth:`actual` from whatever is cached, without waiting (for refusals at header time)."""
        stored = self.buckets.peek_config(bucket, CORS)
        return actual_headers(decode_cors(stored), origin, method) if stored else None
