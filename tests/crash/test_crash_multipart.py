"""SIGKILL a process in the middle of multipart uploads, completions and aborts.

Strategy: :mod:`tests.crash.multipart_writer` runs in a child process with a
durable store and four threads that create uploads, upload (and re-upload)
parts of up to 1.5 MiB, then complete, abort or abandon them, logging ``TRY``
before and ``ACK`` after each step. The parent kills it with SIGKILL at a
random moment, reopens the store (recovery) and first runs fsck on it as it
was found: no problem is allowed (orphan bytes are). Then it checks each upload
against the log:

* an acknowledged Complete left the object byte-exact and the upload gone, and
  its completed-upload record: the same Complete repeated now answers the
  object's ETag and writes nothing; one in flight either did all that or left
  the upload listable with its parts, in which case the parent completes it
  now and checks the bytes;
* an acknowledged Abort left nothing; one in flight left nothing or an upload
  that the parent can still abort;
* an upload still in progress is listable, and every acknowledged part is
  there with its MD5 (or the MD5 of a replacement that was in flight); the
  parent completes it with whatever parts it has and checks each part's bytes
  in the object by MD5, or aborts it;
* no object ever appears for an upload that did not complete.

After that every upload is finished, fsck runs again on the closed directory,
and objects completed in earlier rounds are read back again. ``S4D_CRASH_MP_ROUNDS``
sets the number of rounds (default 8), ``S4D_CRASH_SEED`` the seed.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import dataclass, field

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.store import fsck
from s4d.store.model import MultipartUpload, ObjectVersion
from s4d.store.store import Store, StoreConfig
from tests.crash.campaign import campaign_seed, fresh_data_dir
from tests.crash.multipart_writer import BUCKET, CHUNK
from tests.crash.test_crash_store import kill_child_round


@dataclass
class UploadLog:
    """What the log says about one upload (one key)."""

    key: str
    uid: str | None = None
    parts: dict[int, str] = field(default_factory=dict)  # acknowledged MD5 per part number
    in_flight: tuple[int, str] | None = None
    final: str | None = None  # "complete" or "abort"
    final_acked: bool = False
    sha: str | None = None
    chosen: list[int] = field(default_factory=list)


def parse(lines: list[str]) -> list[UploadLog]:
    """Fold one round's log into one record per upload."""
    by_key: dict[str, UploadLog] = {}
    by_uid: dict[str, UploadLog] = {}
    for line in lines:
        words = line.split(" ")
        if words[0] == "READY":
            continue
        if words[0] == "ERR":
            raise AssertionError(f"the writer failed: {line}")
        kind, what = words[0], words[1]
        if what == "create":
            if kind == "TRY":
                by_key[words[2]] = UploadLog(words[2])
            else:
                by_key[words[2]].uid = words[3]
                by_uid[words[3]] = by_key[words[2]]
            continue
        log = by_uid[words[2]]
        if what == "part":
            number, md5 = int(words[3]), words[4]
            if kind == "TRY":
                assert log.in_flight is None, line
                log.in_flight = (number, md5)
            else:
                assert log.in_flight == (number, md5), line
                log.parts[number], log.in_flight = md5, None
        elif what in ("complete", "abort"):
            log.final = what
            if kind == "TRY":
                if what == "complete":
                    log.sha, log.chosen = words[3], [int(n) for n in words[4].split(",")]
            else:
                log.final_acked = True
        else:
            raise AssertionError(f"unexpected line {line!r}")
    return list(by_key.values())


