"""The lifecycle sweep: bounded batches of verdicts, each applied with its saved cursor.

A *pass* visits every bucket that has lifecycle rules, in name order, in two
phases: ``versions`` (expire current versions, remove noncurrent ones and lone
delete markers) and ``uploads`` (abort incomplete multipart uploads). Where it
stands is a :class:`SweepState`: the bucket, the phase, and the position in it
(the last key examined and, when a key has more versions than one batch takes,
the last version of it; in the uploads phase the last upload). It is stored in
the ``config`` sub-database under :data:`STATE_KEY`.

A batch is two transactions:

1. :func:`plan_batch`, in a read transaction: walk the namespace tree from the
   position (only below the prefixes the rules name), streaming each key's
   version records newest first, until :attr:`Limits.examine` records (or
   :attr:`Limits.actions` verdicts) are reached; nothing is held in memory but
   this batch's verdicts. Each verdict comes from
   :func:`s4d.features.lifecycle.verdict`.
2. :func:`apply_batch`, in a write transaction through the group committer:
   the bucket and its rules must be those the plan saw (else nothing happens
   and the batch is planned again); each verdict is asked again against the
   version as it is now (its neighbours re-read with a cursor, at most
   :func:`~s4d.features.lifecycle.newest_kept` of them), object lock is asked
   (:func:`may_remove`, one call), and only then the version goes. The new
   position is written in the same transaction.

So a crash loses at most the batch in flight, and the next pass starts where
the last committed batch ended: nothing is done twice, nothing is skipped, and
what was removed was due when it was removed. Run in a read transaction
(``dry_run``), :func:`apply_batch` counts what it would do and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import lmdb

from s4d.features import lifecycle as fl
from s4d.features import lock
from s4d.features.lifecycle import LIFECYCLE, Action, DayClock, LifecycleRule, Position
from s4d.features.multipart import release_upload
from s4d.features.objects import delete_object
from s4d.features.versions import remove_version
from s4d.store.listing import keys_and_prefixes
from s4d.store.model import NULL_VERSION, Bucket, ObjectVersion
from s4d.store.schema import u64, version_key
from s4d.store.txn import MetaTxn
from s4d.store.version_record import decode_version

#: Where the state of the pass in progress is kept (``config`` sub-database).
STATE_KEY = b"lifecycle.sweep"
#: Where the end of the last finished pass is kept.
LAST_KEY = b"lifecycle.last"
VERSIONS, UPLOADS = "versions", "uploads"
#: The phase of a state whose bucket is done: the pass goes on with the next bucket.
NEXT = "next"
#: The figures a pass counts (and logs).
COUNTS = (
    "buckets", "rules", "examined", "expired", "noncurrent_removed", "markers_removed",
    "uploads_aborted", "locked", "changed",
)  # fmt: skip


def may_remove(t: MetaTxn, bucket: Bucket, version: ObjectVersion, now_ns: int) -> bool:
    """May ``version`` be removed now? The one question the sweep asks of object lock.

    Object lock's own predicate (:func:`s4d.features.lock.may_remove`: legal
    hold, retention that still runs; the sweep never bypasses governance) at
    the store's clock, the one every lock decision reads. Every removal the
    sweep makes asks this first, and then goes through
    :func:`~s4d.features.versions.remove_version`, which refuses a locked
    version again.
    """
    return lock.may_remove(version, lock.now_ms(t))


#: The object lock question, as the sweep takes it (tests pass their own).
RemovalCheck = Callable[[MetaTxn, Bucket, ObjectVersion, int], bool]


@dataclass(frozen=True)
class Limits:
    """How much one batch may do.

    :ivar examine: version records (or uploads) read by one plan.
    :ivar actions: verdicts one batch applies.
    """

    examine: int = 1000
    actions: int = 250


@dataclass
class SweepState:
    """Where a pass stands, and what it did so far.

    :ivar bucket: the bucket being swept (None: the pass has not picked one yet).
    :ivar phase: :data:`VERSIONS`, :data:`UPLOADS`, or :data:`NEXT` when ``bucket`` is done.
    :ivar key: the last key examined in this phase (None: none yet).
    :ivar seq: inside ``key``, the last version examined (None: the key is done).
    :ivar newer: versions of ``key`` newer than the next one to examine.
    :ivar since_ns: mtime of the last version of ``key`` examined.
    :ivar upload_id: in the uploads phase, the last upload of ``key`` examined.
    """

    started_ns: int
    bucket: str | None = None
    bucket_id: int = 0
    phase: str = NEXT
    key: str | None = None
    seq: int | None = None
    newer: int = 0
    since_ns: int | None = None
    upload_id: str | None = None
    totals: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The stored form."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> SweepState:
        """Build from the stored form."""
        value = json.loads(raw)
        return cls(**value)

    def at_bucket(self, bucket: Bucket) -> SweepState:
        """This state moved to the start of ``bucket``."""
        return replace(
            self,
            bucket=bucket.name,
            bucket_id=bucket.bucket_id,
            phase=VERSIONS,
            key=None,
            seq=None,
            newer=0,
            since_ns=None,
            upload_id=None,
        )

    def add(self, counts: dict[str, int]) -> SweepState:
        """This state with ``counts`` added to its totals."""
        totals = dict(self.totals)
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
        return replace(self, totals=totals)


@dataclass(frozen=True)
class Planned:
    """One verdict of a plan: what to do to which version (or upload)."""

    action: Action
    key: str
    rule_id: str
    seq: int = 0
    version_id: str = ""
    upload_id: str = ""


@dataclass
class Batch:
    """One plan: the verdicts for a stretch of one bucket, and where the next one starts.

    :ivar rules_raw: the bucket's rules as stored when planned (the apply checks them).
    :ivar finished: the pass is over (nothing was planned).
    """

    state: SweepState
    next_state: SweepState
    rules_raw: bytes = b""
    planned: list[Planned] = field(default_factory=list)
    examined: int = 0
    finished: bool = False
    #: the batch started a bucket (counted once per bucket)
    new_bucket: bool = False
    rules: int = 0
    #: the state the plan started from (planned again from there if the rules changed)
    origin: SweepState | None = None


@dataclass
class Applied:
    """What applying a batch did, and the state to go on from."""

    state: SweepState
    counts: dict[str, int]
    #: the bucket's rules changed since the plan: it is planned again
    replan: bool = False


def load_state(t: MetaTxn) -> SweepState | None:
    """The pass in progress, if one is."""
    raw = t.config.get(STATE_KEY)
    return SweepState.decode(raw) if raw is not None else None


def last_finished(t: MetaTxn) -> int | None:
    """When the last pass ended (ns), if one did."""
    raw = t.config.get(LAST_KEY)
    return int(json.loads(raw)["finished"]) if raw is not None else None


def finish_pass(t: MetaTxn, state: SweepState, now_ns: int) -> None:
    """Record the end of a pass (the next one starts from the beginning)."""
    t.config.put(LAST_KEY, json.dumps({"finished": now_ns, "totals": state.totals}).encode())
    t.txn.delete(STATE_KEY, db=t.dbs.config)


def rules_of(t: MetaTxn, bucket: Bucket) -> bytes | None:
    """A bucket's stored lifecycle rules."""
    return t.bucket_config.get(bucket, LIFECYCLE)


