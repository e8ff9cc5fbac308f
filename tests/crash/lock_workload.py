"""Object lock under fire: a worker that locks, unlocks and deletes versions, with an exact model.

Used by :mod:`tests.crash.test_crash_lock`. A :class:`LockWorker` owns the keys
under one prefix of a bucket with object lock and runs, over one
:class:`~s4d.bench.workload.S3Http` connection, PUTs (some with
``x-amz-object-lock-*`` headers: short retention of 1-4 s that runs out during
the campaign, long retention, legal holds), PutObjectRetention (extending,
shortening, removing, changing the mode, with and without
``x-amz-bypass-governance-retention``), PutObjectLegalHold, DeleteObject with a
version id, DeleteObjects of a few versions, and delete markers.

The model (:class:`LockModel`) records every version the server acknowledged
with its content, its place among the key's versions and its lock, and the one
operation in flight. Time matters: whether a version is locked depends on when
the server decides, which lies between the moment a request was sent and the
moment its answer came (or the kill). A decision is checked against the model
only where that window leaves no doubt, and a refusal or acceptance that
contradicts the model there is reported (:attr:`LockWorker.wrong`): above all a
locked version that was removed. After a crash :meth:`LockModel.settle`
compares what the restarted server holds with the model: every acknowledged
version is there (or was the target of the delete in flight, and was not
locked when the server was killed), every acknowledged retention and legal
hold is there (or the one in flight), nothing else appeared, and each key's
versions are listed newest first with the newest as the latest.
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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from s4d.bench.workload import S3_NS, S3Http, sha256

GOVERNANCE, COMPLIANCE = "GOVERNANCE", "COMPLIANCE"
BYPASS = {"x-amz-bypass-governance-retention": "true"}
#: Slack (ms) added to a window before a decision is taken as certain.
SLACK_MS = 50


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def parse_iso(text: str) -> int:
    when = datetime.fromisoformat(text)
    return round(when.timestamp() * 1000)


@dataclass(frozen=True)
class Lock:
    """A version's retention and legal hold, as the model keeps them."""

    mode: str | None = None
    until: int | None = None  # ms
    hold: bool | None = None

    def surely_locked(self, after: int, bypass: bool = False) -> bool:
        """Locked whenever the server decided, if it decided at or after ``after`` (ms)...

        ...and before the retention's end could have been reached: callers pass
        the latest moment the decision could have been made.
        """
        if self.hold:
            return True
        if self.mode is None or self.until is None:
            return False
        return self.until > after + SLACK_MS and not (self.mode == GOVERNANCE and bypass)

    def surely_free(self, before: int, bypass: bool = False) -> bool:
        """Not locked whenever the server decided, if it decided at or after ``before``."""
        if self.hold:
            return False
        if self.mode is None or self.until is None:
            return True
        return self.until <= before or (self.mode == GOVERNANCE and bypass)


@dataclass
class Version:
    """One version (or delete marker) the server acknowledged."""

    key: str
    sha: str  # "" for a delete marker
    order: int  # creation order within the worker: later is newer
    lock: Lock = field(default_factory=Lock)

    @property
    def marker(self) -> bool:
        return self.sha == ""


@dataclass
class Pending:
    """The operation in flight.

    ``kind``: ``put`` or ``marker`` (a version whose id is not known yet:
    ``key``, ``sha``, ``lock``), ``retention`` or ``hold`` (``ids[0]`` gets
    ``lock``), ``delete`` (the versions ``ids``, each of which may go on its
    own, ``bypass`` as sent).
    """

    kind: str
    sent: int  # ms
    key: str = ""
    sha: str = ""
    lock: Lock = field(default_factory=Lock)
    ids: list[str] = field(default_factory=list)
    bypass: bool = False
    order: int = 0


