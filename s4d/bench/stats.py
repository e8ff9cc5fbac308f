"""Small helpers for reporting benchmark figures."""

from __future__ import annotations

import resource
from dataclasses import dataclass


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of already sorted values (nearest rank)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]


def latency_summary(latencies: list[float]) -> str:
    """``p50 1.2 ms  p99 3.4 ms`` for latencies in seconds."""
    values = sorted(latencies)
    return (
        f"p50 {percentile(values, 0.5) * 1000:.2f} ms  p99 {percentile(values, 0.99) * 1000:.2f} ms"
    )


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_peak_rss_mb(pid: int) -> float | None:
    """Another process's peak RSS (VmHWM) in MB, if readable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class ProcessMemory:
    """One reading of a process's resident memory, in MB."""

    rss_mb: float
    #: anonymous memory: the heap and stacks (what a leak or a load-everything listing grows)
    anon_mb: float
    #: file-backed pages: mapped files as they are touched (the LMDB map among them)
    file_mb: float


def process_memory(pid: int) -> ProcessMemory | None:
    """``VmRSS``, ``RssAnon`` and ``RssFile`` of a process, if readable."""
    found: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "RssAnon", "RssFile"):
                    found[name] = int(value.split()[0]) / 1024
    except OSError:
        return None
    if len(found) < 3:
        return None
    return ProcessMemory(found["VmRSS"], found["RssAnon"], found["RssFile"])
