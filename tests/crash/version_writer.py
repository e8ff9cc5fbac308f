"""The worker of the version crash campaign: puts and deletes versions over HTTP, with a model.

A :class:`VersionWorker` thread owns the keys under one prefix of a versioned
bucket and runs, until stopped, PUTs (new versions), DeleteObject without a
version id (a new delete marker), DeleteObject with the id of a version or of a
delete marker (``null`` included: the keys start with versions written before
versioning was enabled), DeleteObjects mixing both kinds of entries (and an id
no version has), and GETs by version id checked against its
:class:`VersionModel`.

The model: the worker is the only writer of its prefix and its operations are
sequential, so after each acknowledged answer the versions of every key (ids,
newest first, and the SHA-256 of each version's bytes) are known exactly.
Before a request is sent its effects are recorded as *pending*: versions it
creates (one per key at most) and version ids it removes. Each effect is
independent: DeleteObjects commits each entry on its own, as S3 allows, so a
kill may leave any subset of them done, but never a part of one. An answer
folds the effects it acknowledges into the state. After a crash
(:meth:`VersionModel.settle`) every key must hold its acknowledged versions in
order, less only versions whose removal was pending, plus at most one new
version on top where a creation was pending. Anything else is a loss.
:func:`read_versions` reads what the server holds and checks on the way that
the listing, GET without a version id and ListObjectsV2 all agree that the
current version is the newest surviving one.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field

from s4d.bench.workload import S3_NS, Blobs, S3Http, ServerGroup, sha256

#: The "content" of a delete marker in the model.
MARKER = "marker"
#: A well-formed version id that no version has (s4d's ids are 32 hex digits).
NO_SUCH_VERSION = "0" * 32


@dataclass(frozen=True)
class Ver:
    """One version: its id and the SHA-256 of its bytes (:data:`MARKER` for a delete marker)."""

    vid: str
    sha: str

    def __str__(self) -> str:
        return f"{self.vid[:16]}={'marker' if self.sha == MARKER else self.sha[:8]}"


Versions = dict[str, list[Ver]]


def _show(versions: list[Ver]) -> str:
    return "[" + ", ".join(map(str, versions)) + "]"


@dataclass
class VersionModel:
    """The known versions of one worker's keys, and the effects of the request in flight."""

    prefix: str
    #: key -> its versions, newest first (keys without versions are absent)
    state: Versions = field(default_factory=dict)
    #: pending creations: key -> SHA-256 of the new version's bytes, or MARKER
    creates: dict[str, str] = field(default_factory=dict)
    #: pending removals: key -> version ids
    removes: dict[str, set[str]] = field(default_factory=dict)
    op: str = ""
    #: pending effects found done ("landed") or not done ("not landed") by :meth:`settle`
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def pending(self) -> bool:
        """True while some effect of the last request is undecided."""
        return bool(self.creates or self.removes)

    def begin(self, op: str, creates: dict[str, str], removes: dict[str, set[str]]) -> None:
        """Record a request's effects before it is sent."""
        assert not self.pending, f"{self.prefix}: two requests in flight"
        self.op = op
        self.creates = dict(creates)
        self.removes = {k: set(v) for k, v in removes.items() if v}

    def created(self, key: str, vid: str) -> None:
        """The server acknowledged the new version of ``key``: it has id ``vid``."""
        sha = self.creates.pop(key)
        self.state.setdefault(key, []).insert(0, Ver(vid, sha))

    def removed(self, key: str, vid: str) -> None:
        """The server acknowledged the removal of version ``vid`` of ``key``."""
        pending = self.removes.get(key, set())
        pending.discard(vid)
        if not pending:
            self.removes.pop(key, None)
        kept = [v for v in self.state.get(key, []) if v.vid != vid]
        if kept:
            self.state[key] = kept
        else:
            self.state.pop(key, None)

    def settle(self, found: Versions) -> list[str]:
        """Take the versions found on the server; return what contradicts the model.

        Each key must hold its acknowledged versions in order, except versions
        whose removal was pending, below at most one version the model does not
        know, allowed only where a creation was pending and only with the
        pending content. ``found`` is adopted either way (a loss counts once).
        """
        problems: list[str] = []
        keys = set(self.state) | set(found) | set(self.creates) | set(self.removes)
        for key in sorted(keys):
            expected = self.state.get(key, [])
            got = list(found.get(key, []))
            known = {v.vid for v in expected}
            if got and got[0].vid not in known and key in self.creates:
                new = got.pop(0)
                self.outcomes["landed"] += 1
                if new.sha != self.creates[key]:
                    problems.append(
                        f"{key}: the new version {new} is not the one in flight "
                        f"({self.op}: {self.creates[key][:8]})"
                    )
            elif key in self.creates:
                self.outcomes["not landed"] += 1
            got_ids = {v.vid for v in got}
            may_go = self.removes.get(key, set())
            for vid in may_go & known:
                self.outcomes["not landed" if vid in got_ids else "landed"] += 1
            wanted = [v for v in expected if v.vid in got_ids]
            lost = [v for v in expected if v.vid not in got_ids and v.vid not in may_go]
            if got != wanted or lost:
                problems.append(
                    f"{key}: found {_show(found.get(key, []))}, acknowledged {_show(expected)}"
                    + (
                        f", in flight ({self.op}) +{self.creates.get(key, '')[:8]}"
                        f" -{sorted(may_go)}"
                        if key in self.creates or may_go
                        else ""
                    )
                )
        self.state = {k: list(v) for k, v in found.items() if v}
        self.creates, self.removes, self.op = {}, {}, ""
        return problems


