"""The versions benchmark: its engine fill writes what PUTs write, and a small run completes.

Strategy: the same versions are written twice, one at a time, once by
:func:`s4d.bench.versions.fill_engine` into one data directory and once by real
HTTP PUTs (:func:`~s4d.bench.versions.fill_http`, one connection) to a server
spawned on another. With both servers stopped, both stores are opened and every
key's version records are compared in their stored form, less what is unique
to each write (version id, sequence number, time): they must be equal, chunk
references included (chunks are addressed by content). Then the benchmark runs
end to end on a few hundred versions; it checks by itself that the listing saw
every version once and one latest version per key.
"""

from __future__ import annotations

import io
import os
import shutil
from contextlib import redirect_stdout
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench import versions as bench
from s4d.store.store import Store, StoreConfig

VERSIONS, KEYS = 24, 5


def stored_versions(data_dir: str) -> dict[str, list[dict[str, Any]]]:
    """Every key's version records, newest first, without id, sequence number and time."""
    store = Store(StoreConfig(data_dir, fsync=False), inline_commit=True)
    try:
        out = {}
        with store.read() as t:
            bucket = t.buckets.require(bench.BUCKET)
            assert bucket.versioning == "Enabled", bucket.versioning
            for i in range(KEYS):
                key = bench.key_name(i)
                object_id = t.ns.lookup(bucket, key.encode())
                assert object_id is not None, key
                records = [v.encode() for v in t.versions.all(object_id, key)]
                for record in records:
                    del record["vid"], record["seq"], record["mt"]
                out[key] = records
        return out
    finally:
        store.close()


class VersionsBenchTests(SynchronousTestCase):
    def test_engine_fill_writes_what_puts_write(self) -> None:
        work = os.path.abspath(self.mktemp())
        self.addCleanup(shutil.rmtree, work, True)
        by_engine, by_http = os.path.join(work, "engine"), os.path.join(work, "http")
        os.makedirs(by_engine)
        os.makedirs(by_http)
        bench.fill_engine(by_engine, VERSIONS, KEYS, 40, concurrency=1)
        proc, port = bench.spawn(by_http)
        try:
            bench.fill_http(port, VERSIONS, KEYS, 40, procs=1, threads=1)
        finally:
            bench.stop(proc)
        engine_records = stored_versions(by_engine)
        self.assertEqual(len(engine_records[bench.key_name(0)]), VERSIONS // KEYS + 1)
        self.assertEqual(engine_records, stored_versions(by_http))

    def test_small_run(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            code = bench.main(["--versions", "300", "--keys", "7", "--no-baseline"])
        self.assertEqual(code, 0)
        text = out.getvalue()
        self.assertRegex(text, r"ListObjectVersions +1 pages +300 entries")
        self.assertRegex(text, r"ListObjectsV2 +1 pages +7 entries")
        self.assertIn("server RSS anon", text)
