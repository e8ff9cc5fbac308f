"""The lifecycle sweep: verdicts, batches, the saved position, and the re-check before acting.

Strategy: an engine over a real store with the inline committer and an inline
runner, and a clock that is a number here (``self.now``): objects are written
"at" a time and a pass is run "at" a later one, so 30-day rules are tested in
milliseconds. Each scenario checks what is left in the store afterwards
(versions and delete markers by key, uploads) and the pass's figures. The
batch limit is set small so that passes cross many batches, including in the
middle of one key's versions; a pass cut off between batches is resumed by a
new engine over the same store, as after a restart. The re-check is tested by
changing the store between a batch's plan and its apply.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from twisted.trial.unittest import SynchronousTestCase

from s4d.engine import Engine, LifecycleLimits
from s4d.features import buckets as fb
from s4d.features import lifecycle as fl
from s4d.features import lifecycle_sweep as fs
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.features.lifecycle import DAY_NS, LIFECYCLE, DayClock, LifecycleFilter, LifecycleRule
from s4d.features.tagging import set_object_tags
from s4d.store.clock import Clock
from s4d.store.model import NO_LOCK, MultipartUpload, ObjectLock
from s4d.store.store import Store
from s4d.util.threads import InlineRunner
from tests.store.helpers import open_store, write_chunks

#: 2026-01-10 10:00 UTC
T0 = int(datetime(2026, 1, 10, 10, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
HOUR = 3600 * 1_000_000_000


def days(n: float) -> int:
    return int(n * DAY_NS)


def expire(prefix: str = "", n: int = 30, rule_id: str = "exp", **kw: object) -> LifecycleRule:
    return LifecycleRule(rule_id, True, LifecycleFilter(prefix=prefix), "prefix",
                         expiration_days=n, has_expiration=True, **kw)  # type: ignore[arg-type]  # fmt: skip


def noncurrent(n: int, newer: int | None = None, prefix: str = "") -> LifecycleRule:
    return LifecycleRule("nc", True, LifecycleFilter(prefix=prefix), "prefix", noncurrent_days=n,
                         newer_noncurrent_versions=newer, has_noncurrent=True)  # fmt: skip


class SweepTestCase(SynchronousTestCase):
    limits = LifecycleLimits(examine=4, actions=3)

    def setUp(self) -> None:
        self.path = self.mktemp()
        self.now = T0
        # the store's clock (object lock reads it) and the engine's are the same here
        self.store = open_store(self, self.path, clock=Clock(wall=lambda: self.now / 1e9))
        self.engine = self.new_engine(self.store)

    def new_engine(self, store: Store, day_ns: int = DAY_NS) -> Engine:
        return Engine(store, InlineRunner(), lambda f, *a: f(*a), lambda: self.now, day_ns)

    def bucket(self, name: str = "b", versioning: str | None = None, lock: bool = False) -> None:
        self.store.commit(lambda t: fb.create_bucket(t, name, "us-east-1", self.now, lock))
        if versioning:
            self.store.commit(lambda t: fb.set_versioning(t, name, versioning))

    def rules(self, *rules: LifecycleRule, bucket: str = "b") -> None:
        raw = fl.encode_rules(list(rules))
        self.store.commit(lambda t: fb.put_bucket_config(t, bucket, LIFECYCLE, raw))

    def put(
        self,
        key: str,
        data: bytes = b"x",
        bucket: str = "b",
        lock: ObjectLock = NO_LOCK,
        **tags: str,
    ) -> str:
        chunks = write_chunks(self.store, data)
        new = fo.NewObject(len(data), hashlib.md5(data).hexdigest(), tags=dict(tags), lock=lock)
        version = self.store.commit(
            lambda t: fo.put_object(t, bucket, key, new, chunks, fo.WriteConditions(), self.now)
        )
        return str(version.version_id)

    def delete(self, key: str, bucket: str = "b") -> None:
        self.store.commit(lambda t: fo.delete_object(t, bucket, key, None, self.now))

    def versions(self, bucket: str = "b") -> dict[str, list[str]]:
        """Each key's versions, newest first: ``"M"`` for a delete marker, ``"V"`` otherwise."""
        found: dict[str, list[str]] = {}
        with self.store.read() as t:
            record = t.buckets.require(bucket)
            from s4d.store.version_listing import list_versions

            page = list_versions(t, record, max_keys=100_000)
        for entry in page.entries:
            found.setdefault(entry.key, []).append("M" if entry.version.delete_marker else "V")
        return found

    def sweep(self, dry_run: bool = False) -> dict[str, int]:
        report = self.successResultOf(self.engine.lifecycle.run_pass(dry_run, self.limits))
        self.assertTrue(report.complete)
        return report.totals


