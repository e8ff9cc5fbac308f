"""Object lock: Put/GetObjectLockConfiguration, Put/GetObjectRetention, Put/GetObjectLegalHold.

A bucket's lock configuration (enabled, and an optional default retention)
lives in its bucket record; a version's retention and legal hold in its
version record. The rules (who may shorten what, when a version may go) live
in :mod:`s4d.features.lock`; this module parses and renders AWS's documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element

from s4d.engine import LOCK_MODES, DefaultRetention, LockFacade
from s4d.errors import S3Error
from s4d.s3.call import Response, S3Call
from s4d.s3.dispatch import Route, RouteKey, route
from s4d.s3.handlers.bucket import check_body_integrity
from s4d.s3.handlers.common import requested_version, xml_response
from s4d.s3.objectlock import bypass_governance, parse_retain_until, render_retain_until
from s4d.s3.xml import Node, parse
from s4d.util.numbers import decimal


def _only_child(element: Element, tag: str) -> Element | None:
    """The one child called ``tag`` (None if absent); ``MalformedXML`` if repeated."""
    found = element.findall(tag)
    if len(found) > 1:
        raise S3Error("MalformedXML")
    return found[0] if found else None


def _text(element: Element, tag: str) -> str | None:
    child = _only_child(element, tag)
    return None if child is None else (child.text or "").strip()


def parse_lock_configuration(body: bytes) -> DefaultRetention | None:
    """The default retention of an ``ObjectLockConfiguration`` document (None: no rule).

    ``MalformedXML`` unless ``ObjectLockEnabled`` is ``Enabled`` and a rule
    holds exactly one ``DefaultRetention`` with a mode and one whole period;
    the period's limits are checked with the rules (``InvalidRetentionPeriod``).
    """
    root = parse(body)
    if root.tag != "ObjectLockConfiguration" or _text(root, "ObjectLockEnabled") != "Enabled":
        raise S3Error("MalformedXML")
    rule = _only_child(root, "Rule")
    if rule is None:
        return None
    retention = _only_child(rule, "DefaultRetention")
    if retention is None:
        raise S3Error("MalformedXML")
    mode = _text(retention, "Mode")
    days, years = _text(retention, "Days"), _text(retention, "Years")
    if mode not in LOCK_MODES or (days is None) == (years is None):
        raise S3Error("MalformedXML")
    return DefaultRetention(mode, _whole(days), _whole(years))


def _whole(text: str | None) -> int | None:
    """An optionally signed whole number (``MalformedXML`` otherwise); None stays None."""
    if text is None:
        return None
    value = decimal(text.removeprefix("-"))
    if value is None:
        raise S3Error("MalformedXML")
    return -value if text.startswith("-") else value


def parse_retention(body: bytes) -> tuple[str | None, int | None]:
    """(mode, retain-until in ms) of a ``Retention`` document; (None, None) removes it."""
    root = parse(body)
    if root.tag != "Retention":
        raise S3Error("MalformedXML")
    mode, until_text = _text(root, "Mode"), _text(root, "RetainUntilDate")
    if (mode is None) != (until_text is None) or (mode is not None and mode not in LOCK_MODES):
        raise S3Error("MalformedXML")
    if until_text is None:
        return None, None
    until_ms = parse_retain_until(until_text)
    if until_ms is None:
        raise S3Error("MalformedXML", "RetainUntilDate is not an ISO 8601 date.")
    return mode, until_ms


def parse_legal_hold(body: bytes) -> bool:
    """A ``LegalHold`` document's status: True for ``ON``, False for ``OFF``."""
    root = parse(body)
    status = _text(root, "Status")
    if root.tag != "LegalHold" or status not in ("ON", "OFF"):
        raise S3Error("MalformedXML")
    return status == "ON"


def lock_configuration_document(rule: DefaultRetention | None) -> Response:
    """An ``ObjectLockConfiguration`` document (object lock is enabled)."""
    children: list[Node] = [("ObjectLockEnabled", "Enabled")]
    if rule is not None:
        period: Node = ("Days", rule.days) if rule.days is not None else ("Years", rule.years)
        children.append(("Rule", [("DefaultRetention", [("Mode", rule.mode), period])]))
    return xml_response("ObjectLockConfiguration", children)


class LockHandlers:
    """Object lock operations over the engine's lock facade."""

    def __init__(self, locks: LockFacade) -> None:
        self.locks = locks

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        lock, retention, hold = (
            frozenset({"object-lock"}),
            frozenset({"retention"}),
            frozenset({"legal-hold"}),
        )
        yield (
            RouteKey("PUT", "bucket", lock),
            route(
                "PutObjectLockConfiguration",
                self.put_configuration,
                action="s3:PutBucketObjectLockConfiguration",
            ),
        )
        yield (
            RouteKey("GET", "bucket", lock),
            route(
                "GetObjectLockConfiguration",
                self.get_configuration,
                action="s3:GetBucketObjectLockConfiguration",
            ),
        )
        yield RouteKey("PUT", "object", retention), route("PutObjectRetention", self.put_retention)
        yield RouteKey("GET", "object", retention), route("GetObjectRetention", self.get_retention)
        yield RouteKey("PUT", "object", hold), route("PutObjectLegalHold", self.put_legal_hold)
        yield RouteKey("GET", "object", hold), route("GetObjectLegalHold", self.get_legal_hold)

    async def put_configuration(self, call: S3Call) -> Response:
        """PutObjectLockConfiguration: enable object lock (versioning must be Enabled)."""
        body = call.document()
        check_body_integrity(call, body)
        await self.locks.put_configuration(call.bucket, parse_lock_configuration(body))
        return Response()

    async def get_configuration(self, call: S3Call) -> Response:
        """GetObjectLockConfiguration."""
        bucket = await self.locks.configuration(call.bucket)
        return lock_configuration_document(bucket.lock_default)

    async def put_retention(self, call: S3Call) -> Response:
        """PutObjectRetention (``x-amz-bypass-governance-retention`` to shorten GOVERNANCE)."""
        version_id = requested_version(call)
        bypass = bypass_governance(call.headers)
        body = call.document()
        check_body_integrity(call, body)
        mode, until_ms = parse_retention(body)
        await self.locks.put_retention(call.bucket, call.key, version_id, mode, until_ms, bypass)
        return Response()

    async def get_retention(self, call: S3Call) -> Response:
        """GetObjectRetention (``NoSuchObjectLockConfiguration`` for a version without)."""
        version = await self.locks.version(call.bucket, call.key, requested_version(call))
        lock = version.lock
        if lock.mode is None or lock.until_ms is None:
            raise S3Error("NoSuchObjectLockConfiguration")
        return xml_response(
            "Retention",
            [("Mode", lock.mode), ("RetainUntilDate", render_retain_until(lock.until_ms))],
        )

    async def put_legal_hold(self, call: S3Call) -> Response:
        """PutObjectLegalHold: ON or OFF."""
        version_id = requested_version(call)
        body = call.document()
        check_body_integrity(call, body)
        on = parse_legal_hold(body)
        await self.locks.put_legal_hold(call.bucket, call.key, version_id, on)
        return Response()

    async def get_legal_hold(self, call: S3Call) -> Response:
        """GetObjectLegalHold (``NoSuchObjectLockConfiguration`` if none was ever set)."""
        version = await self.locks.version(call.bucket, call.key, requested_version(call))
        if version.lock.legal_hold is None:
            raise S3Error("NoSuchObjectLockConfiguration")
        return xml_response("LegalHold", [("Status", "ON" if version.lock.legal_hold else "OFF")])
