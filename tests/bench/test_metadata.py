"""The metadata benchmark's accounting (``python -m s4d.bench metadata``).

Strategy: fill a real store through :class:`~tests.s3.memory.MemoryS3` and check
that the report counts every sub-database's pages at the environment's page
size, its entries, and the segment bytes, each divided by the object count.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.metadata import render, report
from tests.s3.memory import MemoryS3


class ReportTests(SynchronousTestCase):
    def test_split_per_object(self) -> None:
        s3 = MemoryS3()
        self.addCleanup(s3.close)
        self.assertEqual(s3.request("PUT", "/bkt").status, 200)
        for n in range(10):
            size = 100 if n % 2 else 5000  # half inline, half chunks
            self.assertEqual(s3.request("PUT", f"/bkt/k{n}", os.urandom(size)).status, 200)
        result = report(s3.data_dir, s3.store.env, 10)
        dbs = result["databases"]
        self.assertEqual((dbs["versions"]["entries"], dbs["chunks"]["entries"]), (10, 5))
        psize = s3.store.env.stat()["psize"]
        for usage in dbs.values():
            self.assertEqual(usage["bytes"], usage["pages"] * psize)
            self.assertEqual(usage["bytes_per_object"], usage["bytes"] / 10)
        self.assertEqual(result["lmdb_bytes"], sum(u["bytes"] for u in dbs.values()))
        self.assertEqual(result["segment_bytes_per_object"], 5 * (5000 + 56) / 10)
        self.assertIn("versions", render(result))
