"""RenameObject as a transaction function: a key, or a whole prefix, moves in one step.

A key rename unlinks the entry at the old name and links the same object id at
the new one, so every version and delete marker goes along (versions are keyed
by object id, not by name). A prefix rename (a source ending in ``/``) moves one
directory entry of the namespace tree: the work is proportional to the depth of
the two names, not to the number of keys below them. Both happen inside one
LMDB write transaction, so readers see the old names or the new ones, never a
mix, and a crash leaves one or the other.

Rules, checked before anything changes (any error leaves the store untouched,
because the committer aborts the operation's nested transaction):

* source and destination are in the same bucket; names are 1 to 1024 bytes;
* a key rename onto an existing key keeps that key's history below the moved
  versions, and the moved ``null`` version (if any) replaces the destination's,
  so in an unversioned bucket it is an overwrite, as PutObject's would be;
* a prefix renames to a prefix, never into itself, and never onto a prefix that
  already holds keys unless ``merge`` is asked for: then subtrees the
  destination lacks move whole and directories both sides have are merged entry
  by entry (time grows with those shared directories), and any key present on
  both sides with a live current version makes the whole rename fail;
* the 1024-byte key limit holds for every renamed key: checked against the
  moved directory's length bound (:func:`s4d.store.txn.entry_bound`);
* a client token makes a retried rename succeed without renaming twice; a token
  reused with other parameters is ``IdempotencyParameterMismatch``;
* object lock: a rename never takes a locked version away from its name. In a
  bucket with object lock, a rename is refused (``AccessDenied``) when any
  version it would move is locked (:func:`s4d.features.lock.may_remove`;
  ``x-amz-bypass-governance-retention: true`` overrides GOVERNANCE retention,
  as for a delete), and so is one that would replace a locked ``null``
  version at the destination. A prefix rename in such a bucket therefore
  reads every version below the prefix (time grows with their number); in a
  bucket without object lock no version can be locked and a prefix rename
  stays one entry move.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from s4d.errors import S3Error
from s4d.features.lock import check_removable, now_ms
from s4d.features.versions import MAX_KEY_BYTES, check_key, remove_version
from s4d.store.model import NULL_VERSION, Bucket, ObjectVersion
from s4d.store.schema import ENTRY_OBJECT, U16, entry_id
from s4d.store.txn import MetaTxn
from s4d.store.views.namespace import dir_entry, entry_bound, split_key

#: Longest client token AWS accepts (ASCII 33-126).
MAX_TOKEN_LENGTH = 64
#: How long a client token is remembered.
TOKEN_TTL_NS = 15 * 60 * 1_000_000_000
#: Expired tokens forgotten per rename that records one (keeps the table bounded).
TOKEN_EXPIRY_BATCH = 8
#: Entries a merge reads from one source directory at a time.
MERGE_BATCH = 1000


@dataclass(frozen=True)
class RenameConditions:
    """Preconditions on the destination (``If-*``) and the source (``x-amz-rename-source-if-*``).

    Times are seconds since the epoch.
    """

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: int | None = None
    if_unmodified_since: int | None = None
    source_if_match: str | None = None
    source_if_none_match: str | None = None
    source_if_modified_since: int | None = None
    source_if_unmodified_since: int | None = None

    def only_if_absent(self) -> bool:
        """True when nothing but ``If-None-Match: *`` is asked (all a prefix rename takes)."""
        rest = asdict(self)
        star = rest.pop("if_none_match")
        return (star is None or star.strip() == "*") and all(v is None for v in rest.values())


@dataclass(frozen=True)
class Rename:
    """One RenameObject request."""

    bucket: str
    destination: str
    source_bucket: str
    source: str
    merge: bool = False
    conditions: RenameConditions = field(default_factory=RenameConditions)
    client_token: str | None = None
    #: ``x-amz-bypass-governance-retention: true``: GOVERNANCE retention does not stop it
    bypass_governance: bool = False

    def fingerprint(self) -> str:
        """What a retry with the same client token must repeat exactly."""
        fields = asdict(self)
        del fields["client_token"]
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class RenameOutcome:
    """What a rename did."""

    #: a whole prefix moved (the source ended in ``/``)
    prefix: bool
    #: answered from the client token table: this retry renamed nothing
    replayed: bool = False


def check_client_token(token: str | None) -> bytes | None:
    """The token as bytes; ``InvalidArgument`` unless it is 1-64 ASCII characters 33-126."""
    if token is None:
        return None
    if not 0 < len(token) <= MAX_TOKEN_LENGTH or not all(33 <= ord(c) <= 126 for c in token):
        raise S3Error(
            "InvalidArgument",
            "The client token must be 1 to 64 printable ASCII characters.",
            ArgumentName="x-amz-client-token",
        )
    return token.encode("ascii")


def rename(t: MetaTxn, request: Rename, now_ns: int) -> RenameOutcome:
    """Rename a key, or every key under a prefix, inside transaction ``t``."""
    bucket = t.buckets.require(request.bucket)
    if request.source_bucket != request.bucket:
        raise S3Error(
            "InvalidRequest",
            f"RenameObject renames within one bucket: the source is in bucket "
            f"{request.source_bucket!r}, the destination in {request.bucket!r}.",
        )
    source = check_key(request.source)
    destination = check_key(request.destination)
    is_prefix = source.endswith(b"/")
    token = check_client_token(request.client_token)
    fingerprint = request.fingerprint()
    if token is not None:
        record = t.tokens.get(token)
        if record is not None and record["t"] >= now_ns - TOKEN_TTL_NS:
            if record["fp"] != fingerprint:
                raise S3Error("IdempotencyParameterMismatch")
            return RenameOutcome(is_prefix, replayed=True)
    if is_prefix:
        _rename_prefix(t, bucket, source, destination, request)
    else:
        _rename_key(t, bucket, source, destination, request)
    if token is not None:
        t.tokens.expire(now_ns - TOKEN_TTL_NS, TOKEN_EXPIRY_BATCH)
        t.tokens.put(token, {"fp": fingerprint}, now_ns)
    return RenameOutcome(is_prefix)


# -- one key ----------------------------------------------------------------------------


def _rename_key(t: MetaTxn, bucket: Bucket, source: bytes, destination: bytes, r: Rename) -> None:
    if source == destination:
        raise S3Error("InvalidRequest", "The source and the destination of a rename are the same.")
    source_id = t.ns.lookup(bucket, source)
    current = t.versions.current(source_id) if source_id is not None else None
    if source_id is None or current is None or current.delete_marker:
        raise S3Error("NoSuchKey", Key=r.source)
    check_source(current, r.conditions)
    target_id = t.ns.lookup(bucket, destination)
    target = t.versions.current(target_id) if target_id is not None else None
    check_destination(target, r.conditions)
    if bucket.object_lock:
        _check_movable(t, [source_id], r.bypass_governance)
    t.ns.unlink(bucket, source)
    if target_id is None:
        t.ns.link(bucket, destination, source_id)
    else:
        _stack_versions(t, source_id, target_id, r.bypass_governance)


def _check_movable(t: MetaTxn, object_ids: Iterable[int], bypass_governance: bool) -> None:
    """``AccessDenied`` if a version of these objects is locked (a rename may not move it)."""
    now = now_ms(t)
    for object_id in object_ids:
        for version in t.versions.all(object_id):
            check_removable(version, now, bypass_governance)


def _stack_versions(
    t: MetaTxn, source_id: int, target_id: int, bypass_governance: bool = False
) -> None:
    """Move every version of ``source_id`` on top of ``target_id``'s.

    A moved ``null`` version replaces the target's (its bytes are released;
    ``AccessDenied`` if that one is locked).
    """
    versions = t.versions.all(source_id)
    if any(v.version_id == NULL_VERSION for v in versions):
        for old in t.versions.all(target_id):
            if old.version_id == NULL_VERSION:
                remove_version(t, target_id, old, bypass_governance)
    t.versions.move(source_id, target_id, versions)


def _matches(header: str, etag: str) -> bool:
    wanted = {v.strip().strip('"') for v in header.split(",")}
    return "*" in wanted or etag.strip('"') in wanted


def check_source(version: ObjectVersion, c: RenameConditions) -> None:
    """The ``x-amz-rename-source-if-*`` conditions against the source's current version."""
    seconds = version.mtime_ns // 1_000_000_000
    if c.source_if_match is not None and not _matches(c.source_if_match, version.etag):
        raise S3Error("PreconditionFailed", Condition="x-amz-rename-source-if-match")
    if c.source_if_none_match is not None and _matches(c.source_if_none_match, version.etag):
        raise S3Error("PreconditionFailed", Condition="x-amz-rename-source-if-none-match")
    if c.source_if_modified_since is not None and seconds <= c.source_if_modified_since:
        raise S3Error("PreconditionFailed", Condition="x-amz-rename-source-if-modified-since")
    if c.source_if_unmodified_since is not None and seconds > c.source_if_unmodified_since:
        raise S3Error("PreconditionFailed", Condition="x-amz-rename-source-if-unmodified-since")


