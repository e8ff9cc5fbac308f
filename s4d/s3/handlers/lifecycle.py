"""Put/Get/DeleteBucketLifecycleConfiguration (and the older PutBucketLifecycle).

The XML is read strictly (an element S3 does not define is ``MalformedXML``)
into :class:`~s4d.engine.LifecycleRule` values, checked with AWS's errors
(:func:`~s4d.engine.check_rules`) and stored as the bucket's ``lifecycle``
document. GET answers each rule in the form it was put: a top-level
``Prefix`` stays one, a ``Filter`` stays a filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element

from s4d.engine import (
    LIFECYCLE,
    BucketsFacade,
    LifecycleFilter,
    LifecycleRule,
    Transition,
    check_rules,
    decode_rules,
    encode_rules,
    normal_date,
)
from s4d.errors import S3Error
from s4d.s3.call import Response, S3Call
from s4d.s3.dispatch import Route, RouteKey, route
from s4d.s3.handlers.bucket import check_body_integrity
from s4d.s3.handlers.common import xml_response
from s4d.s3.xml import Node, parse

_RULE_CHILDREN = frozenset(
    {"ID", "Prefix", "Filter", "Status", "Expiration", "NoncurrentVersionExpiration",
     "AbortIncompleteMultipartUpload", "Transition", "NoncurrentVersionTransition"}
)  # fmt: skip
_FILTER_CHILDREN = frozenset(
    {"Prefix", "Tag", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan"}
)


def _children(element: Element, allowed: frozenset[str]) -> dict[str, list[Element]]:
    """Children by tag; ``MalformedXML`` for one S3 does not define here."""
    found: dict[str, list[Element]] = {}
    for child in element:
        if child.tag not in allowed:
            raise S3Error("MalformedXML")
        found.setdefault(child.tag, []).append(child)
    return found


def _one(found: dict[str, list[Element]], tag: str) -> Element | None:
    items = found.get(tag, [])
    if len(items) > 1:
        raise S3Error("MalformedXML")
    return items[0] if items else None


def _text(element: Element | None) -> str | None:
    return None if element is None else (element.text or "").strip()


def _int(element: Element | None) -> int | None:
    text = _text(element)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise S3Error("MalformedXML") from None


def _tag(element: Element) -> tuple[str, str]:
    found = _children(element, frozenset({"Key", "Value"}))
    key, value = _one(found, "Key"), _one(found, "Value")
    if key is None:
        raise S3Error("MalformedXML")
    return key.text or "", (value.text or "") if value is not None else ""


def _filter(element: Element) -> tuple[LifecycleFilter, str]:
    """A ``Filter`` and the form it was written in."""
    found = _children(element, _FILTER_CHILDREN)
    if sum(len(v) for v in found.values()) > 1:
        raise S3Error("MalformedXML")  # several conditions go inside And
    if not found:
        return LifecycleFilter(), "empty"
    if "Prefix" in found:
        return LifecycleFilter(prefix=found["Prefix"][0].text or ""), "prefix"
    if "Tag" in found:
        return LifecycleFilter(tags=(_tag(found["Tag"][0]),)), "tag"
    if "ObjectSizeGreaterThan" in found:
        return LifecycleFilter(size_greater_than=_int(found["ObjectSizeGreaterThan"][0])), "gt"
    if "ObjectSizeLessThan" in found:
        return LifecycleFilter(size_less_than=_int(found["ObjectSizeLessThan"][0])), "lt"
    inner = _children(
        found["And"][0], frozenset({"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})
    )
    if not inner:
        raise S3Error("MalformedXML")
    prefix = _one(inner, "Prefix")
    return (
        LifecycleFilter(
            prefix=(prefix.text or "") if prefix is not None else "",
            tags=tuple(_tag(t) for t in inner.get("Tag", [])),
            size_greater_than=_int(_one(inner, "ObjectSizeGreaterThan")),
            size_less_than=_int(_one(inner, "ObjectSizeLessThan")),
        ),
        "and",
    )


def _transition(element: Element, noncurrent: bool) -> Transition:
    days_tag = "NoncurrentDays" if noncurrent else "Days"
    allowed = {days_tag, "StorageClass"} | ({"NewerNoncurrentVersions"} if noncurrent else {"Date"})
    found = _children(element, frozenset(allowed))
    storage_class = _text(_one(found, "StorageClass"))
    if not storage_class:
        raise S3Error("MalformedXML")
    date = _text(_one(found, "Date"))
    return Transition(
        storage_class=storage_class,
        days=_int(_one(found, days_tag)),
        date=normal_date(date) if date is not None else None,
        newer_noncurrent_versions=_int(_one(found, "NewerNoncurrentVersions")),
    )


def _bool(element: Element | None) -> bool | None:
    text = _text(element)
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise S3Error("MalformedXML")
    return text.lower() == "true"


def parse_rule(element: Element) -> LifecycleRule:
    """One ``Rule`` element (structure only; :func:`check_rules` judges the values)."""
    found = _children(element, _RULE_CHILDREN)
    status = _text(_one(found, "Status"))
    if status not in ("Enabled", "Disabled"):
        raise S3Error("MalformedXML")
    legacy, given = _one(found, "Prefix"), _one(found, "Filter")
    if (legacy is None) == (given is None):
        raise S3Error("MalformedXML")  # exactly one of Filter and the older Prefix
    if legacy is not None:
        rule_filter, form = LifecycleFilter(prefix=legacy.text or ""), "legacy"
    else:
        assert given is not None
        rule_filter, form = _filter(given)
    days = date = marker = None
    expiration = _one(found, "Expiration")
    if expiration is not None:
        parts = _children(expiration, frozenset({"Days", "Date", "ExpiredObjectDeleteMarker"}))
        days = _int(_one(parts, "Days"))
        raw_date = _text(_one(parts, "Date"))
        date = normal_date(raw_date) if raw_date is not None else None
        marker = _bool(_one(parts, "ExpiredObjectDeleteMarker"))
    noncurrent_days = newer = None
    noncurrent = _one(found, "NoncurrentVersionExpiration")
    if noncurrent is not None:
        parts = _children(noncurrent, frozenset({"NoncurrentDays", "NewerNoncurrentVersions"}))
        noncurrent_days = _int(_one(parts, "NoncurrentDays"))
        newer = _int(_one(parts, "NewerNoncurrentVersions"))
    abort_days = None
    abort = _one(found, "AbortIncompleteMultipartUpload")
    if abort is not None:
        parts = _children(abort, frozenset({"DaysAfterInitiation"}))
        abort_days = _int(_one(parts, "DaysAfterInitiation"))
        if abort_days is None:
            raise S3Error("MalformedXML")
    return LifecycleRule(
        rule_id=_text(_one(found, "ID")) or "",
        enabled=status == "Enabled",
        filter=rule_filter,
        filter_form=form,
        expiration_days=days,
        expiration_date=date,
        expired_object_delete_marker=marker,
        noncurrent_days=noncurrent_days,
        newer_noncurrent_versions=newer,
        abort_days=abort_days,
        transitions=tuple(_transition(e, False) for e in found.get("Transition", [])),
        noncurrent_transitions=tuple(
            _transition(e, True) for e in found.get("NoncurrentVersionTransition", [])
        ),
        has_noncurrent=noncurrent is not None,
        has_expiration=expiration is not None,
    )


def parse_lifecycle(body: bytes) -> list[LifecycleRule]:
    """The rules of a ``LifecycleConfiguration`` document, checked as AWS checks them."""
    root = parse(body)
    if root.tag != "LifecycleConfiguration":
        raise S3Error("MalformedXML")
    found = _children(root, frozenset({"Rule"}))
    return check_rules([parse_rule(e) for e in found.get("Rule", [])])


# -- rendering -------------------------------------------------------------------------------


def _filter_nodes(rule: LifecycleRule) -> list[Node]:
    f = rule.filter
    tags: list[Node] = [("Tag", [("Key", k), ("Value", v)]) for k, v in f.tags]
    form = rule.filter_form
    if form == "legacy":
        return [("Prefix", f.prefix)]
    if form == "prefix":
        return [("Filter", [("Prefix", f.prefix)])]
    if form == "tag":
        return [("Filter", tags)]
    if form == "gt":
        return [("Filter", [("ObjectSizeGreaterThan", f.size_greater_than)])]
    if form == "lt":
        return [("Filter", [("ObjectSizeLessThan", f.size_less_than)])]
    if form == "and":
        inner: list[Node] = [("Prefix", f.prefix if f.prefix else None), *tags]
        inner.append(("ObjectSizeGreaterThan", f.size_greater_than))
        inner.append(("ObjectSizeLessThan", f.size_less_than))
        return [("Filter", [("And", inner)])]
    return [("Filter", [])]


def _transition_nodes(tag: str, items: tuple[Transition, ...], noncurrent: bool) -> list[Node]:
    days = "NoncurrentDays" if noncurrent else "Days"
    return [
        (
            tag,
            [
                (days, t.days),
                ("Date", t.date),
                ("NewerNoncurrentVersions", t.newer_noncurrent_versions),
                ("StorageClass", t.storage_class),
            ],
        )
        for t in items
    ]


def rule_nodes(rule: LifecycleRule) -> list[Node]:
    """A rule as ``Rule`` children, in the form it was put."""
    nodes: list[Node] = [("ID", rule.rule_id), *_filter_nodes(rule)]
    nodes.append(("Status", "Enabled" if rule.enabled else "Disabled"))
    if rule.has_expiration:
        nodes.append(
            (
                "Expiration",
                [
                    ("Days", rule.expiration_days),
                    ("Date", rule.expiration_date),
                    ("ExpiredObjectDeleteMarker", rule.expired_object_delete_marker),
                ],
            )
        )
    if rule.has_noncurrent:
        nodes.append(
            (
                "NoncurrentVersionExpiration",
                [
                    ("NoncurrentDays", rule.noncurrent_days),
                    ("NewerNoncurrentVersions", rule.newer_noncurrent_versions),
                ],
            )
        )
    if rule.abort_days is not None:
        nodes.append(("AbortIncompleteMultipartUpload", [("DaysAfterInitiation", rule.abort_days)]))
    nodes += _transition_nodes("Transition", rule.transitions, False)
    nodes += _transition_nodes("NoncurrentVersionTransition", rule.noncurrent_transitions, True)
    return nodes


class LifecycleHandlers:
    """Bucket lifecycle configuration over the engine's bucket facade."""

    def __init__(self, buckets: BucketsFacade) -> None:
        self.buckets = buckets

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        lifecycle = frozenset({"lifecycle"})
        yield (
            RouteKey("PUT", "bucket", lifecycle),
            route(
                "PutBucketLifecycleConfiguration",
                self.put_lifecycle,
                action="s3:PutLifecycleConfiguration",
            ),
        )
        yield (
            RouteKey("GET", "bucket", lifecycle),
            route(
                "GetBucketLifecycleConfiguration",
                self.get_lifecycle,
                action="s3:GetLifecycleConfiguration",
            ),
        )
        yield (
            RouteKey("DELETE", "bucket", lifecycle),
            route(
                "DeleteBucketLifecycle",
                self.delete_lifecycle,
                action="s3:PutLifecycleConfiguration",
            ),
        )

    async def put_lifecycle(self, call: S3Call) -> Response:
        """PutBucketLifecycleConfiguration: replace the bucket's rules."""
        body = call.document()
        check_body_integrity(call, body)
        rules = parse_lifecycle(body)
        await self.buckets.put_config(call.bucket, LIFECYCLE, encode_rules(rules))
        return Response()

    async def get_lifecycle(self, call: S3Call) -> Response:
        """GetBucketLifecycleConfiguration (``NoSuchLifecycleConfiguration`` when none)."""
        stored = await self.buckets.get_config(call.bucket, LIFECYCLE)
        if stored is None:
            raise S3Error("NoSuchLifecycleConfiguration", BucketName=call.bucket)
        rules = decode_rules(stored)
        return xml_response("LifecycleConfiguration", [("Rule", rule_nodes(r)) for r in rules])

    async def delete_lifecycle(self, call: S3Call) -> Response:
        """DeleteBucketLifecycle: 204, whether the bucket had rules or not."""
        await self.buckets.put_config(call.bucket, LIFECYCLE, None)
        return Response(status=204)
