"""Lifecycle rules: the configuration, AWS's checks of it, and what it decides for a version.

A bucket's lifecycle configuration is a list of :class:`LifecycleRule`, stored
as JSON in the bucket's configuration documents (kind :data:`LIFECYCLE`). Each
rule keeps the form it was written in (a legacy top-level ``Prefix``, or a
``Filter`` with a prefix, a tag, an ``And`` or a size bound) so that
GetBucketLifecycleConfiguration answers the rules as they were put.

Everything here is pure: :func:`check_rules` refuses a configuration with
AWS's codes and messages; :func:`expiration_of` and :func:`abort_of` compute
the ``x-amz-expiration`` and ``x-amz-abort-date`` answers; :func:`verdict`
decides what one version deserves given where it sits among its key's
versions (:class:`Position`). The background sweep
(:mod:`s4d.features.lifecycle_sweep`) applies the verdicts; it asks
:func:`verdict` again inside the transaction that acts on one.

Time: AWS counts days from an object's creation (or, for a noncurrent
version, from the moment it became noncurrent) and rounds the result up to
the next midnight UTC. :class:`DayClock` does that for 86,400-second days; a
shortened day (the test knob ``S4_LIFECYCLE_DAY_SECS``) adds whole days
without rounding, so that a one-day rule expires after one short day.
"""

from __future__ import annotations

import enum
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from s4d.errors import S3Error

#: The kind of the bucket configuration document holding the lifecycle rules.
LIFECYCLE = b"lifecycle"
#: AWS's limits.
MAX_RULES = 1000
MAX_ID_CHARS = 255
MAX_NEWER_NONCURRENT = 100
#: A rule's filter, as it was written (GET answers it in the same form).
FILTER_FORMS = ("legacy", "empty", "prefix", "tag", "and", "gt", "lt")
NS = 1_000_000_000
DAY_NS = 86_400 * NS