# -- reading the server ----------------------------------------------------------------------


def list_versions(
    client: S3Http, bucket: str, prefix: str, page: int = 1000
) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is a delete marker) of every version under ``prefix``.

    Paged with ``page`` entries a page, following the next key and version id markers.
    """
    out: list[tuple[str, str, bool, bool]] = []
    markers: list[tuple[str, str]] = []
    while True:
        query = [("versions", ""), ("prefix", prefix), ("max-keys", str(page)), *markers]
        r = client.request("GET", bucket, "", query)
        if r.status != 200:
            raise RuntimeError(f"ListObjectVersions {prefix!r}: {r.status} {r.error_text()}")
        root = ET.fromstring(r.body)
        for child in root:
            if child.tag in (f"{S3_NS}Version", f"{S3_NS}DeleteMarker"):
                out.append(
                    (
                        child.findtext(f"{S3_NS}Key") or "",
                        child.findtext(f"{S3_NS}VersionId") or "",
                        child.findtext(f"{S3_NS}IsLatest") == "true",
                        child.tag == f"{S3_NS}DeleteMarker",
                    )
                )
        if root.findtext(f"{S3_NS}IsTruncated") != "true":
            return out
        markers = [
            ("key-marker", root.findtext(f"{S3_NS}NextKeyMarker") or ""),
            ("version-id-marker", root.findtext(f"{S3_NS}NextVersionIdMarker") or ""),
        ]


def read_versions(
    client: S3Http, bucket: str, prefix: str, keys: set[str] | None = None, page: int = 1000
) -> tuple[Versions, list[str]]:
    """The versions under ``prefix`` (only of ``keys`` if given), and inconsistencies found.

    Every version's bytes are read by id. For each key the listing must mark
    exactly its newest version as latest, GET without a version id must answer
    that version (404 with ``x-amz-delete-marker`` if it is a marker), and, when
    the whole prefix is read, ListObjectsV2 must list exactly the keys whose
    newest version is not a marker.
    """
    problems: list[str] = []
    found: Versions = {}
    latest: dict[str, str] = {}
    for key, vid, is_latest, marker in list_versions(client, bucket, prefix, page):
        if keys is not None and key not in keys:
            continue
        if is_latest:
            if key in latest or key in found:
                problems.append(f"{key}: {vid} is marked latest but is not the newest")
            latest[key] = vid
        sha = MARKER
        if not marker:
            r = client.request("GET", bucket, key, [("versionId", vid)])
            if r.status != 200:
                raise RuntimeError(f"GET {key} version {vid}: {r.status} {r.error_text()}")
            sha = sha256(r.body)
        found.setdefault(key, []).append(Ver(vid, sha))
    for key, versions in found.items():
        newest = versions[0]
        if latest.get(key) != newest.vid:
            problems.append(f"{key}: the listing marks {latest.get(key)} latest, not {newest.vid}")
        r = client.request("GET", bucket, key)
        answered = r.headers.get("x-amz-version-id")
        if newest.sha == MARKER:
            if r.status != 404 or r.headers.get("x-amz-delete-marker") != "true":
                problems.append(
                    f"{key}: newest is the marker {newest.vid}, GET answered {r.status}"
                )
        elif r.status != 200 or sha256(r.body) != newest.sha:
            problems.append(f"{key}: newest is {newest}, GET answered {r.status}")
        if answered != newest.vid:
            problems.append(f"{key}: GET names version {answered}, the newest is {newest.vid}")
    if keys is None:
        listed = set(client.list_keys(bucket, prefix))
        live = {k for k, v in found.items() if v[0].sha != MARKER}
        if listed != live:
            problems.append(
                f"{prefix}: ListObjectsV2 lists {sorted(listed ^ live)} wrongly "
                f"(listed {len(listed)}, live {len(live)})"
            )
    return found, problems


# -- the worker ----------------------------------------------------------------------------


@dataclass
class VersionMix:
    """Relative weights of the operations."""

    put: int = 45
    delete_marker: int = 14
    delete_version: int = 24
    delete_objects: int = 20
    get: int = 8
    #: a key holding more versions than this is trimmed rather than grown
    max_versions: int = 8
    reconnect_chance: float = 0.05


class VersionWorker(threading.Thread):
    """One writer of one prefix of a versioned bucket, until stopped.

    :param stop: set to end the run (after the request in progress).
    :param killed: set (with ``stop``) when the server was killed: a broken
        connection then ends the worker, leaving its request's effects pending.
    """

    def __init__(
        self,
        server: ServerGroup,
        bucket: str,
        model: VersionModel,
        keys: list[str],
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
        blobs: Blobs,
        mix: VersionMix | None = None,
    ) -> None:
        super().__init__(name=f"worker {model.prefix}", daemon=True)
        self.client: S3Http = server.client()
        self.bucket = bucket
        self.model = model
        self.keys = keys
        self.rng = random.Random(seed)
        self.stop = stop
        self.killed = killed
        self.blobs = blobs
        self.mix = mix or VersionMix()
        self.acked: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        #: answers that contradict the model (a wrong version read, a wrong header)
        self.wrong: list[str] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        ops = ["put", "delete_marker", "delete_version", "delete_objects", "get"]
        weights = [getattr(self.mix, op) for op in ops]
        try:
            while not self.stop.is_set():
                op = self.rng.choices(ops, weights)[0]
                if self.rng.random() < self.mix.reconnect_chance:
                    self.client.close()
                try:
                    getattr(self, "op_" + op)()
                except (OSError, http.client.HTTPException) as e:
                    if self.killed.is_set():
                        return
                    self.errors[f"{op} connection {type(e).__name__}"] += 1
                    self.resolve()
        except BaseException as e:  # noqa: BLE001 - reported by the driver
            if not self.killed.is_set():
                self.failure = e
        finally:
            self.client.close()

    # -- helpers -----------------------------------------------------------------------

    def _content(self) -> bytes:
        choice = self.rng.random()
        if choice < 0.2:
            return self.blobs.pick(self.rng)  # shared with other versions: deduplicated
        if choice < 0.23:
            return self.rng.randbytes(self.rng.randrange(1 << 20, 3 << 20))  # several chunks
        return self.rng.randbytes(self.rng.choice([0, 1, self.rng.randrange(1, 20_000)]))

    def _some_version(self) -> tuple[str, Ver] | None:
        """A random existing version (or marker), weighted toward crowded keys."""
        keys = [k for k in self.keys if self.model.state.get(k)]
        if not keys:
            return None
        crowded = [k for k in keys if len(self.model.state[k]) > self.mix.max_versions]
        key = self.rng.choice(crowded or keys)
        versions = self.model.state[key]
        # The newest half the time: removing it changes which version is current.
        version = versions[0] if self.rng.random() < 0.5 else self.rng.choice(versions)
        return key, version

    def _undecided(self, op: str, what: str) -> None:
        self.errors[f"{op} {what}"] += 1
        self.resolve()

    def resolve(self) -> None:
        """Decide a request's pending effects by reading the keys it touched."""
        if not self.model.pending:
            return
        keys = set(self.model.creates) | set(self.model.removes)
        for _attempt in range(20):
            try:
                found, problems = read_versions(self.client, self.bucket, self.model.prefix, keys)
                break
            except (OSError, http.client.HTTPException, RuntimeError):
                if self.killed.is_set() or self.stop.is_set():
                    return  # left open for the driver
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.model.prefix}: cannot read keys to resolve an error")
        found.update({k: v for k, v in self.model.state.items() if k not in keys})
        self.wrong += problems + self.model.settle(found)

    # -- operations --------------------------------------------------------------------

    def op_put(self) -> None:
        crowded = [k for k in self.keys if len(self.model.state.get(k, [])) > self.mix.max_versions]
        if crowded:
            return self.op_delete_version()
        key = self.rng.choice(self.keys)
        data = self._content()
        self.model.begin("put", {key: sha256(data)}, {})
        r = self.client.put(self.bucket, key, data)
        vid = r.headers.get("x-amz-version-id", "")
        if r.status != 200 or not vid:
            return self._undecided("put", f"{r.status} {r.error_text()}")
        self.model.created(key, vid)
        self.acked["put"] += 1
        return None

    def op_delete_marker(self) -> None:
        key = self.rng.choice(self.keys)
        self.model.begin("delete (marker)", {key: MARKER}, {})
        r = self.client.delete(self.bucket, key)
        vid = r.headers.get("x-amz-version-id", "")
        if r.status != 204 or r.headers.get("x-amz-delete-marker") != "true" or not vid:
            return self._undecided("delete-marker", f"{r.status} {r.error_text()}")
        self.model.created(key, vid)
        self.acked["delete-marker"] += 1
        return None

    def op_delete_version(self) -> None:
        picked = self._some_version()
        if picked is None:
            return self.op_put()
        key, version = picked
        self.model.begin("delete version", {}, {key: {version.vid}})
        r = self.client.request("DELETE", self.bucket, key, [("versionId", version.vid)])
        if r.status != 204:
            return self._undecided("delete-version", f"{r.status} {r.error_text()}")
        marker = version.sha == MARKER
        if (r.headers.get("x-amz-delete-marker") == "true") != marker or r.headers.get(
            "x-amz-version-id"
        ) != version.vid:
            self.wrong.append(f"DELETE {key}?versionId={version.vid}: headers {r.headers}")
        self.model.removed(key, version.vid)
        self.acked["delete-marker-by-id" if marker else "delete-version"] += 1
        return None

    def op_delete_objects(self) -> None:
        entries: list[tuple[str, str | None]] = []
        creates: dict[str, str] = {}
        removes: dict[str, set[str]] = {}
        for _ in range(self.rng.randint(2, 6)):
            choice = self.rng.random()
            picked = self._some_version() if choice < 0.6 else None
            if picked is not None:
                key, version = picked
                if version.vid not in removes.get(key, set()):
                    entries.append((key, version.vid))
                    removes.setdefault(key, set()).add(version.vid)
            elif choice < 0.93:
                key = self.rng.choice(self.keys)
                if key not in creates:
                    entries.append((key, None))
                    creates[key] = MARKER
            else:
                key = self.rng.choice(self.keys)
                if NO_SUCH_VERSION not in removes.get(key, set()):
                    entries.append((key, NO_SUCH_VERSION))
                    removes.setdefault(key, set()).add(NO_SUCH_VERSION)
        if not entries:
            return self.op_put()
        self.model.begin("DeleteObjects", creates, removes)
        objects = "".join(
            f"<Object><Key>{_xml(k)}</Key>"
            + (f"<VersionId>{v}</VersionId>" if v else "")
            + "</Object>"
            for k, v in entries
        )
        body = f"<Delete>{objects}</Delete>".encode()
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        r = self.client.request(
            "POST", self.bucket, "", [("delete", "")], {"content-md5": md5}, body
        )
        if r.status != 200:
            return self._undecided("delete-objects", f"{r.status} {r.error_text()}")
        root = ET.fromstring(r.body)
        for deleted in root.iter(f"{S3_NS}Deleted"):
            key = deleted.findtext(f"{S3_NS}Key") or ""
            vid = deleted.findtext(f"{S3_NS}VersionId")
            if vid is not None:
                self.model.removed(key, vid)
            elif deleted.findtext(f"{S3_NS}DeleteMarker") == "true":
                self.model.created(key, deleted.findtext(f"{S3_NS}DeleteMarkerVersionId") or "")
            else:
                self.wrong.append(f"DeleteObjects: {ET.tostring(deleted)!r} is neither")
        if self.model.pending:
            return self._undecided("delete-objects", "entries with <Error>")
        self.acked["delete-objects"] += 1
        self.acked["delete-objects entries"] += len(entries)
        return None

    def op_get(self) -> None:
        picked = self._some_version()
        if picked is None:
            return
        key, version = picked
        r = self.client.request("GET", self.bucket, key, [("versionId", version.vid)])
        if version.sha == MARKER:
            ok = r.status == 405 and r.headers.get("x-amz-delete-marker") == "true"
        else:
            ok = r.status == 200 and sha256(r.body) == version.sha
        if ok:
            self.acked["get"] += 1
        else:
            self.wrong.append(f"GET {key}?versionId={version}: {r.status} {r.error_text()}")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