class LockModel:
    """The versions under one prefix, as acknowledged, and the operation in flight."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.versions: dict[str, Version] = {}
        self.pending: Pending | None = None
        self.next_order = 0

    def order(self) -> int:
        self.next_order += 1
        return self.next_order

    def settle(self, client: S3Http, bucket: str, killed_at: int) -> list[str]:
        """Compare the server with the model after a restart; adopt what it holds.

        ``killed_at``: when the server was killed (ms): the in-flight operation was
        decided before it.
        """
        problems: list[str] = []
        pending, self.pending = self.pending, None
        listed = list_versions(client, bucket, self.prefix)
        found = {vid: (key, marker) for key, vid, marker, _ in listed}
        for vid, version in list(self.versions.items()):
            if vid in found:
                continue
            if pending is not None and pending.kind == "delete" and vid in pending.ids:
                if version.lock.surely_locked(killed_at, pending.bypass):
                    problems.append(f"{version.key} {vid}: a locked version was removed")
                del self.versions[vid]
                continue
            problems.append(f"{version.key} {vid}: an acknowledged version is gone")
            del self.versions[vid]
        for vid, (key, marker) in found.items():
            if vid in self.versions:
                continue
            adopted = False
            if pending is not None and pending.kind in ("put", "marker") and key == pending.key:
                if marker and pending.kind == "marker":
                    adopted = True
                elif not marker and pending.kind == "put":
                    got = client.request("GET", bucket, key, [("versionId", vid)])
                    adopted = got.status == 200 and sha256(got.body) == pending.sha
                if adopted:
                    self.versions[vid] = Version(key, pending.sha, pending.order, pending.lock)
                    pending = None
            if not adopted:
                problems.append(f"{key} {vid}: a version nobody acknowledged appeared")
                self.versions[vid] = Version(key, "?", self.order())
        for vid, version in self.versions.items():
            if version.marker or version.sha == "?":
                continue
            lock = read_lock(client, bucket, version.key, vid)
            candidates = [version.lock]
            if (
                pending is not None
                and pending.kind in ("retention", "hold")
                and pending.ids[0] == vid
            ):
                candidates.append(pending.lock)
            if lock not in candidates:
                problems.append(
                    f"{version.key} {vid}: lock {lock}, acknowledged {version.lock}"
                    + (f", in flight {candidates[1]}" if len(candidates) > 1 else "")
                )
            version.lock = lock
        # each key: its versions newest first, the newest one the latest
        by_key: dict[str, list[tuple[str, bool]]] = {}
        for key, vid, _, latest in listed:
            by_key.setdefault(key, []).append((vid, latest))
        for key, entries in by_key.items():
            orders = [self.versions[vid].order for vid, _ in entries if vid in self.versions]
            if orders != sorted(orders, reverse=True):
                problems.append(f"{key}: versions are not listed newest first")
            if [latest for _, latest in entries] != [True] + [False] * (len(entries) - 1):
                problems.append(f"{key}: the newest version is not the latest")
        return problems


def list_versions(client: S3Http, bucket: str, prefix: str) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is a delete marker, is latest) of every version under ``prefix``."""
    out: list[tuple[str, str, bool, bool]] = []
    query = [("versions", ""), ("prefix", prefix)]
    while True:
        r = client.request("GET", bucket, "", query)
        if r.status != 200:
            raise RuntimeError(f"ListObjectVersions answered {r.status} {r.error_text()}")
        root = ET.fromstring(r.body)
        for element in root:
            tag = element.tag.removeprefix(S3_NS)
            if tag in ("Version", "DeleteMarker"):
                out.append(
                    (
                        element.findtext(f"{S3_NS}Key") or "",
                        element.findtext(f"{S3_NS}VersionId") or "",
                        tag == "DeleteMarker",
                        element.findtext(f"{S3_NS}IsLatest") == "true",
                    )
                )
        if root.findtext(f"{S3_NS}IsTruncated") != "true":
            return out
        query = [
            ("versions", ""),
            ("prefix", prefix),
            ("key-marker", root.findtext(f"{S3_NS}NextKeyMarker") or ""),
            ("version-id-marker", root.findtext(f"{S3_NS}NextVersionIdMarker") or ""),
        ]


def read_lock(client: S3Http, bucket: str, key: str, vid: str) -> Lock:
    """A version's retention and legal hold, read with GetObjectRetention and GetObjectLegalHold."""
    r = client.request("GET", bucket, key, [("retention", ""), ("versionId", vid)])
    mode = until = None
    if r.status == 200:
        root = ET.fromstring(r.body)
        mode = root.findtext(f"{S3_NS}Mode")
        until = parse_iso(root.findtext(f"{S3_NS}RetainUntilDate") or "")
    elif r.error_code() != "NoSuchObjectLockConfiguration":
        raise RuntimeError(f"GetObjectRetention {key} {vid}: {r.status} {r.error_text()}")
    h = client.request("GET", bucket, key, [("legal-hold", ""), ("versionId", vid)])
    hold = None
    if h.status == 200:
        hold = ET.fromstring(h.body).findtext(f"{S3_NS}Status") == "ON"
    elif h.error_code() != "NoSuchObjectLockConfiguration":
        raise RuntimeError(f"GetObjectLegalHold {key} {vid}: {h.status} {h.error_text()}")
    return Lock(mode, until, hold)