class ExpirationTests(SweepTestCase):
    def test_unversioned_current_versions_go_when_due(self) -> None:
        self.bucket()
        self.rules(expire("logs/", 30))
        for i in range(7):
            self.put(f"logs/{i}")
        self.put("keep/a")
        self.put("logsx")
        self.now = T0 + days(30) + 13 * HOUR  # 23:00 on day 30: not yet midnight
        self.assertEqual(self.sweep()["expired"], 0)
        self.now = T0 + days(30) + 14 * HOUR  # midnight after 30 days
        totals = self.sweep()
        self.assertEqual(totals["expired"], 7)
        self.assertEqual(sorted(self.versions()), ["keep/a", "logsx"])
        self.assertEqual(totals["examined"], 7)  # only keys under the rules' prefixes are read
        with self.store.read() as t:
            self.assertEqual(t.ns.lookup(t.buckets.require("b"), b"logs/0"), None)

    def test_versioned_current_expires_into_a_delete_marker(self) -> None:
        self.bucket(versioning="Enabled")
        self.rules(expire("a", 1), noncurrent(2))
        self.put("a")
        self.put("b")
        self.now += days(1)
        self.put("b")  # b's first version is noncurrent from Jan 11 10:00
        self.now = T0 + days(2)  # Jan 12 10:00: a (due Jan 12 00:00) expires
        totals = self.sweep()
        self.assertEqual((totals["expired"], totals["noncurrent_removed"]), (1, 0))
        self.assertEqual(self.versions(), {"a": ["M", "V"], "b": ["V", "V"]})
        marked_at = self.now
        self.now = marked_at + days(2) - HOUR  # Jan 14 09:00: b's old version is due, a's not
        self.assertEqual(self.sweep()["noncurrent_removed"], 1)
        self.assertEqual(self.versions(), {"a": ["M", "V"], "b": ["V"]})
        self.now = marked_at + days(3)  # two days after a became noncurrent, rounded to midnight
        self.assertEqual(self.sweep()["noncurrent_removed"], 1)
        self.assertEqual(self.versions(), {"a": ["M"], "b": ["V"]})

    def test_suspended_bucket_replaces_the_null_version(self) -> None:
        self.bucket(versioning="Enabled")
        self.put("k")
        self.store.commit(lambda t: fb.set_versioning(t, "b", "Suspended"))
        self.put("k")
        self.rules(expire("", 1))
        self.now += days(3)
        self.sweep()
        self.assertEqual(self.versions(), {"k": ["M", "V"]})

    def test_tags_and_sizes_decide(self) -> None:
        self.bucket()
        where = LifecycleFilter(tags=(("tmp", "1"),), size_greater_than=2)
        tagged = LifecycleRule("t", True, where, "and", expiration_days=1, has_expiration=True)
        self.rules(tagged)
        self.put("small", b"x", tmp="1")
        self.put("big", b"xxxx", tmp="1")
        self.put("untagged", b"xxxx")
        self.put("retagged", b"xxxx")
        self.store.commit(lambda t: set_object_tags(t, "b", "retagged", None, {"tmp": "1"}))
        self.now += days(2)
        self.assertEqual(self.sweep()["expired"], 2)
        self.assertEqual(sorted(self.versions()), ["small", "untagged"])

    def test_date_rules_and_disabled_rules(self) -> None:
        self.bucket()
        date = "2026-02-01T00:00:00.000Z"
        dated = LifecycleRule("d", True, LifecycleFilter(prefix="d/"), "prefix",
                              expiration_date=date, has_expiration=True)  # fmt: skip
        off = LifecycleRule("off", False, LifecycleFilter(prefix="o/"), "prefix",
                            expiration_days=1, has_expiration=True)  # fmt: skip
        self.rules(dated, off)
        self.put("d/1")
        self.put("o/1")
        self.now = int(datetime(2026, 1, 31, 23, tzinfo=UTC).timestamp()) * 10**9
        self.sweep()
        self.assertEqual(sorted(self.versions()), ["d/1", "o/1"])
        self.now += days(400)
        self.sweep()
        self.assertEqual(sorted(self.versions()), ["o/1"])