def governed_buckets(t: MetaTxn) -> frozenset[int]:
    """Ids of the buckets whose rules abort incomplete uploads (the fixed TTL spares them)."""
    found = set()
    for bucket in t.buckets.all():
        raw = rules_of(t, bucket)
        if raw is not None and fl.governs_uploads(fl.decode_rules(raw)):
            found.add(bucket.bucket_id)
    return frozenset(found)


# -- planning ------------------------------------------------------------------------------


def _next_bucket(t: MetaTxn, after: str | None) -> tuple[Bucket, bytes] | None:
    """The first bucket (by name) after ``after`` that has lifecycle rules."""
    for bucket in t.buckets.all():
        if after is not None and bucket.name <= after:
            continue
        raw = rules_of(t, bucket)
        if raw is not None:
            return bucket, raw
    return None


def plan_batch(
    t: MetaTxn, state: SweepState, now_ns: int, clock: DayClock, limits: Limits = Limits()
) -> Batch:
    """Plan the next batch of the pass from ``state`` (in a read transaction)."""
    origin = state
    new_bucket = False
    bucket = t.buckets.get(state.bucket) if state.bucket and state.phase != NEXT else None
    raw = rules_of(t, bucket) if bucket is not None else None
    if bucket is None or raw is None or bucket.bucket_id != state.bucket_id:
        found = _next_bucket(t, state.bucket)
        if found is None:
            return Batch(state, state, finished=True)
        bucket, raw = found
        state = state.at_bucket(bucket)
        new_bucket = True
    rules = fl.decode_rules(raw)
    if state.phase == VERSIONS and not fl.version_prefixes(rules):
        state = replace(state, phase=UPLOADS, key=None, seq=None, newer=0, since_ns=None)
    batch = Batch(state, state, raw, new_bucket=new_bucket, rules=len(fl.enabled(rules)))
    batch.origin = origin
    if state.phase == VERSIONS:
        _plan_versions(t, bucket, rules, batch, now_ns, clock, limits)
    else:
        _plan_uploads(t, bucket, rules, batch, now_ns, clock, limits)
    return batch


