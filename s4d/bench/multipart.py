"""The multipart benchmark.

``python -m s4d.bench multipart --spawn`` uploads 1 GiB in 8 MiB parts over HTTP
with 8 parts in flight (signed, ``UNSIGNED-PAYLOAD``), samples the server's RSS
meanwhile, reads the object back, and then times CompleteMultipartUpload of an
upload with 10,000 parts through the engine (fsync on). The parts of the latter
share one 5 MiB chunk, so building them is cheap; completion cost depends on
the number of parts, not on their bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer, task

from s4d.bench.s3 import UNSIGNED, Client, RssSampler, spawn_server
from s4d.bench.stats import latency_summary

PART = 8 << 20


def _upload(
    target: tuple[str, int, str, str], size_mb: int, concurrency: int, pid: int | None
) -> None:
    host, port, ak, sk = target
    client = Client(host, port, ak, sk)
    client.request("PUT", "/bench")
    key = "/bench/multipart-object"
    status, body = _request_body(client, "POST", key, query=[("uploads", "")])
    upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
    if status != 200 or upload_id is None:
        raise SystemExit(f"CreateMultipartUpload failed: {status} {body[:200]!r}")
    uid = upload_id.group(1).decode()
    size = size_mb << 20
    numbers = list(range(1, (size + PART - 1) // PART + 1))
    block = os.urandom(PART)
    etags: dict[int, str] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(numbers)

    def worker() -> None:
        conn = Client(host, port, ak, sk)
        while True:
            with lock:
                if not queue:
                    return
                number = queue.pop(0)
            data = block[:-8] + number.to_bytes(8, "big")
            started = time.perf_counter()
            status, headers = _request_headers(
                conn, "PUT", key, data, [("partNumber", str(number)), ("uploadId", uid)]
            )
            with lock:
                latencies.append(time.perf_counter() - started)
                etags[number] = headers.get("etag", "")
            if status != 200:
                raise SystemExit(f"UploadPart {number} -> {status}")

    with RssSampler(pid) as rss:
        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        xml = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n]}</ETag></Part>" for n in numbers
        )
        body_xml = f"<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>".encode()
        complete_started = time.perf_counter()
        status, body = _request_body(client, "POST", key, body_xml, [("uploadId", uid)])
        complete_s = time.perf_counter() - complete_started
        total = time.perf_counter() - started
    if status != 200 or b"<Error>" in body:
        raise SystemExit(f"Complete failed: {status} {body[:300]!r}")
    print(
        f"multipart PUT {size_mb} MiB in {len(numbers)} x 8 MiB parts, {concurrency} in flight: "
        f"{size / total / 1e6:.0f} MB/s; part {latency_summary(latencies)}; "
        f"complete {complete_s * 1000:.1f} ms"
        + (f"; server RSS <= {rss.peak:.0f} MB" if pid else ""),
        flush=True,
    )
    started = time.perf_counter()
    status, data = client.request("GET", key, length=size)
    got = int.from_bytes(data, "big") if data else 0
    print(
        f"GET {size_mb} MiB {size / (time.perf_counter() - started) / 1e6:.0f} MB/s ({got} bytes)"
    )


def _request_body(
    client: Client,
    method: str,
    path: str,
    body: bytes = b"",
    query: list[tuple[str, str]] | None = None,
) -> tuple[int, bytes]:
    status, headers, data = _raw(client, method, path, body, query)
    return status, data


def _request_headers(
    client: Client, method: str, path: str, body: bytes, query: list[tuple[str, str]]
) -> tuple[int, dict[str, str]]:
    status, headers, _ = _raw(client, method, path, body, query, payload_hash=UNSIGNED)
    return status, headers


def _raw(
    client: Client,
    method: str,
    path: str,
    body: bytes,
    query: list[tuple[str, str]] | None,
    payload_hash: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    from datetime import UTC, datetime
    from urllib.parse import quote

    from s4d.auth.sigv4 import sign_request

    headers = {"host": f"{client.host}:{client.port}"}
    digest = payload_hash or hashlib.sha256(body).hexdigest()
    headers.update(
        sign_request(
            method,
            path,
            query or [],
            headers,
            client.access_key,
            client.secret,
            now=datetime.now(UTC),
            payload_hash=digest,
        )
    )
    target = path
    if query:
        target += "?" + "&".join(f"{quote(k)}={quote(v)}" if v else quote(k) for k, v in query)
    headers["content-length"] = str(len(body))
    client.conn.request(method, target, body=body, headers=headers)
    response = client.conn.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


async def _completion(reactor: Any, parts: int) -> None:
    from s4d.engine import Engine, StagedBody
    from s4d.features import multipart as fm
    from s4d.features.objects import WriteConditions
    from s4d.store.chunks import WrittenChunk
    from s4d.store.model import MultipartUpload
    from s4d.store.store import Store, StoreConfig
    from s4d.util.threads import ExecutorRunner, FutureBridge

    data_dir = tempfile.mkdtemp(prefix="s4d-bench-mp-")
    runner = ExecutorRunner(FutureBridge(reactor.callFromThread), 4)
    store = Store(StoreConfig(data_dir, fsync=True))
    engine = Engine(store, runner, reactor.callFromThread)
    try:
        await engine.buckets.create("bench", "us-east-1")
        upload = await engine.multipart.create("bench", "k", MultipartUpload("", 0, "k", 0))
        piece = os.urandom(5 << 20)
        first = store.put_chunk(piece)
        shared = WrittenChunk(first.ref, None)
        md5 = hashlib.md5(piece, usedforsecurity=False).hexdigest()
        started = time.perf_counter()
        pending = []
        for number in range(1, parts + 1):
            chunk = first if number == 1 else shared
            pending.append(
                engine.multipart.commit_part(
                    "bench", "k", upload.upload_id, number, StagedBody([chunk], len(piece), md5)
                )
            )
        await defer.gatherResults(pending)
        build_s = time.perf_counter() - started
        requested = [fm.RequestedPart(n, f'"{md5}"') for n in range(1, parts + 1)]
        started = time.perf_counter()
        await engine.multipart.complete(
            "bench", "k", upload.upload_id, requested, WriteConditions()
        )
        complete_ms = (time.perf_counter() - started) * 1000
        print(
            f"complete {parts} parts (fsync on): {complete_ms:.1f} ms "
            f"(building them took {build_s:.1f} s)",
            flush=True,
        )
    finally:
        runner.stop()
        store.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Run the multipart benchmark."""
    p = argparse.ArgumentParser(prog="python -m s4d.bench multipart")
    p.add_argument("--endpoint", help="http://host:port of a running server")
    p.add_argument("--access-key", default="BENCHKEY")
    p.add_argument("--secret-key", default="benchsecret")
    p.add_argument("--server-pid", type=int)
    p.add_argument("--spawn", action="store_true", help="start a server of our own")
    p.add_argument("--size", type=int, default=1024, help="object size in MiB")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--parts", type=int, default=10000, help="parts for the completion test")
    args = p.parse_args(argv)
    data_dir = tempfile.mkdtemp(prefix="s4d-bench-mpsrv-")
    proc: subprocess.Popen[bytes] | None = None
    try:
        if args.spawn:
            proc, port = spawn_server(False, data_dir, {})
            target, pid = ("127.0.0.1", port, "BENCHKEY", "benchsecret"), proc.pid
        elif args.endpoint:
            parts = urlsplit(args.endpoint)
            target = (
                parts.hostname or "127.0.0.1",
                parts.port or 80,
                args.access_key,
                args.secret_key,
            )
            pid = args.server_pid
        else:
            target, pid = None, None
        if target is not None:
            _upload(target, args.size, args.concurrency, pid)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)
    if args.parts:
        task.react(lambda reactor: defer.ensureDeferred(_completion(reactor, args.parts)))
    return 0
