"""The plain histogram: buckets are upper bounds (inclusive), snapshots add up."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from s4d.util.histogram import Histogram, HistogramSnapshot


class HistogramTests(SynchronousTestCase):
    def test_observations_land_in_the_first_bucket_they_fit(self) -> None:
        h = Histogram((1.0, 2.0, 5.0))
        for value in (0.5, 1.0, 1.5, 2.0, 4.9, 5.0, 7.0, 100.0):
            h.observe(value)
        snap = h.snapshot()
        self.assertEqual(snap.counts, (2, 2, 2, 2))
        self.assertEqual((snap.samples, snap.total), (8, 121.9))
        self.assertEqual(snap.cumulative(), [(1.0, 2), (2.0, 4), (5.0, 6), (float("inf"), 8)])

    def test_merge_and_json(self) -> None:
        a, b = Histogram((1.0,)), Histogram((1.0,))
        a.observe(0.5)
        b.observe(3.0)
        b.observe(0.1)
        merged = a.snapshot().merged(b.snapshot())
        self.assertEqual(merged, HistogramSnapshot((1.0,), (2, 1), 3.6, 3))
        self.assertEqual(HistogramSnapshot.from_json(merged.to_json()), merged)
        with self.assertRaises(ValueError):
            merged.merged(HistogramSnapshot.empty((2.0,)))
        with self.assertRaises(ValueError):
            HistogramSnapshot.from_json({"bounds": [1.0], "counts": [1], "sum": 0})