class NoncurrentTests(SweepTestCase):
    def test_newer_noncurrent_versions_are_kept_even_across_batches(self) -> None:
        self.bucket(versioning="Enabled")
        self.rules(noncurrent(1, newer=5))
        for i in range(25):
            self.put("many", str(i).encode())
            self.now += HOUR
        self.put("few")
        self.put("few")
        self.now += days(3)
        totals = self.sweep()
        self.assertEqual(totals["noncurrent_removed"], 25 - 1 - 5)
        self.assertEqual(self.versions(), {"few": ["V", "V"], "many": ["V"] * 6})

    def test_noncurrent_age_counts_from_the_successor(self) -> None:
        self.bucket(versioning="Enabled")
        self.rules(noncurrent(10))
        self.put("k")  # noncurrent from day 20 on
        self.now += days(20)
        self.put("k")
        self.now = T0 + days(29)
        self.sweep()
        self.assertEqual(self.versions()["k"], ["V", "V"])
        self.now = T0 + days(31)
        self.sweep()
        self.assertEqual(self.versions()["k"], ["V"])


class DeleteMarkerTests(SweepTestCase):
    def test_lone_markers_go_others_stay(self) -> None:
        self.bucket(versioning="Enabled")
        rule = LifecycleRule("m", True, LifecycleFilter(), "empty",
                             expired_object_delete_marker=True, has_expiration=True)  # fmt: skip
        self.rules(rule)
        self.put("lone")
        self.delete("lone")
        self.delete("lone")  # two markers: the older is noncurrent, the newer not alone
        self.put("hidden")
        self.delete("hidden")
        self.delete("never-was")
        totals = self.sweep()
        self.assertEqual(totals["markers_removed"], 1)
        self.assertEqual(self.versions(), {"hidden": ["M", "V"], "lone": ["M", "M", "V"]})

    def test_days_clear_old_lone_markers(self) -> None:
        self.bucket(versioning="Enabled")
        self.rules(expire("", 5), noncurrent(1))
        self.put("k")
        self.delete("k")
        self.now += days(2)
        self.sweep()  # the version (noncurrent for two days) goes; the marker is young
        self.assertEqual(self.versions(), {"k": ["M"]})
        self.now += days(3)  # Jan 15 10:00: the marker's 5 days end at midnight
        self.assertEqual(self.sweep()["markers_removed"], 0)
        self.now += days(1)
        self.assertEqual(self.sweep()["markers_removed"], 1)
        self.assertEqual(self.versions(), {})


class UploadTests(SweepTestCase):
    def upload(self, key: str, bucket: str = "b") -> str:
        template = MultipartUpload("", 0, key, 0)
        made = self.store.commit(lambda t: fm.create_upload(t, bucket, key, template, self.now))
        return str(made.upload_id)

    def uploads(self, bucket: str = "b") -> list[str]:
        with self.store.read() as t:
            return [u.key for u in t.multipart.uploads(t.buckets.require(bucket).bucket_id)]

    def test_abandoned_uploads_are_aborted(self) -> None:
        self.bucket()
        abort = LifecycleRule("mp", True, LifecycleFilter(prefix="tmp/"), "prefix", abort_days=2)
        self.rules(abort)
        for i in range(5):
            self.upload(f"tmp/{i}")
        self.upload("keep")
        self.now += days(1)
        self.upload("tmp/young")
        self.now = T0 + days(2) + 14 * HOUR
        self.assertEqual(self.sweep()["uploads_aborted"], 5)
        self.assertEqual(self.uploads(), ["keep", "tmp/young"])

    def test_rules_replace_the_fixed_ttl(self) -> None:
        self.bucket("ruled")
        self.bucket("plain")
        abort = LifecycleRule("mp", True, LifecycleFilter(prefix="x"), "prefix", abort_days=30)
        self.rules(abort, bucket="ruled")
        self.upload("a", "ruled")
        self.upload("a", "plain")
        self.now += days(2)
        count = self.successResultOf(self.engine.multipart.expire(days(1)))
        self.assertEqual(count, 1)
        self.assertEqual((self.uploads("ruled"), self.uploads("plain")), (["a"], []))