class LockWorker(threading.Thread):
    """One writer of one prefix of a bucket with object lock, until stopped.

    :param killed: set (with ``stop``) when the server was killed: connection
        errors then end the worker, its pending operation left open.
    """

    def __init__(
        self,
        server: Any,
        bucket: str,
        model: LockModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
        keys: int = 6,
    ) -> None:
        super().__init__(name=f"lock worker {model.prefix}", daemon=True)
        self.client: S3Http = server.client()
        self.bucket = bucket
        self.model = model
        self.rng = random.Random(seed)
        self.stop, self.killed = stop, killed
        self.names = [f"{model.prefix}k{i}" for i in range(keys)]
        self.acked: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.wrong: list[str] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        ops = ["put", "retention", "hold", "delete", "delete_many", "marker"]
        weights = [4, 4, 2, 4, 1, 1]
        try:
            while not self.stop.is_set():
                op = self.rng.choices(ops, weights)[0]
                try:
                    getattr(self, "op_" + op)()
                except (OSError, http.client.HTTPException):
                    if self.killed.is_set():
                        return  # the operation in flight stays open for the driver
                    raise
        except BaseException as e:  # noqa: BLE001 - reported by the driver
            if not self.killed.is_set():
                self.failure = e
        finally:
            self.client.close()

    # -- helpers -------------------------------------------------------------------------

    def _objects(self) -> list[str]:
        return sorted(vid for vid, v in self.model.versions.items() if not v.marker)

    def _unexpected(self, what: str, status: int, text: str) -> None:
        self.wrong.append(f"{self.model.prefix}: {what} answered {status} {text}")

    def _random_lock(self, now: int) -> Lock:
        roll = self.rng.random()
        if roll < 0.35:
            return Lock()
        if roll < 0.5:
            return Lock(hold=self.rng.random() < 0.7)
        mode = GOVERNANCE if self.rng.random() < 0.6 else COMPLIANCE
        seconds = 86_400 if self.rng.random() < 0.1 else self.rng.uniform(1, 4)
        return Lock(mode, now + int(seconds * 1000), self.rng.choice([None, None, True]))

    # -- operations ----------------------------------------------------------------------

    def op_put(self) -> None:
        key = self.rng.choice(self.names)
        data = self.rng.randbytes(self.rng.randrange(0, 4096))
        sent = now_ms()
        lock = self._random_lock(sent)
        headers = {
            "content-md5": base64.b64encode(hashlib.md5(data).digest()).decode(),
        }
        if lock.mode is not None and lock.until is not None:
            headers["x-amz-object-lock-mode"] = lock.mode
            headers["x-amz-object-lock-retain-until-date"] = iso(lock.until)
        if lock.hold is not None:
            headers["x-amz-object-lock-legal-hold"] = "ON" if lock.hold else "OFF"
        order = self.model.order()
        self.model.pending = Pending("put", sent, key, sha256(data), lock, order=order)
        r = self.client.put(self.bucket, key, data, headers)
        self.model.pending = None
        vid = r.headers.get("x-amz-version-id")
        if r.status != 200 or not vid:
            return self._unexpected(f"PUT {key}", r.status, r.error_text())
        self.model.versions[vid] = Version(key, sha256(data), order, lock)
        self.acked["put"] += 1
        return None

    def op_marker(self) -> None:
        key = self.rng.choice(self.names)
        order = self.model.order()
        self.model.pending = Pending("marker", now_ms(), key, order=order)
        r = self.client.delete(self.bucket, key)
        self.model.pending = None
        vid = r.headers.get("x-amz-version-id")
        if r.status != 204 or not vid:
            return self._unexpected(f"DELETE {key}", r.status, r.error_text())
        self.model.versions[vid] = Version(key, "", order)
        self.acked["marker"] += 1
        return None

    def op_hold(self) -> None:
        objects = self._objects()
        if not objects:
            return self.op_put()
        vid = self.rng.choice(objects)
        version = self.model.versions[vid]
        on = self.rng.random() < 0.4
        new = replace(version.lock, hold=on)
        self.model.pending = Pending("hold", now_ms(), version.key, lock=new, ids=[vid])
        body = f"<LegalHold><Status>{'ON' if on else 'OFF'}</Status></LegalHold>".encode()
        r = self.client.request(
            "PUT", self.bucket, version.key, [("legal-hold", ""), ("versionId", vid)], body=body
        )
        self.model.pending = None
        if r.status != 200:
            return self._unexpected(f"PutObjectLegalHold {version.key}", r.status, r.error_text())
        version.lock = new
        self.acked["hold"] += 1
        return None

    def op_retention(self) -> None:
        objects = self._objects()
        if not objects:
            return self.op_put()
        vid = self.rng.choice(objects)
        version = self.model.versions[vid]
        old = version.lock
        sent = now_ms()
        bypass = self.rng.random() < 0.5
        roll = self.rng.random()
        base = max(old.until or 0, sent)
        if roll < 0.15:
            mode, until = None, None  # remove
        else:
            if roll < 0.5 and old.mode is not None:
                mode = old.mode  # extend
                until = base + self.rng.randrange(1000, 4000)
            else:
                mode = self.rng.choice([GOVERNANCE, COMPLIANCE])
                until = sent + self.rng.randrange(1500, 5000)  # shorter or longer, either
        new = Lock(mode, until, old.hold)
        extends = (
            mode is not None
            and mode == old.mode
            and until is not None
            and until >= (old.until or 0)
        )
        self.model.pending = Pending(
            "retention", sent, version.key, lock=new, ids=[vid], bypass=bypass
        )
        if mode is None:
            body = b"<Retention/>"
        else:
            assert until is not None
            body = (
                f"<Retention><Mode>{mode}</Mode><RetainUntilDate>{iso(until)}</RetainUntilDate>"
                "</Retention>"
            ).encode()
        r = self.client.request(
            "PUT",
            self.bucket,
            version.key,
            [("retention", ""), ("versionId", vid)],
            BYPASS if bypass else None,
            body,
        )
        answered = now_ms()
        self.model.pending = None
        # may the change be refused? only while the old retention runs (and then never
        # when it extends, nor for GOVERNANCE with the bypass)
        forbidden = Lock(old.mode, old.until)  # a legal hold does not restrict retention
        running_surely = forbidden.surely_locked(answered, bypass) and not extends
        free_surely = forbidden.surely_free(sent, bypass) or extends
        if r.status == 200:
            if running_surely:
                self.wrong.append(f"{version.key} {vid}: {old} changed to {new} (bypass {bypass})")
            version.lock = new
            self.acked["retention"] += 1
        elif r.status == 403 and r.error_code() == "AccessDenied":
            if free_surely:
                self.wrong.append(f"{version.key} {vid}: {old} to {new} refused (bypass {bypass})")
            self.refused["retention"] += 1
        else:
            self._unexpected(f"PutObjectRetention {version.key}", r.status, r.error_text())
        return None

    def op_delete(self) -> None:
        objects = sorted(self.model.versions)
        if not objects:
            return self.op_put()
        vid = self.rng.choice(objects)
        version = self.model.versions[vid]
        bypass = self.rng.random() < 0.5
        sent = now_ms()
        self.model.pending = Pending("delete", sent, version.key, ids=[vid], bypass=bypass)
        r = self.client.request(
            "DELETE", self.bucket, version.key, [("versionId", vid)], BYPASS if bypass else None
        )
        answered = now_ms()
        self.model.pending = None
        self._judge_delete(vid, r.status, r.error_code(), sent, answered, bypass)
        return None

    def _judge_delete(
        self, vid: str, status: int, code: str, sent: int, answered: int, bypass: bool
    ) -> None:
        version = self.model.versions[vid]
        if status == 204:
            if version.lock.surely_locked(answered, bypass):
                self.wrong.append(f"{version.key} {vid}: locked ({version.lock}) but deleted")
            del self.model.versions[vid]
            self.acked["delete"] += 1
        elif status == 403 and code == "AccessDenied":
            if version.lock.surely_free(sent, bypass):
                self.wrong.append(f"{version.key} {vid}: free ({version.lock}) but refused")
            self.refused["delete"] += 1
        else:
            self._unexpected(f"DELETE {version.key}?versionId={vid}", status, code)

    def op_delete_many(self) -> None:
        objects = sorted(self.model.versions)
        if not objects:
            return self.op_put()
        chosen = self.rng.sample(objects, min(len(objects), self.rng.randint(2, 4)))
        bypass = self.rng.random() < 0.5
        body = (
            "<Delete>"
            + "".join(
                f"<Object><Key>{self.model.versions[v].key}</Key><VersionId>{v}</VersionId></Object>"
                for v in chosen
            )
            + "</Delete>"
        ).encode()
        headers = {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()}
        if bypass:
            headers.update(BYPASS)
        sent = now_ms()
        self.model.pending = Pending("delete", sent, ids=list(chosen), bypass=bypass)
        r = self.client.request("POST", self.bucket, "", [("delete", "")], headers, body)
        answered = now_ms()
        self.model.pending = None
        if r.status != 200:
            return self._unexpected("DeleteObjects", r.status, r.error_text())
        root = ET.fromstring(r.body)
        outcomes: dict[str, tuple[int, str]] = {}
        for element in root.findall(f"{S3_NS}Deleted"):
            outcomes[element.findtext(f"{S3_NS}VersionId") or ""] = (204, "")
        for element in root.findall(f"{S3_NS}Error"):
            code = element.findtext(f"{S3_NS}Code") or ""
            outcomes[element.findtext(f"{S3_NS}VersionId") or ""] = (
                403 if code == "AccessDenied" else 500,
                code,
            )
        for vid in chosen:
            status, code = outcomes.get(vid, (0, "missing from the answer"))
            self._judge_delete(vid, status, code, sent, answered, bypass)
        return None
