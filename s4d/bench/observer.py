"""What counting requests costs the hot path: ``python -m s4d.bench.observer``.

Three copies of the real site, seam, handlers and store run in memory (no
sockets, no threads, inline commits, as :mod:`s4d.bench.routing` does): one
with no observer, one with the metrics' per-process figures
(:class:`~s4d.admin.figures.RequestFigures`), one with the figures and the
access log writing JSON lines to a file. They serve the same requests in
alternating rounds; each figure is the median over the rounds of the reactor
thread's CPU time per request (``time.thread_time``, so that other jobs on the
machine disturb it less than wall time), and the cost is the median of the
round-by-round differences to the copy without observer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from s4d.admin.access_log import AccessLog, JsonLinesFile
from s4d.admin.app import OpsApp, is_ops_path
from s4d.admin.figures import RequestFigures
from s4d.bench.routing import AK, NOW, SK, _signed
from s4d.engine import Engine
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.s3.request import S3Site
from s4d.store.store import Store, StoreConfig
from s4d.util.served import RequestObserver
from s4d.util.threads import InlineRunner


def cpu_per_request(site: S3Site, request: bytes, count: int) -> float:
    """Reactor-thread CPU seconds per request over ``count`` requests on one connection."""
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(request)
    if not transport.value().startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"the benchmark request failed: {transport.value()[:300]!r}")
    transport.clear()
    started = time.thread_time()
    for _ in range(count):
        protocol.dataReceived(request)
        transport.clear()
    return (time.thread_time() - started) / count


def main(argv: list[str] | None = None) -> int:
    """Measure; print microseconds per request and the observers' cost."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench.observer", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    data_dir = tempfile.mkdtemp(prefix="s4d-bench-observer-")
    store = Store(StoreConfig(data_dir, fsync=False, map_size=1 << 30), inline_commit=True)
    sink = JsonLinesFile(os.path.join(data_dir, "access.log"))
    try:
        engine = Engine(store, InlineRunner(), lambda f, *a, **k: f(*a, **k))
        clock = Clock()
        access_log = AccessLog(clock, sink, sink.flush, max_pending=512)
        observers: dict[str, RequestObserver | None] = {
            "none": None,
            "metrics": RequestFigures(),
            "metrics+access log": RequestFigures([access_log]),
        }
        sites = {
            name: build_s3_site(
                engine,
                StaticCredentials({AK: SK}),
                ops=OpsApp().resource(),
                ops_paths=is_ops_path,
                observer=observer,
                now=lambda: NOW,
                reactor=clock,
            )
            for name, observer in observers.items()
        }
        cpu_per_request(sites["none"], _signed("PUT", "/bench"), 1)
        cpu_per_request(sites["none"], _signed("PUT", "/bench/small", b"x" * 4096), 1)
        cases = {
            "GET 4 KiB": _signed("GET", "/bench/small"),
            "HEAD 4 KiB": _signed("HEAD", "/bench/small"),
            "PUT 4 KiB": _signed("PUT", "/bench/put", b"y" * 4096),
        }
        for label, request in cases.items():
            base: list[float] = []
            extra: dict[str, list[float]] = {name: [] for name in sites if name != "none"}
            for _ in range(args.rounds):
                times = {n: cpu_per_request(s, request, args.requests) for n, s in sites.items()}
                base.append(times["none"])
                for name in extra:
                    extra[name].append(times[name] - times["none"])
            costs = "  ".join(
                f"{name} {statistics.median(d) * 1e6:+.1f} µs" for name, d in extra.items()
            )
            print(f"{label:<11} {statistics.median(base) * 1e6:7.1f} µs  {costs}", flush=True)
    finally:
        sink.close()
        store.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