@dataclass(frozen=True)
class DayClock:
    """How long a lifecycle day is, and where a count of days ends.

    :ivar day_ns: a day in nanoseconds (shorter only for tests).
    """

    day_ns: int = DAY_NS

    @property
    def real(self) -> bool:
        """Days are real days: results are rounded up to midnight UTC."""
        return self.day_ns == DAY_NS

    def after(self, start_ns: int, days: int) -> int:
        """When ``days`` days after ``start_ns`` are over (AWS: rounded up to midnight UTC)."""
        end = start_ns + days * self.day_ns
        if not self.real:
            return end
        return -(-end // DAY_NS) * DAY_NS


@dataclass(frozen=True)
class LifecycleFilter:
    """Which object versions a rule applies to (every condition must hold)."""

    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None

    def matches(self, key: str, tags: Mapping[str, str], size: int) -> bool:
        """Does a version of ``key`` with ``tags`` and ``size`` bytes qualify?"""
        if not key.startswith(self.prefix):
            return False
        for name, value in self.tags:
            if tags.get(name) != value:
                return False
        if self.size_greater_than is not None and not size > self.size_greater_than:
            return False
        return self.size_less_than is None or size < self.size_less_than


@dataclass(frozen=True)
class Transition:
    """A Transition (or NoncurrentVersionTransition): kept and answered, never acted on.

    Only the ``STANDARD`` class is accepted (:func:`check_rules`): s4d has one
    class, so such a transition changes nothing.
    """

    storage_class: str
    days: int | None = None
    date: str | None = None
    newer_noncurrent_versions: int | None = None


@dataclass(frozen=True)
class LifecycleRule:
    """One rule of a lifecycle configuration.

    :ivar filter_form: how the filter was written: ``legacy`` (a top-level
        ``Prefix``), ``empty`` (``<Filter/>``), ``prefix``, ``tag``, ``and``,
        ``gt`` or ``lt`` (one size bound).
    :ivar expiration_date: ISO 8601 at midnight UTC (``2027-01-01T00:00:00.000Z``).
    """

    rule_id: str
    enabled: bool
    filter: LifecycleFilter = field(default_factory=LifecycleFilter)
    filter_form: str = "empty"
    expiration_days: int | None = None
    expiration_date: str | None = None
    expired_object_delete_marker: bool | None = None
    noncurrent_days: int | None = None
    newer_noncurrent_versions: int | None = None
    abort_days: int | None = None
    transitions: tuple[Transition, ...] = ()
    noncurrent_transitions: tuple[Transition, ...] = ()
    #: ``NoncurrentVersionExpiration`` was given (NoncurrentDays may then be missing: refused)
    has_noncurrent: bool = False
    #: ``Expiration`` was given
    has_expiration: bool = False

    @property
    def date_ns(self) -> int | None:
        """The expiration date in nanoseconds since the epoch."""
        return None if self.expiration_date is None else parse_date(self.expiration_date)

    @property
    def expires_current(self) -> bool:
        """The rule expires current versions (Days or Date)."""
        return self.expiration_days is not None or self.expiration_date is not None

    # -- the stored form ------------------------------------------------------------

    def encode(self) -> dict[str, Any]:
        """The JSON form kept in the bucket's configuration."""
        value: dict[str, Any] = {"id": self.rule_id, "on": self.enabled, "form": self.filter_form}
        f = self.filter
        if f.prefix:
            value["prefix"] = f.prefix
        if f.tags:
            value["tags"] = [list(t) for t in f.tags]
        if f.size_greater_than is not None:
            value["gt"] = f.size_greater_than
        if f.size_less_than is not None:
            value["lt"] = f.size_less_than
        for name, item in (
            ("days", self.expiration_days),
            ("date", self.expiration_date),
            ("eodm", self.expired_object_delete_marker),
            ("ncdays", self.noncurrent_days),
            ("newer", self.newer_noncurrent_versions),
            ("abort", self.abort_days),
        ):
            if item is not None:
                value[name] = item
        if self.has_expiration:
            value["exp"] = True
        if self.has_noncurrent:
            value["nc"] = True
        if self.transitions:
            value["tr"] = [_transition_json(t) for t in self.transitions]
        if self.noncurrent_transitions:
            value["nctr"] = [_transition_json(t) for t in self.noncurrent_transitions]
        return value

    @classmethod
    def decode(cls, value: Mapping[str, Any]) -> LifecycleRule:
        """Build from the JSON form."""
        return cls(
            rule_id=value["id"],
            enabled=bool(value["on"]),
            filter=LifecycleFilter(
                prefix=value.get("prefix", ""),
                tags=tuple((k, v) for k, v in value.get("tags", ())),
                size_greater_than=value.get("gt"),
                size_less_than=value.get("lt"),
            ),
            filter_form=value.get("form", "empty"),
            expiration_days=value.get("days"),
            expiration_date=value.get("date"),
            expired_object_delete_marker=value.get("eodm"),
            noncurrent_days=value.get("ncdays"),
            newer_noncurrent_versions=value.get("newer"),
            abort_days=value.get("abort"),
            transitions=tuple(Transition(**t) for t in value.get("tr", ())),
            noncurrent_transitions=tuple(Transition(**t) for t in value.get("nctr", ())),
            has_noncurrent=bool(value.get("nc")),
            has_expiration=bool(value.get("exp")),
        )


def _transition_json(t: Transition) -> dict[str, Any]:
    return {k: v for k, v in t.__dict__.items() if v is not None}


def encode_rules(rules: list[LifecycleRule]) -> bytes:
    """A configuration as stored."""
    return json.dumps([r.encode() for r in rules], separators=(",", ":")).encode()


@lru_cache(maxsize=256)
def decode_rules(raw: bytes) -> tuple[LifecycleRule, ...]:
    """A stored configuration (parsed once per distinct document)."""
    return tuple(LifecycleRule.decode(v) for v in json.loads(raw))


def new_rule_id() -> str:
    """An id for a rule that came without one (48 characters, as AWS makes them)."""
    return secrets.token_urlsafe(36)[:48]


# -- checks ------------------------------------------------------------------------------


_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]00:?00)?)?\Z"
)


def parse_date(text: str) -> int:
    """Nanoseconds since the epoch of an ISO 8601 date; ``MalformedXML`` if it is not one."""
    found = _DATE.match(text.strip())
    if found is None:
        raise S3Error("MalformedXML")
    year, month, day, hour, minute, second, fraction, _ = found.groups()
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise S3Error("MalformedXML") from None
    nanos = int((fraction or "0").ljust(9, "0"))
    return int(when.timestamp()) * NS + nanos