def _plan_versions(
    t: MetaTxn,
    bucket: Bucket,
    rules: tuple[LifecycleRule, ...],
    batch: Batch,
    now_ns: int,
    clock: DayClock,
    limits: Limits,
) -> None:
    state = batch.state
    cursor = t.versions.cursor()
    probe = t.versions.cursor()
    full = _Budget(limits)

    def examine(object_id: int, key: str, records: Iterator[ObjectVersion], newer: int,
                since: int | None) -> SweepState | None:  # fmt: skip
        """Judge records; the position inside ``key`` if the batch filled up before its end."""
        for version in records:
            alone = (
                newer == 0 and version.delete_marker and not _has_older(probe, object_id, version)
            )
            position = Position(newer, since, alone)
            found = fl.verdict(rules, key, version.tags, version.size, version.mtime_ns,
                               version.delete_marker, position, now_ns, clock)  # fmt: skip
            batch.examined += 1
            if found is not None:
                action, rule_id = found
                batch.planned.append(Planned(action, key, rule_id, version.seq, version.version_id))
            newer += 1
            since = version.mtime_ns
            if full(batch):
                return replace(state, key=key, seq=version.seq, newer=newer, since_ns=since)
        return None

    if state.key is not None and state.seq is not None:
        object_id = t.ns.lookup(bucket, state.key.encode("utf-8"))
        if object_id is not None:
            records = _versions_from(cursor, object_id, state.key, state.seq)
            stopped = examine(object_id, state.key, records, state.newer, state.since_ns)
            if stopped is not None:
                batch.next_state = stopped
                return
        state = replace(state, seq=None, newer=0, since_ns=None)
    after = state.key.encode("utf-8") if state.key is not None else None
    for prefix in fl.version_prefixes(rules):
        for _, raw_key, object_id in keys_and_prefixes(t, bucket, prefix.encode(), None, after):
            key = raw_key.decode("utf-8")
            stopped = examine(object_id, key, _versions_from(cursor, object_id, key), 0, None)
            if stopped is not None:
                batch.next_state = stopped
                return
            if full(batch):
                batch.next_state = replace(state, key=key, seq=None, newer=0, since_ns=None)
                return
    following = UPLOADS if fl.upload_prefixes(rules) else NEXT
    batch.next_state = replace(state, phase=following, key=None, seq=None, newer=0, since_ns=None)