def check_destination(version: ObjectVersion | None, c: RenameConditions) -> None:
    """``If-Match``, ``If-None-Match``, ``If-(Un)Modified-Since`` against the destination.

    A destination whose current version is a delete marker does not exist. Every
    failed condition is ``PreconditionFailed`` (``If-Match`` or
    ``If-Modified-Since`` on a destination that does not exist too).
    """
    live = version if version is not None and not version.delete_marker else None
    if c.if_none_match is not None and live is not None and _matches(c.if_none_match, live.etag):
        raise S3Error("PreconditionFailed", Condition="If-None-Match")
    if c.if_match is not None and (live is None or not _matches(c.if_match, live.etag)):
        raise S3Error("PreconditionFailed", Condition="If-Match")
    seconds = live.mtime_ns // 1_000_000_000 if live is not None else None
    if c.if_modified_since is not None and (seconds is None or seconds <= c.if_modified_since):
        raise S3Error("PreconditionFailed", Condition="If-Modified-Since")
    unmodified = c.if_unmodified_since
    if unmodified is not None and seconds is not None and seconds > unmodified:
        raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")


# -- a prefix ---------------------------------------------------------------------------


def _rename_prefix(
    t: MetaTxn, bucket: Bucket, source: bytes, destination: bytes, r: Rename
) -> None:
    if not destination.endswith(b"/"):
        raise S3Error(
            "InvalidArgument",
            "A prefix (a source ending in '/') can only be renamed to a prefix ending in '/'.",
            ArgumentName="x-amz-rename-source",
        )
    if not r.conditions.only_if_absent():
        raise S3Error(
            "InvalidRequest",
            "Conditions other than If-None-Match: * apply to single-object renames only.",
        )
    if destination.startswith(source):
        raise S3Error(
            "InvalidRequest", "The destination prefix is the source prefix or lies inside it."
        )
    root = bucket.root_dir
    source_path, _ = split_key(source)
    value = t.ns.detach(root, source_path)
    if value is None:
        raise S3Error("NoSuchKey", "No key starts with the source prefix.", Key=r.source)
    moved_id = entry_id(value)
    if bucket.object_lock:
        _check_movable(t, t.ns.objects_below(moved_id), r.bypass_governance)
    bound = entry_bound(value)
    if bound is None:  # written before entries had bounds: measure it once
        bound = t.ns.longest_below(moved_id)
        value = dir_entry(value[:1], moved_id, bound)
    longest = len(destination) + bound
    if longest > MAX_KEY_BYTES:
        raise S3Error(
            "KeyTooLongError",
            f"Renaming the prefix would make a key {longest} bytes long; the limit is "
            f"{MAX_KEY_BYTES}.",
        )
    target_path, _ = split_key(destination)
    target = t.ns.resolve_dirs(root, target_path)
    if target is None:
        t.ns.attach(root, target_path, value, longest)
        return
    if not r.merge:
        raise S3Error(
            "DestinationAlreadyExists",
            "The destination prefix already holds keys; send x-amz-rename-merge: true to "
            "merge into it.",
            Key=r.destination,
        )
    t.ns.make_dirs(root, target_path, longest)  # raises the bounds on the way
    _merge(t, moved_id, target[-1], destination, bound, r.bypass_governance)