class PassTests(SweepTestCase):
    def test_many_buckets_dry_run_and_figures(self) -> None:
        for name in ("a1", "a2", "a3"):
            self.bucket(name)
            self.rules(expire("", 1), bucket=name)
            for i in range(5):
                self.put(f"k{i}", bucket=name)
        self.bucket("no-rules")
        self.put("k", bucket="no-rules")
        self.now += days(3)
        dry = self.sweep(dry_run=True)
        self.assertEqual((dry["expired"], dry["buckets"], dry["rules"]), (15, 3, 3))
        self.assertEqual(len(self.versions("a1")), 5)
        with self.store.read() as t:
            self.assertIsNone(fs.load_state(t))
        totals = self.sweep()
        self.assertEqual((totals["expired"], totals["buckets"], totals["examined"]), (15, 3, 15))
        # what stats and metrics read: the last run, and sums over this process's runs
        last = self.engine.lifecycle.last_report
        assert last is not None
        self.assertEqual((last.totals["expired"], last.dry_run), (15, False))
        self.assertEqual(self.engine.lifecycle.totals["expired"], 15)
        self.assertEqual(
            [len(self.versions(n)) for n in ("a1", "a2", "a3", "no-rules")], [0, 0, 0, 1]
        )

    def test_a_pass_cut_short_resumes_where_it_stopped(self) -> None:
        self.bucket()
        self.rules(expire("", 1))
        for i in range(20):
            self.put(f"k{i:02}")
        self.now += days(2)
        # Two batches, as if the process died right after their commits.
        state = fs.SweepState(started_ns=self.now)
        clock = DayClock()
        core = self.engine.core
        for _ in range(2):
            batch = self.successResultOf(
                core.read(lambda t, s=state: fs.plan_batch(t, s, self.now, clock, self.limits))
            )
            applied = self.successResultOf(
                core.commit(lambda t, b=batch: fs.apply_batch(t, b, self.now, clock))
            )
            state = applied.state
        self.assertEqual(len(self.versions()), 20 - 6)
        self.store.close()
        store = open_store(self, self.path, clock=Clock(wall=lambda: self.now / 1e9))
        engine = self.new_engine(store)
        report = self.successResultOf(engine.lifecycle.run_if_due(days(1), limits=self.limits))
        assert report is not None
        self.assertTrue(report.resumed and report.complete)
        self.assertEqual(report.totals["expired"], 20)  # counted over the whole pass
        self.assertEqual(engine.lifecycle.totals["expired"], 14)  # done by this process
        with store.read() as t:
            self.assertIsNone(fs.load_state(t))
            self.assertEqual(fs.last_finished(t), self.now)
        self.assertIsNone(self.successResultOf(engine.lifecycle.run_if_due(days(1))))
        self.now += days(1)
        self.assertIsNotNone(self.successResultOf(engine.lifecycle.run_if_due(days(1))))

    def test_what_changed_since_the_plan_is_left_alone(self) -> None:
        self.bucket()
        self.rules(expire("", 1))
        self.put("overwritten")
        self.put("tagged")
        self.put("kept")
        self.now += days(2)
        clock = DayClock()
        core = self.engine.core
        state = fs.SweepState(started_ns=self.now)
        batch = self.successResultOf(
            core.read(lambda t: fs.plan_batch(t, state, self.now, clock, fs.Limits()))
        )
        self.assertEqual(len(batch.planned), 3)
        self.put("overwritten", b"new")  # a fresh version: not due
        self.delete("kept")
        applied = self.successResultOf(
            core.commit(lambda t: fs.apply_batch(t, batch, self.now, clock))
        )
        self.assertEqual((applied.counts["expired"], applied.counts["changed"]), (1, 2))
        self.assertEqual(self.versions(), {"overwritten": ["V"]})

    def test_new_rules_since_the_plan_mean_a_new_plan(self) -> None:
        self.bucket()
        self.rules(expire("", 1))
        self.put("k")
        self.now += days(2)
        clock = DayClock()
        core = self.engine.core
        state = fs.SweepState(started_ns=self.now)
        batch = self.successResultOf(
            core.read(lambda t: fs.plan_batch(t, state, self.now, clock, fs.Limits()))
        )
        self.rules(expire("", 10))
        applied = self.successResultOf(
            core.commit(lambda t: fs.apply_batch(t, batch, self.now, clock))
        )
        self.assertTrue(applied.replan)
        self.assertEqual(applied.state, state)  # planned again from where the plan began
        self.assertEqual(self.sweep()["expired"], 0)
        self.assertEqual(self.versions(), {"k": ["V"]})

    def test_locked_versions_stay(self) -> None:
        self.bucket(versioning="Enabled")
        self.rules(noncurrent(1))
        locked = self.put("k", b"locked")
        self.put("k", b"free")
        self.put("k", b"current")
        self.now += days(3)
        clock = DayClock()
        core = self.engine.core
        state = fs.SweepState(started_ns=self.now)

        def removable(t: object, bucket: object, version: object, now: int) -> bool:
            return getattr(version, "version_id", None) != locked

        batch = self.successResultOf(
            core.read(lambda t: fs.plan_batch(t, state, self.now, clock, fs.Limits()))
        )
        applied = self.successResultOf(
            core.commit(lambda t: fs.apply_batch(t, batch, self.now, clock, removable=removable))
        )
        self.assertEqual((applied.counts["noncurrent_removed"], applied.counts["locked"]), (1, 1))
        self.assertEqual(self.versions(), {"k": ["V", "V"]})

    def test_object_lock_keeps_what_it_protects(self) -> None:
        """Legal holds and running retention (object lock's own predicate) stop the sweep."""
        self.bucket(lock=True)
        self.rules(noncurrent(1), expire("", 3))
        held = self.put("k", b"held", lock=ObjectLock(legal_hold=True))
        until = (self.now + days(10)) // 1_000_000
        kept = self.put("k", b"retained", lock=ObjectLock("COMPLIANCE", until))
        self.put("k", b"free")
        self.put("k", b"current")
        self.now += days(4)
        totals = self.sweep()
        # the current version expires into a marker (allowed under any lock); of the three
        # noncurrent ones the free version goes, the held and the retained ones stay
        self.assertEqual(
            (totals["expired"], totals["noncurrent_removed"], totals["locked"]), (1, 1, 2)
        )
        with self.store.read() as t:
            record = t.buckets.require("b")
            object_id = t.ns.lookup(record, b"k")
            assert object_id is not None
            left = [v.version_id for v in t.versions.all(object_id)]
        self.assertIn(held, left)
        self.assertIn(kept, left)
        self.now += days(10)  # the retention has run out; the legal hold has not
        totals = self.sweep()
        self.assertEqual((totals["noncurrent_removed"], totals["locked"]), (2, 1))
        self.assertEqual(self.versions(), {"k": ["M", "V"]})

    def test_a_deleted_bucket_is_skipped(self) -> None:
        for name in ("a", "b", "c"):
            self.bucket(name)
            self.rules(expire("", 1), bucket=name)
            self.put("k", bucket=name)
        self.now += days(2)
        clock = DayClock()
        core = self.engine.core
        state = fs.SweepState(started_ns=self.now)
        batch = self.successResultOf(
            core.read(lambda t: fs.plan_batch(t, state, self.now, clock, fs.Limits()))
        )
        self.assertEqual(batch.state.bucket, "a")
        self.successResultOf(core.commit(lambda t: fs.apply_batch(t, batch, self.now, clock)))
        self.delete("k", bucket="b")
        self.store.commit(lambda t: fb.delete_bucket(t, "b"))
        self.assertEqual(self.sweep()["expired"], 2)
        self.assertEqual(self.versions("c"), {})

    def test_short_days(self) -> None:
        engine = self.new_engine(self.store, day_ns=10**9)
        self.bucket()
        self.rules(expire("", 3))
        self.put("k")
        self.now += 2 * 10**9
        self.successResultOf(engine.lifecycle.run_pass())
        self.assertEqual(len(self.versions()), 1)
        self.now += 10**9
        self.successResultOf(engine.lifecycle.run_pass())
        self.assertEqual(len(self.versions()), 0)