class _Budget:
    """Says when a batch is full."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def __call__(self, batch: Batch) -> bool:
        return batch.examined >= self.limits.examine or len(batch.planned) >= self.limits.actions


def _versions_from(
    cursor: lmdb.Cursor[bytes], object_id: int, key: str, after_seq: int | None = None
) -> Iterator[ObjectVersion]:
    """Version records of ``object_id``, newest first (older than ``after_seq`` if given)."""
    prefix = u64(object_id)
    start = version_key(object_id, after_seq) if after_seq is not None else prefix
    if not cursor.set_range(start):
        return
    if after_seq is not None and cursor.key() == start and not cursor.next():
        return
    while cursor.key().startswith(prefix):
        yield decode_version(cursor.value(), key, chunks=False)
        if not cursor.next():
            return


def _has_older(probe: lmdb.Cursor[bytes], object_id: int, version: ObjectVersion) -> bool:
    """``object_id`` has a version older than ``version``."""
    return (
        probe.set_key(version_key(object_id, version.seq))
        and probe.next()
        and probe.key().startswith(u64(object_id))
    )


def _plan_uploads(
    t: MetaTxn,
    bucket: Bucket,
    rules: tuple[LifecycleRule, ...],
    batch: Batch,
    now_ns: int,
    clock: DayClock,
    limits: Limits,
) -> None:
    state = batch.state
    full = _Budget(limits)
    position = (state.key or "", state.upload_id or "")
    for prefix in fl.upload_prefixes(rules):
        start = max(prefix, state.key or "")
        for upload in t.multipart.uploads(bucket.bucket_id, start.encode("utf-8")):
            if not upload.key.startswith(prefix):
                if upload.key > prefix:
                    break
                continue
            if state.key is not None and (upload.key, upload.upload_id) <= position:
                continue
            batch.examined += 1
            rule_id = fl.upload_verdict(rules, upload.key, upload.initiated_ns, now_ns, clock)
            if rule_id is not None:
                batch.planned.append(
                    Planned(Action.ABORT_UPLOAD, upload.key, rule_id, upload_id=upload.upload_id)
                )
            if full(batch):
                batch.next_state = replace(state, key=upload.key, upload_id=upload.upload_id)
                return
    batch.next_state = replace(state, phase=NEXT, key=None, upload_id=None)


# -- applying ------------------------------------------------------------------------------


def apply_batch(
    t: MetaTxn,
    batch: Batch,
    now_ns: int,
    clock: DayClock,
    dry_run: bool = False,
    removable: RemovalCheck = may_remove,
) -> Applied:
    """Apply a planned batch (or, ``dry_run``, count what it would do); save the position.

    Every verdict is asked again of the version as it stands; one that no
    longer holds is left alone (counted ``changed``), one that object lock
    refuses is left alone (counted ``locked``).
    """
    state = batch.state
    counts = dict.fromkeys(COUNTS, 0)
    counts["examined"] = batch.examined
    bucket = t.buckets.get(state.bucket) if state.bucket else None
    if (
        bucket is None
        or bucket.bucket_id != state.bucket_id
        or rules_of(t, bucket) != batch.rules_raw
    ):
        return Applied(batch.origin or state, dict.fromkeys(COUNTS, 0), replan=True)
    if batch.new_bucket:
        counts["buckets"] = 1
        counts["rules"] = batch.rules
    rules = fl.decode_rules(batch.rules_raw)
    cap = fl.newest_kept(rules)
    for planned in batch.planned:
        if planned.action is Action.ABORT_UPLOAD:
            outcome = _abort(t, bucket, rules, planned, now_ns, clock, dry_run)
        else:
            outcome = _remove(t, bucket, rules, planned, now_ns, clock, cap, dry_run, removable)
        counts[outcome] += 1
    following = batch.next_state.add(counts)
    if not dry_run:
        t.config.put(STATE_KEY, following.encode())
    return Applied(following, counts)


_DONE = {
    Action.EXPIRE: "expired",
    Action.REMOVE_NONCURRENT: "noncurrent_removed",
    Action.REMOVE_MARKER: "markers_removed",
    Action.ABORT_UPLOAD: "uploads_aborted",
}


def _abort(
    t: MetaTxn,
    bucket: Bucket,
    rules: tuple[LifecycleRule, ...],
    planned: Planned,
    now_ns: int,
    clock: DayClock,
    dry_run: bool,
) -> str:
    upload = t.multipart.upload(bucket.bucket_id, planned.key.encode("utf-8"), planned.upload_id)
    if (
        upload is None
        or fl.upload_verdict(rules, upload.key, upload.initiated_ns, now_ns, clock) is None
    ):
        return "changed"
    if not dry_run:
        release_upload(t, upload)
    return _DONE[Action.ABORT_UPLOAD]


def _remove(
    t: MetaTxn,
    bucket: Bucket,
    rules: tuple[LifecycleRule, ...],
    planned: Planned,
    now_ns: int,
    clock: DayClock,
    cap: int,
    dry_run: bool,
    removable: RemovalCheck,
) -> str:
    raw_key = planned.key.encode("utf-8")
    object_id = t.ns.lookup(bucket, raw_key)
    if object_id is None:
        return "changed"
    found = _as_it_stands(t, object_id, planned, cap)
    if found is None:
        return "changed"
    version, position, older = found
    judged = fl.verdict(rules, planned.key, version.tags, version.size, version.mtime_ns,
                        version.delete_marker, position, now_ns, clock)  # fmt: skip
    if judged is None or judged[0] is not planned.action:
        return "changed"
    if planned.action is Action.EXPIRE:
        # What goes: on an unversioned bucket every version; on a suspended one the null
        # version the new delete marker replaces; on an enabled one nothing.
        going = [version] if not older else t.versions.all(object_id, planned.key)
        if bucket.versioning == "Enabled":
            going = []
        elif bucket.versioning == "Suspended":
            going = [v for v in going if v.version_id == NULL_VERSION]
        if not all(removable(t, bucket, v, now_ns) for v in going):
            return "locked"
        if dry_run:
            return _DONE[Action.EXPIRE]
        if bucket.versioning is None:
            for gone in going:
                remove_version(t, object_id, gone)
            t.ns.unlink(bucket, raw_key)
        else:
            delete_object(t, bucket.name, planned.key, None, now_ns)
        return _DONE[Action.EXPIRE]
    if not removable(t, bucket, version, now_ns):
        return "locked"
    if not dry_run:
        remove_version(t, object_id, version)
        if t.versions.current(object_id) is None:
            t.ns.unlink(bucket, raw_key)
    return _DONE[planned.action]


def _as_it_stands(
    t: MetaTxn, object_id: int, planned: Planned, cap: int
) -> tuple[ObjectVersion, Position, bool] | None:
    """The planned version as stored now, its position, and whether older versions exist.

    None if it is gone.
    """
    prefix = u64(object_id)
    cursor = t.versions.cursor()
    if not cursor.set_key(version_key(object_id, planned.seq)):
        return None
    version = decode_version(cursor.value(), planned.key)
    if version.version_id != planned.version_id:
        return None
    older = cursor.next() and cursor.key().startswith(prefix)
    cursor.set_key(version_key(object_id, planned.seq))
    newer = 0
    since: int | None = None
    while newer < cap and cursor.prev() and cursor.key().startswith(prefix):
        if newer == 0:
            since = decode_version(cursor.value(), chunks=False).mtime_ns
        newer += 1
    return version, Position(newer, since, newer == 0 and not older), bool(older)


def totals_line(totals: dict[str, Any]) -> dict[str, int]:
    """Every figure of :data:`COUNTS` (zeros for those a pass never touched)."""
    return {name: int(totals.get(name, 0)) for name in COUNTS}