def normal_date(text: str, what: str = "Date") -> str:
    """``text`` as ``YYYY-MM-DDT00:00:00.000Z``; ``InvalidArgument`` unless at midnight UTC."""
    ns = parse_date(text)
    if ns % DAY_NS:
        raise S3Error("InvalidArgument", f"'{what}' must be at midnight GMT")
    return datetime.fromtimestamp(ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _positive(value: int | None, what: str, action: str) -> None:
    if value is not None and value <= 0:
        raise S3Error("InvalidArgument", f"'{what}' for {action} action must be a positive integer")


def check_rules(rules: list[LifecycleRule]) -> list[LifecycleRule]:
    """``rules`` with ids given to rules that had none, or AWS's error for the first fault."""
    if not rules:
        raise S3Error("MalformedXML")
    if len(rules) > MAX_RULES:
        raise S3Error(
            "InvalidRequest", f"The number of lifecycle rules must not exceed {MAX_RULES}"
        )
    seen: set[str] = set()
    checked = []
    for rule in rules:
        if not rule.rule_id:
            rule = replace(rule, rule_id=new_rule_id())
        if len(rule.rule_id) > MAX_ID_CHARS:
            raise S3Error(
                "InvalidArgument", f"ID length should not exceed allowed limit of {MAX_ID_CHARS}"
            )
        if rule.rule_id in seen:
            raise S3Error(
                "InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule"
            )
        seen.add(rule.rule_id)
        _check_rule(rule)
        checked.append(rule)
    return checked


def _check_rule(rule: LifecycleRule) -> None:
    f = rule.filter
    if not (
        rule.has_expiration
        or rule.has_noncurrent
        or rule.abort_days is not None
        or rule.transitions
        or rule.noncurrent_transitions
    ):
        raise S3Error("InvalidRequest", "At least one action needs to be specified in a rule")
    names = [name for name, _ in f.tags]
    if len(set(names)) != len(names):
        raise S3Error("InvalidRequest", "Duplicate Tag Keys are not allowed.")
    for low, value in (("ObjectSizeGreaterThan", f.size_greater_than),
                       ("ObjectSizeLessThan", f.size_less_than)):  # fmt: skip
        if value is not None and value < 0:
            raise S3Error("InvalidArgument", f"'{low}' should be a non-negative integer")
    if (
        f.size_greater_than is not None
        and f.size_less_than is not None
        and f.size_greater_than >= f.size_less_than
    ):
        raise S3Error(
            "InvalidArgument",
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan in the And operator",
        )
    if rule.has_expiration:
        given = [
            rule.expiration_days is not None,
            rule.expiration_date is not None,
            rule.expired_object_delete_marker is not None,
        ]
        if sum(given) != 1:
            if rule.expired_object_delete_marker is not None and sum(given) > 1:
                raise S3Error(
                    "InvalidArgument",
                    "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a "
                    "Lifecycle Expiration Policy.",
                )
            raise S3Error("MalformedXML")
        _positive(rule.expiration_days, "Days", "Expiration")
        if rule.expired_object_delete_marker and f.tags:
            raise S3Error(
                "InvalidRequest", "Delete marker expiration is not supported with a tag filter."
            )
    if rule.has_noncurrent:
        if rule.noncurrent_days is None:
            raise S3Error("MalformedXML")
        _positive(rule.noncurrent_days, "NoncurrentDays", "NoncurrentVersionExpiration")
        newer = rule.newer_noncurrent_versions
        if newer is not None and not 1 <= newer <= MAX_NEWER_NONCURRENT:
            raise S3Error(
                "InvalidArgument",
                "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a "
                f"positive integer up to {MAX_NEWER_NONCURRENT}",
            )
    if rule.abort_days is not None:
        _positive(rule.abort_days, "DaysAfterInitiation", "AbortIncompleteMultipartUpload")
        if f.tags or f.size_greater_than is not None or f.size_less_than is not None:
            raise S3Error(
                "InvalidRequest",
                "AbortIncompleteMultipartUpload cannot be specified with tags or object size.",
            )
    for transition in rule.transitions + rule.noncurrent_transitions:
        _check_transition(transition)


def _check_transition(t: Transition) -> None:
    if t.days is not None and t.days < 0:
        raise S3Error("InvalidArgument", "'Days' in Transition action must be nonnegative")
    if (t.days is None) == (t.date is None) and t.newer_noncurrent_versions is None:
        raise S3Error("MalformedXML")
    if t.storage_class != "STANDARD":
        # s4d keeps every object in one class: a transition to another would never happen.
        raise S3Error(
            "InvalidStorageClass",
            f"The storage class you specified is not valid: {t.storage_class}",
            StorageClassRequested=t.storage_class,
        )


# -- what a rule says about a new object or upload --------------------------------------------


def enabled(rules: tuple[LifecycleRule, ...] | list[LifecycleRule]) -> list[LifecycleRule]:
    """The rules that are on."""
    return [r for r in rules if r.enabled]


def expiration_of(
    rules: tuple[LifecycleRule, ...],
    key: str,
    tags: Mapping[str, str],
    size: int,
    mtime_ns: int,
    clock: DayClock,
) -> tuple[int, str] | None:
    """When the current version described will expire and by which rule (earliest wins).

    The answer of ``x-amz-expiration``; None when no enabled rule expires it.
    """
    best: tuple[int, str] | None = None
    for rule in rules:
        if not rule.enabled or not rule.filter.matches(key, tags, size):
            continue
        if rule.expiration_days is not None:
            when = clock.after(mtime_ns, rule.expiration_days)
        elif rule.expiration_date is not None:
            when = parse_date(rule.expiration_date)
        else:
            continue
        if best is None or when < best[0]:
            best = (when, rule.rule_id)
    return best


def abort_of(
    rules: tuple[LifecycleRule, ...], key: str, initiated_ns: int, clock: DayClock
) -> tuple[int, str] | None:
    """When an upload of ``key`` begun at ``initiated_ns`` is aborted, and by which rule."""
    best: tuple[int, str] | None = None
    for rule in rules:
        if not rule.enabled or rule.abort_days is None or not key.startswith(rule.filter.prefix):
            continue
        when = clock.after(initiated_ns, rule.abort_days)
        if best is None or when < best[0]:
            best = (when, rule.rule_id)
    return best


def governs_uploads(rules: tuple[LifecycleRule, ...]) -> bool:
    """Some enabled rule aborts incomplete uploads (the fixed upload TTL then stands aside)."""
    return any(r.enabled and r.abort_days is not None for r in rules)


# -- what a version deserves -------------------------------------------------------------


class Action(enum.Enum):
    """What the sweep does to one version (or upload)."""

    #: the current version expires: a delete marker on a versioned bucket, removal otherwise
    EXPIRE = "expire"
    #: a noncurrent version (or noncurrent delete marker) is removed
    REMOVE_NONCURRENT = "noncurrent"
    #: a delete marker with no version left behind it is removed
    REMOVE_MARKER = "marker"
    #: an incomplete multipart upload is aborted
    ABORT_UPLOAD = "abort"


@dataclass(frozen=True)
class Position:
    """Where a version sits among the versions of its key.

    :ivar newer: how many versions are newer (0: it is the current version),
        counted up to :data:`MAX_NEWER_NONCURRENT` + 1 at least.
    :ivar noncurrent_since_ns: when it became noncurrent (the mtime of the
        version just newer); None for the current version.
    :ivar alone: it is the only version of its key.
    """

    newer: int
    noncurrent_since_ns: int | None
    alone: bool


def verdict(
    rules: tuple[LifecycleRule, ...],
    key: str,
    tags: Mapping[str, str],
    size: int,
    mtime_ns: int,
    delete_marker: bool,
    position: Position,
    now_ns: int,
    clock: DayClock,
) -> tuple[Action, str] | None:
    """What is due to a version now, and the rule that says so; None to keep it."""
    for rule in rules:
        if not rule.enabled or not rule.filter.matches(key, tags, size):
            continue
        if position.newer == 0:
            if not delete_marker:
                if rule.expiration_days is not None:
                    if now_ns >= clock.after(mtime_ns, rule.expiration_days):
                        return Action.EXPIRE, rule.rule_id
                elif rule.expiration_date is not None:
                    if now_ns >= parse_date(rule.expiration_date):
                        return Action.EXPIRE, rule.rule_id
            elif position.alone:
                if rule.expired_object_delete_marker:
                    return Action.REMOVE_MARKER, rule.rule_id
                # Expiration in days also clears a lone marker once it is old enough.
                days = rule.expiration_days
                if days is not None and now_ns >= clock.after(mtime_ns, days):
                    return Action.REMOVE_MARKER, rule.rule_id
        elif rule.noncurrent_days is not None and position.noncurrent_since_ns is not None:
            if position.newer <= (rule.newer_noncurrent_versions or 0):
                continue  # one of the newest noncurrent versions the rule keeps
            if now_ns >= clock.after(position.noncurrent_since_ns, rule.noncurrent_days):
                return Action.REMOVE_NONCURRENT, rule.rule_id
    return None


def upload_verdict(
    rules: tuple[LifecycleRule, ...], key: str, initiated_ns: int, now_ns: int, clock: DayClock
) -> str | None:
    """The rule under which an upload is due for abortion now, or None."""
    due = abort_of(rules, key, initiated_ns, clock)
    return due[1] if due is not None and now_ns >= due[0] else None


def version_prefixes(rules: tuple[LifecycleRule, ...]) -> list[str]:
    """The key prefixes a sweep of versions must visit (the shortest cover, in order)."""
    wanted = sorted(
        {
            r.filter.prefix
            for r in rules
            if r.enabled and (r.has_expiration or r.noncurrent_days is not None)
        }
    )
    return _cover(wanted)


def upload_prefixes(rules: tuple[LifecycleRule, ...]) -> list[str]:
    """The key prefixes a sweep of uploads must visit."""
    return _cover(sorted({r.filter.prefix for r in rules if r.enabled and r.abort_days}))


def _cover(prefixes: list[str]) -> list[str]:
    kept: list[str] = []
    for prefix in prefixes:
        if kept and prefix.startswith(kept[-1]):
            continue
        kept.append(prefix)
    return kept


def newest_kept(rules: tuple[LifecycleRule, ...]) -> int:
    """How far back from the current version a :class:`Position` must count newer versions."""
    return max((r.newer_noncurrent_versions or 0 for r in rules), default=0) + 1