def _merge(
    t: MetaTxn,
    source_dir: int,
    target_dir: int,
    prefix: bytes,
    bound: int,
    bypass_governance: bool = False,
) -> None:
    """Move every entry of the (detached) ``source_dir`` subtree into ``target_dir``.

    An entry the target lacks moves whole (a directory with everything below
    it); directories present on both sides are merged in turn; a key present on
    both sides is refused if the target's is live, else stacked on top of it.
    """
    stack = [(source_dir, target_dir, prefix, bound)]
    while stack:
        src, dst, path, limit = stack.pop()
        while batch := t.ns.entries(src, MERGE_BATCH):
            for name, value in batch:
                t.ns.remove_entry(src, name)
                there = t.ns.entry_value(dst, name)
                if there is None:
                    t.ns.put_entry(dst, name, value)
                    continue
                if value[:1] != there[:1]:
                    raise S3Error("InternalError", "Namespace entries of different kinds collide.")
                src_id, dst_id = entry_id(value), entry_id(there)
                if value[:1] == ENTRY_OBJECT:
                    current = t.versions.current(dst_id)
                    if current is not None and not current.delete_marker:
                        raise S3Error(
                            "DestinationAlreadyExists",
                            "A key being merged already exists at the destination.",
                            Key=(path + name).decode("utf-8"),
                        )
                    _stack_versions(t, src_id, dst_id, bypass_governance)
                    continue
                below = entry_bound(value)
                if below is None:
                    below = max(0, limit - len(name))
                there_bound = entry_bound(there)
                if there_bound is not None and there_bound < below:
                    t.ns.put_entry(dst, name, there[:9] + U16.pack(below))
                stack.append((src_id, dst_id, path + name, below))
