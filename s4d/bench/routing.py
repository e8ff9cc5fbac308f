"""What routing S3 requests through Klein would cost, measured on the real seam.

Both variants run the same site, channel, front end, route lookup and handler
over an in-memory transport (no sockets, no threads: the store commits inline
and blocking calls run at once), so the difference between them is only the
resource that renders a prepared request: s4d's leaf :class:`S3Resource`, or a
class-scoped Klein app whose catch-all route hands the request to the same
code. It reports microseconds of reactor time per request for GET and HEAD of
a small object and for a small PUT.

    python -m s4d.bench routing [--requests 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from klein import Klein
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import IResource

from s4d.admin.app import OpsApp
from s4d.auth import sigv4
from s4d.engine import Engine
from s4d.s3.app import S3Resource
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.s3.request import S3Request, S3Site
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import InlineRunner

AK, SK, HOST = "AKIDBENCH", "bench/secret", "bench:9000"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


class KleinS3:
    """The S3 resource behind a Klein catch-all route (the alternative measured)."""

    app = Klein()

    def __init__(self) -> None:
        self.leaf = S3Resource(OpsApp().resource())

    @app.route("/", branch=True, strict_slashes=False)
    def s3(self, request: S3Request) -> Any:
        """Every path: render the prepared S3 call."""
        return self.leaf.render(request)


def _signed(method: str, path: str, body: bytes = b"") -> bytes:
    headers = {"host": HOST, "content-length": str(len(body))}
    payload = hashlib.sha256(body).hexdigest()
    headers.update(
        sigv4.sign_request(method, path, [], headers, AK, SK, now=NOW, payload_hash=payload)
    )
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _run(
    site: S3Site, request: bytes, count: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per request (by ``clock``), over ``count`` requests on one keep-alive connection."""
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(request)
    answer = transport.value()
    if not answer.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"the benchmark request failed: {answer[:300]!r}")
    transport.clear()
    started = clock()
    for _ in range(count):
        protocol.dataReceived(request)
        transport.clear()
    return (clock() - started) / count


def main(argv: list[str]) -> int:
    """Measure both variants, interleaved; print microseconds per request."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench routing")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    data_dir = tempfile.mkdtemp(prefix="s4d-bench-routing-")
    store = Store(StoreConfig(data_dir, fsync=False, map_size=1 << 30), inline_commit=True)
    try:
        engine = Engine(store, InlineRunner(), lambda f, *a, **k: f(*a, **k))
        sites: dict[str, S3Site] = {}
        for name in ("leaf", "klein"):
            site = build_s3_site(
                engine,
                StaticCredentials({AK: SK}),
                ops=OpsApp().resource(),
                now=lambda: NOW,
                reactor=Clock(),
            )
            if name == "klein":
                klein: IResource = KleinS3().app.resource()
                site.resource = klein
            sites[name] = site
        _run(sites["leaf"], _signed("PUT", "/bench"), 1)
        _run(sites["leaf"], _signed("PUT", "/bench/small", b"x" * 4096), 1)
        cases = {
            "GET 4 KiB": _signed("GET", "/bench/small"),
            "HEAD 4 KiB": _signed("HEAD", "/bench/small"),
            "PUT 4 KiB": _signed("PUT", "/bench/put", b"y" * 4096),
        }
        print(f"{'request':<12} {'leaf µs':>9} {'klein µs':>9} {'klein - leaf':>13}")
        for label, request in cases.items():
            best = {"leaf": float("inf"), "klein": float("inf")}
            for _ in range(args.rounds):
                for name, site in sites.items():
                    best[name] = min(best[name], _run(site, request, args.requests))
            leaf, klein_s = best["leaf"] * 1e6, best["klein"] * 1e6
            print(f"{label:<12} {leaf:>9.1f} {klein_s:>9.1f} {klein_s - leaf:>+13.1f}", flush=True)
    finally:
        store.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0