class MultipartCrashTests(SynchronousTestCase):
    def test_sigkill_during_multipart(self) -> None:
        rounds = int(os.environ.get("S4D_CRASH_MP_ROUNDS", "8"))
        seed = campaign_seed()
        rng = random.Random(seed)
        data_dir = fresh_data_dir(self)
        objects: dict[str, str] = {}  # key -> sha256 of every object completed so far
        steps = 0
        for round_no in range(rounds):
            where = f"seed {seed}, round {round_no}"
            err = data_dir + f".{round_no}.err"
            self.addCleanup(lambda p=err: os.path.exists(p) and os.remove(p))
            child = kill_child_round(
                self, data_dir, rng, round_no, where, "tests.crash.multipart_writer", (0.3, 1.5)
            )
            uploads = parse(child.lines)
            steps += sum(len(u.parts) + (u.final_acked) for u in uploads)
            self.check(data_dir, uploads, objects, where)
        self.assertGreater(steps, rounds * 5, f"only {steps} steps acknowledged")

    def check(
        self, data_dir: str, uploads: list[UploadLog], objects: dict[str, str], where: str
    ) -> None:
        store = Store(
            StoreConfig(data_dir, map_size=8 << 30, fsync=True, chunk_size=CHUNK),
            inline_commit=True,
        )
        try:
            report = fsck.check_store(store)
            self.assertEqual(report.problems, [], f"after the crash ({where})\n{report.render()}")
            for log in uploads:
                completed = self.check_upload(store, log, f"{log.key} ({where})")
                if completed is not None:
                    objects[log.key] = completed
            for key, sha in objects.items():
                self.assertEqual(self.read(store, key)[0], sha, f"{key} ({where})")
            with store.read() as t:
                self.assertEqual(fm.list_uploads(t, BUCKET).uploads, [], where)
        finally:
            store.close()
        report = fsck.check(data_dir)
        self.assertEqual(report.problems, [], f"after resolving ({where})\n{report.render()}")

    def read(self, store: Store, key: str) -> tuple[str | None, bytes, ObjectVersion | None]:
        """The sha256 and bytes of ``key``'s object (None, b"", None if absent)."""
        with store.read() as t:
            try:
                _, version = fo.find_version(t, t.buckets.require(BUCKET), key, None)
            except S3Error as e:
                self.assertEqual(e.code, "NoSuchKey")
                return None, b"", None
            locations = store.locate(t, version.chunks)
        data = b"".join(store.read_chunk(loc) for loc in locations)
        self.assertEqual(len(data), version.size)
        return hashlib.sha256(data).hexdigest(), data, version

    def found_upload(self, store: Store, log: UploadLog) -> MultipartUpload | None:
        with store.read() as t:
            page = fm.list_uploads(t, BUCKET, prefix=log.key)
        found = [u for u in page.uploads if u.key == log.key]
        self.assertLessEqual(len(found), 1)
        if found and log.uid is not None:
            self.assertEqual(found[0].upload_id, log.uid)
        return found[0] if found else None

    def check_repeat(self, store: Store, log: UploadLog, where: str) -> None:
        """A completed upload answers its Complete again: the object's ETag, nothing written."""
        assert log.uid is not None
        requested = [fm.RequestedPart(n, log.parts[n]) for n in log.chosen]
        again = store.commit(
            lambda t: fm.complete_upload(
                t,
                BUCKET,
                log.key,
                log.uid or "",
                requested,
                fo.WriteConditions(),
                time.time_ns(),
                min_part_size=0,
            )
        )
        _, _, version = self.read(store, log.key)
        assert version is not None
        self.assertTrue(again.repeated, where)
        self.assertEqual(
            (again.result.etag, again.result.size), (version.etag, version.size), where
        )
        self.assertEqual(version.etag, fm.multipart_etag([log.parts[n] for n in log.chosen]), where)
        self.assertEqual(self.read(store, log.key)[0], log.sha, where)

    def check_upload(self, store: Store, log: UploadLog, where: str) -> str | None:
        """Check one upload against its log, then finish it; the object's sha256 if one exists."""
        upload = self.found_upload(store, log)
        sha, _, _ = self.read(store, log.key)
        if log.final == "complete" and log.final_acked:
            self.assertIsNone(upload, where)
            self.assertEqual(sha, log.sha, where)
            self.check_repeat(store, log, where)
            return sha
        if log.final == "abort" and log.final_acked:
            self.assertEqual((upload, sha), (None, None), where)
            return None
        if upload is None:
            # Only a Complete or an Abort in flight (or a create never acknowledged) removes it.
            self.assertTrue(log.final is not None or log.uid is None, f"upload lost: {where}")
            if log.final == "complete":
                self.assertEqual(sha, log.sha, where)
                self.check_repeat(store, log, where)
                return sha
            self.assertIsNone(sha, where)
            return None
        self.assertIsNone(sha, f"an object appeared before its completion: {where}")
        with store.read() as t:
            parts = {p.number: p for p in t.multipart.parts(upload.upload_id)}
        for number, part in parts.items():
            allowed = {log.parts.get(number)}
            if log.in_flight is not None and log.in_flight[0] == number:
                allowed.add(log.in_flight[1])
            self.assertIn(part.md5, allowed, f"part {number} of {where}")
        for number in log.parts:
            self.assertIn(number, parts, f"acknowledged part {number} lost: {where}")
        if log.final == "abort" or not parts:
            store.commit(lambda t: fm.abort_upload(t, BUCKET, log.key, upload.upload_id))
            return None
        chosen = log.chosen if log.final == "complete" else sorted(parts)
        requested = [fm.RequestedPart(n, parts[n].md5) for n in chosen]
        store.commit(
            lambda t: fm.complete_upload(
                t,
                BUCKET,
                log.key,
                upload.upload_id,
                requested,
                fo.WriteConditions(),
                time.time_ns(),
                min_part_size=0,
            )
        )
        sha, data, version = self.read(store, log.key)
        assert version is not None
        self.assertEqual(version.parts, [parts[n].size for n in chosen], where)
        offset = 0
        for n in chosen:
            piece = data[offset : offset + parts[n].size]
            self.assertEqual(hashlib.md5(piece).hexdigest(), parts[n].md5, f"part {n}: {where}")
            offset += parts[n].size
        if log.final == "complete":
            self.assertEqual(sha, log.sha, where)
        return sha
