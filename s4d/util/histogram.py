"""A plain, cheap histogram: counts per bucket, a sum and a count.

:class:`Histogram` is what the hot paths record into (request latencies, group
commit batch sizes, fsync times): one ``bisect`` and three additions per
observation, no lock, no label look-up. Each histogram has one writer (the
reactor thread, or one of the committer's threads); readers take a
:meth:`~Histogram.snapshot`, which may be one observation behind, never wrong
in a way that matters for monitoring. Snapshots of several processes add up
with :meth:`HistogramSnapshot.merged`; the Prometheus exposition
(:mod:`s4d.admin.metrics`) turns them into cumulative buckets.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, NamedTuple

#: Seconds: from half a millisecond (a cached GET) to a minute (a large upload).
LATENCY_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
)  # fmt: skip
#: Seconds, for fsync and transaction commits: 50 microseconds to 5 seconds.
SYNC_BOUNDS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
)  # fmt: skip
#: Operations per group commit: powers of two up to the committer's largest batch.
BATCH_BOUNDS: tuple[float, ...] = tuple(float(1 << i) for i in range(11))


class HistogramSnapshot(NamedTuple):
    """A histogram's figures at one moment.

    :ivar bounds: each bucket's upper bound (inclusive), ascending.
    :ivar counts: observations per bucket; one more than ``bounds`` (the last
        holds those above every bound). Not cumulative.
    :ivar total: the sum of every observation.
    :ivar samples: how many observations.
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float
    samples: int

    @classmethod
    def empty(cls, bounds: Sequence[float]) -> HistogramSnapshot:
        """A snapshot with no observation."""
        return cls(tuple(bounds), (0,) * (len(bounds) + 1), 0.0, 0)

    def merged(self, other: HistogramSnapshot) -> HistogramSnapshot:
        """The two added up (``ValueError`` if their buckets differ)."""
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets do not add up")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        total, samples = self.total + other.total, self.samples + other.samples
        return HistogramSnapshot(self.bounds, counts, total, samples)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)``, ending with ``(inf, samples)``."""
        out = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": self.total}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> HistogramSnapshot:
        """The snapshot :meth:`to_json` wrote (``ValueError`` if it is malformed)."""
        bounds = tuple(float(b) for b in value["bounds"])
        counts = tuple(int(c) for c in value["counts"])
        if len(counts) != len(bounds) + 1:
            raise ValueError("a histogram needs one count more than bounds")
        return cls(bounds, counts, float(value["sum"]), sum(counts))


class Histogram:
    """Observations counted into fixed buckets (see the module docstring)."""

    __slots__ = ("bounds", "counts", "total", "samples")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.samples = 0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.samples += 1

    def snapshot(self) -> HistogramSnapshot:
        """The figures now."""
        counts = tuple(self.counts)
        return HistogramSnapshot(self.bounds, counts, self.total, sum(counts))
