"""The query benchmark: S3 Select over a large CSV and a large Parquet object, ?sql over many.

``python -m s4d.bench select --spawn`` starts a server of its own (with
``S4_SELECT_MAX_MEMORY`` as given) on a temporary directory, stores

- a CSV object of ``--size`` MiB (1 GiB by default) and a Parquet object of
  about the same size, written here by pyarrow (row groups of 1M rows),
- ``--objects`` small CSV objects (10,000 by default) under one prefix,

then runs, each once and timed from the request to the last byte of the
answer, while the server's resident set size is sampled every 20 ms:

1. a filter and an aggregate over the whole CSV object (S3 Select),
2. the same over the Parquet object,
3. a selective filter over the Parquet object (a few rows of one row group,
   two columns): the bytes the server read from its store (the Stats event's
   BytesScanned) against the object's size,
4. a filter and an aggregate over all the small objects (``?sql`` with a glob).

MB/s is the object bytes (or, for 4., the bytes of every small object) over
the time of the query. The peak RSS of each phase is compared with
``S4_SELECT_MAX_MEMORY + 100 MB``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from s4d.auth.sigv4 import sign_request
from s4d.bench.s3 import RssSampler, spawn_server
from s4d.bench.stats import process_peak_rss_mb
from s4d.config import parse_size
from s4d.sql import eventstream

ACCESS_KEY, SECRET_KEY = "BENCHKEY", "benchsecret"
CATEGORIES = [f"cat{i:02d}" for i in range(20)]


class Connection:
    """One keep-alive connection sending SigV4-signed requests."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=3600)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterator[bytes] = b"",
        query: list[tuple[str, str]] | None = None,
        length: int | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; the status and the whole answer."""
        headers = {"host": f"{self.host}:{self.port}"}
        payload = (
            hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else "UNSIGNED-PAYLOAD"
        )
        headers.update(
            sign_request(
                method, path, query or [], headers, ACCESS_KEY, SECRET_KEY,
                now=datetime.now(UTC), payload_hash=payload,
            )
        )  # fmt: skip
        target = quote(path) + (
            "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query) if query else ""
        )
        size = length if length is not None else len(body) if isinstance(body, bytes) else 0
        if method in ("PUT", "POST"):
            headers["content-length"] = str(size)
        self.conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            self.conn.putheader(name, value)
        self.conn.endheaders()
        if isinstance(body, bytes):
            if body:
                self.conn.send(body)
        else:
            for piece in body:
                self.conn.send(piece)
        response = self.conn.getresponse()
        return response.status, response.read()


# --- the data ---------------------------------------------------------------------------


def _table(first: int, rows: int) -> Any:
    """Rows ``first..first+rows`` of the benchmark's table: id, category, amount, note."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa.table(
        {
            "id": pa.array(range(first, first + rows), pa.int64()),
            "category": pa.array(CATEGORIES * (rows // len(CATEGORIES)) + CATEGORIES[: rows % 20]),
            "amount": pc.round(pc.multiply(pc.random(rows), 1000.0), 2),
            "note": pc.cast(
                pc.floor(pc.multiply(pc.random(rows), 1e15)).cast(pa.int64()), pa.string()
            ),
        }
    )


def csv_blocks(size: int) -> Iterator[bytes]:
    """``size`` bytes of CSV (id,category,amount,note, with a header), in blocks."""
    import io

    import pyarrow.csv as pa_csv

    header = b"id,category,amount,note\n"
    yield header
    sent, first, rows = len(header), 0, 100_000
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    while sent < size:
        out = io.BytesIO()
        pa_csv.write_csv(_table(first, rows), out, options)
        data = out.getvalue()
        if sent + len(data) > size:  # end on a whole line
            cut = data.rfind(b"\n", 0, size - sent)
            if cut < 0:
                break
            data = data[: cut + 1]
        first += rows
        sent += len(data)
        yield data


def write_parquet(path: str, size: int) -> tuple[int, int]:
    """A Parquet file of about ``size`` bytes (row groups of 1M rows); its size and rows."""
    import pyarrow.parquet as pq

    rows_per_group = 1 << 20
    first = 0
    table = _table(0, 1)
    with pq.ParquetWriter(path, table.schema) as writer:
        while os.path.getsize(path) < size:
            writer.write_table(_table(first, rows_per_group), row_group_size=rows_per_group)
            first += rows_per_group
    return os.path.getsize(path), first


def file_blocks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            yield block


# --- running queries --------------------------------------------------------------------


def select_document(expression: str, input_xml: str) -> bytes:
    return (
        '<SelectObjectContentRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Expression>{escape(expression)}</Expression><ExpressionType>SQL</ExpressionType>"
        f"<InputSerialization>{input_xml}</InputSerialization>"
        "<OutputSerialization><JSON/></OutputSerialization></SelectObjectContentRequest>"
    ).encode()


def run_select(conn: Connection, key: str, expression: str, input_xml: str) -> dict[str, Any]:
    """One SelectObjectContent: time, records and the Stats counts."""
    started = time.perf_counter()
    status, body = conn.request(
        "POST", f"/bench/{key}", select_document(expression, input_xml),
        query=[("select", ""), ("select-type", "2")],
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"select failed ({status}): {body[:500]!r}")
    messages, _ = eventstream.decode(body)
    kinds = [m.kind for m in messages]
    if kinds[-1:] != ["End"]:
        raise SystemExit(f"select ended with {messages[-1].headers}")
    stats = next(m.payload for m in messages if m.kind == "Stats").decode()
    counts = {
        name: int(stats.split(f"<{name}>")[1].split("<")[0])
        for name in ("BytesScanned", "BytesProcessed", "BytesReturned")
    }
    records = b"".join(m.payload for m in messages if m.kind == "Records")
    return {"seconds": elapsed, "records": records, **counts}


def report(name: str, size: int, result: dict[str, Any], rss: float, limit_mb: float) -> None:
    mbps = size / result["seconds"] / 1e6
    verdict = "within" if rss <= limit_mb else "OVER"
    print(
        f"{name:<34} {size / 1e6:8.0f} MB {result['seconds']:7.2f} s {mbps:7.0f} MB/s   "
        f"read from store {result.get('BytesScanned', 0) / 1e6:8.1f} MB   "
        f"server RSS peak {rss:5.0f} MB ({verdict} {limit_mb:.0f})",
        flush=True,
    )


def main(argv: list[str]) -> int:
    """Store the objects, run the four queries, print one line each."""
    p = argparse.ArgumentParser(prog="python -m s4d.bench select")
    p.add_argument("--size", type=int, default=1024, help="MiB of the CSV and Parquet objects")
    p.add_argument("--objects", type=int, default=10000, help="small objects for ?sql")
    p.add_argument("--max-memory", default="256MB", help="S4_SELECT_MAX_MEMORY of the server")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    args = p.parse_args(argv)
    size = args.size << 20
    max_memory = parse_size(args.max_memory)
    limit_mb = max_memory / (1 << 20) + 100
    data_dir = tempfile.mkdtemp(prefix="s4d-bench-select-")
    scratch = tempfile.mkdtemp(prefix="s4d-bench-select-parquet-")
    proc, port = spawn_server(
        False, data_dir, {"S4_SELECT_MAX_MEMORY": args.max_memory, "S4_SELECT_TIMEOUT": "0"}
    )
    try:
        conn = Connection("127.0.0.1", port)
        conn.request("PUT", "/bench")
        idle = process_peak_rss_mb(proc.pid) or 0.0
        print(f"s4d on 127.0.0.1:{port}, S4_SELECT_MAX_MEMORY={args.max_memory}; "
              f"server RSS before any query {idle:.0f} MB", flush=True)  # fmt: skip

        started = time.perf_counter()
        csv_path = os.path.join(scratch, "big.csv")
        with open(csv_path, "wb") as f:
            for block in csv_blocks(size):
                f.write(block)
        size = os.path.getsize(csv_path)
        status, _ = conn.request("PUT", "/bench/big.csv", file_blocks(csv_path), length=size)
        os.unlink(csv_path)
        print(f"stored big.csv ({size >> 20} MiB) in {time.perf_counter() - started:.1f} s "
              f"(status {status})", flush=True)  # fmt: skip
        parquet_path = os.path.join(scratch, "big.parquet")
        parquet_size, parquet_rows = write_parquet(parquet_path, size)
        status, _ = conn.request(
            "PUT", "/bench/big.parquet", file_blocks(parquet_path), length=parquet_size
        )
        os.unlink(parquet_path)
        print(f"stored big.parquet ({parquet_size >> 20} MiB, written by pyarrow) "
              f"(status {status})", flush=True)  # fmt: skip

        conn.request("PUT", "/bench/tiny.csv", b"a\n1\n")
        started = time.perf_counter()
        run_select(conn, "tiny.csv", "SELECT count(*) FROM S3Object", "<CSV/>")
        print(f"first query (loads pyarrow and DataFusion): {time.perf_counter() - started:.2f} s; "
              f"server RSS then {current_rss_mb(proc.pid):.0f} MB", flush=True)  # fmt: skip
        aggregate = (
            "SELECT s.category, count(*) AS n, sum({amount}) AS total FROM S3Object s "
            "WHERE {amount} > 500 GROUP BY s.category"
        )
        csv_input = "<CSV><FileHeaderInfo>USE</FileHeaderInfo></CSV>"
        with RssSampler(proc.pid) as rss:
            result = run_select(
                conn, "big.csv", aggregate.format(amount="CAST(s.amount AS DOUBLE)"), csv_input
            )
        assert len(result["records"].splitlines()) == 20
        report("CSV filter+aggregate (Select)", size, result, rss.peak, limit_mb)
        with RssSampler(proc.pid) as rss:
            result = run_select(
                conn, "big.parquet", aggregate.format(amount="s.amount"), "<Parquet/>"
            )
        assert len(result["records"].splitlines()) == 20
        report("Parquet filter+aggregate (Select)", parquet_size, result, rss.peak, limit_mb)
        with RssSampler(proc.pid) as rss:
            result = run_select(
                conn,
                "big.parquet",
                "SELECT s.id, s.amount FROM S3Object s "
                f"WHERE s.id BETWEEN {parquet_rows // 2} AND {parquet_rows // 2 + 9}",
                "<Parquet/>",
            )
        assert len(result["records"].splitlines()) == 10
        report("Parquet selective filter (Select)", parquet_size, result, rss.peak, limit_mb)
        print(f"  read {result['BytesScanned']:,} of {parquet_size:,} bytes "
              f"({100 * result['BytesScanned'] / parquet_size:.2f} %)", flush=True)  # fmt: skip

        small_total = put_small_objects(port, args.objects)
        query = {
            "sql": "SELECT category, count(*) AS n, sum(CAST(amount AS DOUBLE)) AS total "
            "FROM 'small/*.csv' WHERE CAST(amount AS DOUBLE) > 500 GROUP BY category",
            "format": "csv",
        }
        with RssSampler(proc.pid) as rss:
            started = time.perf_counter()
            status, body = conn.request("POST", "/bench", json.dumps(query).encode(), [("sql", "")])
            seconds = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"?sql failed ({status}): {body[:500]!r}")
        assert len(json.loads(body)) == 20
        report(f"?sql over {args.objects} objects", small_total, {"seconds": seconds}, rss.peak,
               limit_mb)  # fmt: skip
        print(f"  {args.objects / seconds:.0f} objects/s", flush=True)
        peak = process_peak_rss_mb(proc.pid)
        if peak:
            print(f"server peak RSS over the whole run {peak:.0f} MB", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def current_rss_mb(pid: int) -> float:
    """A process's resident set size now, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def put_small_objects(port: int, count: int) -> int:
    """Store ``count`` small CSV objects under ``small/``; their total size."""

    def body(n: int) -> bytes:
        rng = random.Random(n)
        rows = "".join(
            f"{n * 10 + i},{CATEGORIES[(n + i) % 20]},{rng.random() * 1000:.2f},x{i}\n"
            for i in range(10)
        )
        return ("id,category,amount,note\n" + rows).encode()

    def put(numbers: list[int]) -> int:
        conn = Connection("127.0.0.1", port)
        total = 0
        for n in numbers:
            data = body(n)
            status, _ = conn.request("PUT", f"/bench/small/{n:06d}.csv", data)
            assert status == 200
            total += len(data)
        return total

    started = time.perf_counter()
    groups = [list(range(i, count, 8)) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(put, groups))
    print(f"stored {count} small objects ({total / 1e6:.1f} MB) in "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    return total
