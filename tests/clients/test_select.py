"""S3 Select and ``?sql`` against a real ``twistd s4``, driven by boto3 and the AWS CLI.

boto3's ``select_object_content`` parses the event stream itself (checking
both CRCs of every message), so a test that reads its ``Payload`` events
proves the framing as well as the answer. The AWS CLI's
``select-object-content`` writes the records to a file. ``?sql`` is plain
HTTP with a JSON body, sent with a SigV4 signature by botocore's signer.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import os
import urllib.request
from typing import Any

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.clients.harness import (
    ServerTestCase,
    boto3_client,
    client_binary,
    isolated_env,
    run_client,
)

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sql", "data")

#: pyarrow writing a Parquet object through s4d's S3 API (pyarrow.fs.S3FileSystem), in a
#: child interpreter (the AWS SDK for C++ reads ~/.aws on start-up: a temporary home).
WRITE_PARQUET = r"""
import sys
import pyarrow as pa, pyarrow.fs as pafs, pyarrow.parquet as pq
endpoint, scheme, key, secret, bucket, ca = sys.argv[1:7]
fs = pafs.S3FileSystem(
    endpoint_override=endpoint, scheme=scheme, access_key=key, secret_key=secret,
    region="us-east-1", **({"tls_ca_file_path": ca} if ca else {})
)
n = 50000
table = pa.table({
    "id": pa.array(range(n), pa.int64()),
    "kind": pa.array([f"k{i % 5}" for i in range(n)]),
    "amount": pa.array([i * 0.25 for i in range(n)], pa.float64()),
})
pq.write_table(table, f"{bucket}/tables/amounts.parquet", filesystem=fs, row_group_size=5000)
print("written")
"""

PEOPLE = (
    b'name,age,city\nalice,30,Paris\nbob,25,Berlin\n"carol, jr",41,"New\nYork"\ndave,35,Paris\n'
)


def csv_input(header: str = "USE", **extra: Any) -> dict[str, Any]:
    """boto3's InputSerialization for CSV."""
    return {"CSV": {"FileHeaderInfo": header, "AllowQuotedRecordDelimiter": True, **extra}}


class SelectTestCase(ServerTestCase):
    """Helpers: a boto3 client, a bucket, running a select and reading its events."""

    def setUp(self) -> None:
        super().setUp()
        self.s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        self.bucket = self.bucket_name()
        self.s3.create_bucket(Bucket=self.bucket)

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def select(
        self,
        key: str,
        expression: str,
        input_serialization: dict[str, Any],
        output: dict[str, Any] | None = None,
        **extra: Any,
    ) -> tuple[bytes, list[dict[str, Any]]]:
        """The records and every event of a select."""
        response = self.s3.select_object_content(
            Bucket=self.bucket,
            Key=key,
            Expression=expression,
            ExpressionType="SQL",
            InputSerialization=input_serialization,
            OutputSerialization=output or {"JSON": {}},
            **extra,
        )
        events = list(response["Payload"])
        records = b"".join(e["Records"]["Payload"] for e in events if "Records" in e)
        return records, events

    def json_lines(self, records: bytes) -> list[dict[str, Any]]:
        return [json.loads(line) for line in records.decode().splitlines() if line]


class Boto3SelectCsvTests(SelectTestCase):
    """SelectObjectContent over CSV with boto3."""

    def test_filter_and_project(self) -> None:
        """A WHERE on a cast column and a projection; Stats and End close the stream."""
        self.put("people.csv", PEOPLE)
        records, events = self.select(
            "people.csv",
            "SELECT s.name, s.city FROM S3Object s WHERE CAST(s.age AS INT) >= 30",
            csv_input(),
        )
        self.assertEqual(
            self.json_lines(records),
            [
                {"name": "alice", "city": "Paris"},
                {"name": "carol, jr", "city": "New\nYork"},
                {"name": "dave", "city": "Paris"},
            ],
        )
        kinds = [next(iter(e)) for e in events]
        self.assertEqual(kinds[-2:], ["Stats", "End"])
        stats = events[-2]["Stats"]["Details"]
        self.assertEqual(stats["BytesScanned"], len(PEOPLE))
        self.assertEqual(stats["BytesReturned"], len(records))

    def test_csv_output_positional_columns(self) -> None:
        """FileHeaderInfo NONE: columns are _1, _2 ...; CSV output quotes what needs it."""
        self.put("people.csv", PEOPLE)
        records, _ = self.select(
            "people.csv",
            "SELECT s._1, s._3 FROM S3Object s WHERE s._2 <> 'age'",
            csv_input("NONE"),
            {"CSV": {}},
        )
        rows = list(csv.reader(io.StringIO(records.decode())))
        self.assertEqual(
            rows,
            [["alice", "Paris"], ["bob", "Berlin"], ["carol, jr", "New\nYork"], ["dave", "Paris"]],
        )

    def test_aggregate_group_order_limit(self) -> None:
        """GROUP BY, ORDER BY and LIMIT (beyond AWS's S3 Select) work."""
        self.put("people.csv", PEOPLE)
        records, _ = self.select(
            "people.csv",
            "SELECT s.city, count(*) AS n, max(CAST(s.age AS INT)) AS oldest FROM S3Object s "
            "GROUP BY s.city ORDER BY n DESC, s.city LIMIT 2",
            csv_input(),
        )
        self.assertEqual(
            self.json_lines(records),
            [{"city": "Paris", "n": 2, "oldest": 35}, {"city": "Berlin", "n": 1, "oldest": 25}],
        )

    def test_gzip_csv(self) -> None:
        """A gzip-compressed CSV object; BytesScanned counts the compressed bytes."""
        body = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(20000))
        packed = gzip.compress(body)
        self.put("squares.csv.gz", packed)
        records, events = self.select(
            "squares.csv.gz",
            "SELECT sum(CAST(s.value AS BIGINT)) AS total, count(*) AS n FROM S3Object s",
            {**csv_input(), "CompressionType": "GZIP"},
        )
        self.assertEqual(
            self.json_lines(records), [{"total": sum(i * i for i in range(20000)), "n": 20000}]
        )
        stats = next(e["Stats"]["Details"] for e in events if "Stats" in e)
        self.assertEqual(stats["BytesScanned"], len(packed))
        self.assertEqual(stats["BytesProcessed"], len(body))

    def test_bzip2_csv(self) -> None:
        """A bzip2-compressed CSV object."""
        self.put("people.csv.bz2", bz2.compress(PEOPLE))
        records, _ = self.select(
            "people.csv.bz2",
            "SELECT count(*) FROM S3Object",
            {**csv_input(), "CompressionType": "BZIP2"},
        )
        self.assertEqual(self.json_lines(records), [{"_1": 4}])

    def test_syntax_error_is_an_s3_error(self) -> None:
        """A query that does not parse is a 400 with a ParseXxx code, before any event."""
        self.put("people.csv", PEOPLE)
        with self.assertRaises(ClientError) as caught:
            self.select("people.csv", "SELECT s.name FROM S3Object s WHERE", csv_input())
        error = caught.exception.response["Error"]
        self.assertTrue(error["Code"].startswith("Parse"), error)
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)

    def test_statements_that_reach_files_are_refused(self) -> None:
        """DDL, COPY and file table functions: S3 errors, and no file appears."""
        self.put("people.csv", PEOPLE)
        target = os.path.join(self.tmp, "written.csv")
        for statement in (
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            f"COPY (SELECT 1) TO '{target}'",
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM S3Object s WHERE s.name IN (SELECT * FROM '/etc/passwd')",
        ):
            with self.assertRaises(ClientError, msg=statement) as caught:
                self.select("people.csv", statement, csv_input())
            self.assertEqual(
                caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400, statement
            )
            self.assertNotIn("root:", str(caught.exception))
        self.assertFalse(os.path.exists(target))

    def test_missing_object(self) -> None:
        """NoSuchKey, as for a GET."""
        with self.assertRaises(ClientError) as caught:
            self.select("absent.csv", "SELECT * FROM S3Object", csv_input())
        self.assertEqual(caught.exception.response["Error"]["Code"], "NoSuchKey")

    def test_error_event_mid_stream(self) -> None:
        """A cast that fails on a late row: records first, then an error event, no End."""
        rows = b"".join(b"%d\n" % i for i in range(200000)) + b"oops\n"
        self.put("numbers.csv", b"n\n" + rows)
        response = self.s3.select_object_content(
            Bucket=self.bucket,
            Key="numbers.csv",
            Expression="SELECT CAST(s.n AS INT) AS n FROM S3Object s",
            ExpressionType="SQL",
            InputSerialization=csv_input(),
            OutputSerialization={"CSV": {}},
        )
        seen = 0
        with self.assertRaises(Exception) as caught:
            for event in response["Payload"]:
                if "Records" in event:
                    seen += len(event["Records"]["Payload"])
                self.assertNotIn("End", event)
        self.assertIn("CastFailed", str(caught.exception))
        self.assertGreater(seen, 0)


class Boto3SelectJsonParquetTests(SelectTestCase):
    """SelectObjectContent over JSON and Parquet with boto3."""

    RECORDS = [
        {"id": 1, "user": {"name": "ann", "langs": ["fr", "en"]}, "score": 7.5},
        {"id": 2, "user": {"name": "bo", "langs": ["sv"]}, "score": 9.0},
        {"id": 3, "user": {"name": "cy", "langs": []}, "score": 4.25},
    ]

    def test_json_lines(self) -> None:
        """JSON LINES: nested paths, list elements from 0, IS MISSING."""
        self.put("u.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in self.RECORDS))
        records, _ = self.select(
            "u.jsonl",
            "SELECT s.user.name AS name, s.user.langs[0] AS first FROM S3Object s "
            "WHERE s.user.langs[1] IS MISSING ORDER BY s.score DESC",
            {"JSON": {"Type": "LINES"}},
        )
        self.assertEqual(
            self.json_lines(records), [{"name": "bo", "first": "sv"}, {"name": "cy", "first": None}]
        )

    def test_json_document(self) -> None:
        """JSON DOCUMENT: a top-level array walked with S3Object[*]; CSV output."""
        self.put("u.json", json.dumps(self.RECORDS, indent=2).encode())
        records, _ = self.select(
            "u.json",
            "SELECT s.id, s.score FROM S3Object[*] s WHERE s.score > 5",
            {"JSON": {"Type": "DOCUMENT"}},
            {"CSV": {}},
        )
        self.assertEqual(records, b"1,7.5\n2,9\n")

    def test_parquet_written_by_pyarrow_through_s3(self) -> None:
        """pyarrow writes the object through the S3 API; a filter and an aggregate read it."""
        assert self.server is not None
        env = isolated_env(os.path.join(self.tmp, "child-home"))
        import sys

        run_client(
            self,
            [
                sys.executable,
                "-c",
                WRITE_PARQUET,
                self.server.host,
                self.server.scheme,
                self.server.access_key,
                self.server.secret_key,
                self.bucket,
                self.server.cert_path or "",
            ],
            env,
        )
        records, events = self.select(
            "tables/amounts.parquet",
            "SELECT s.kind, count(*) AS n, sum(s.amount) AS total FROM S3Object s "
            "WHERE s.id >= 40000 GROUP BY s.kind ORDER BY s.kind",
            {"Parquet": {}},
        )
        expected = [
            {
                "kind": f"k{k}",
                "n": 2000,
                "total": sum(i * 0.25 for i in range(40000, 50000) if i % 5 == k),
            }
            for k in range(5)
        ]
        self.assertEqual(self.json_lines(records), expected)
        self.assertEqual(next(iter(events[-1])), "End")

    def test_parquet_written_by_duckdb(self) -> None:
        """DuckDB's Parquet (tests/sql/data): decimals, dates, timestamps, structs."""
        with open(os.path.join(DATA, "duckdb_orders.parquet"), "rb") as f:
            self.put("orders.parquet", f.read())
        records, _ = self.select(
            "orders.parquet",
            "SELECT s.shop.city AS city, count(*) AS n, max(s.placed) AS last FROM S3Object s "
            "WHERE s.day < CAST('2026-01-03' AS DATE) GROUP BY s.shop.city ORDER BY city",
            {"Parquet": {}},
        )
        rows = self.json_lines(records)
        self.assertEqual([r["city"] for r in rows], ["Berlin", "Paris"])
        self.assertEqual(sum(r["n"] for r in rows), sum(1 for i in range(10000) if i % 365 < 2))


class AwsCliSelectTests(SelectTestCase):
    """``aws s3api select-object-content`` writes the records to a file."""

    def test_select_object_content(self) -> None:
        """CSV in, CSV out, through the AWS CLI's own event stream parser."""
        assert self.server is not None
        aws = client_binary("aws")
        env = isolated_env(os.path.join(self.tmp, "cli-home"))
        with open(env["AWS_SHARED_CREDENTIALS_FILE"], "w") as f:
            f.write(
                f"[default]\naws_access_key_id = {self.server.access_key}\n"
                f"aws_secret_access_key = {self.server.secret_key}\n"
            )
        with open(env["AWS_CONFIG_FILE"], "w") as f:
            f.write(f"[default]\nregion = {self.server.region}\n")
        self.put("people.csv", PEOPLE)
        out = os.path.join(self.tmp, "out.csv")
        run_client(
            self,
            [
                aws,
                "--endpoint-url",
                self.server.endpoint,
                "s3api",
                "select-object-content",
                "--bucket",
                self.bucket,
                "--key",
                "people.csv",
                "--expression",
                "SELECT s.name, s.age FROM S3Object s WHERE s.city = 'Paris'",
                "--expression-type",
                "SQL",
                "--input-serialization",
                '{"CSV": {"FileHeaderInfo": "USE", "AllowQuotedRecordDelimiter": true}}',
                "--output-serialization",
                '{"CSV": {}}',
                out,
            ],
            env,
        )
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"alice,30\ndave,35\n")


def signed_select(
    server: Any, bucket: str, key: str, document: bytes
) -> tuple[str, dict[str, str]]:
    """The URL and headers of a SigV4-signed SelectObjectContent request (to send by hand)."""
    url = f"{server.endpoint}/{bucket}/{key}?select&select-type=2"
    request = AWSRequest(method="POST", url=url, data=document)
    S3SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", server.region).add_auth(
        request
    )
    return url, dict(request.headers)


def select_xml(expression: str) -> bytes:
    """A SelectObjectContentRequest over CSV without a header, JSON out."""
    from xml.sax.saxutils import escape

    return (
        '<SelectObjectContentRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Expression>{escape(expression)}</Expression><ExpressionType>SQL</ExpressionType>"
        "<InputSerialization><CSV/></InputSerialization>"
        "<OutputSerialization><JSON/></OutputSerialization></SelectObjectContentRequest>"
    ).encode()


#: A query that computes for hours: a count over a four-way join of a 3000-row object
#: (4.05e13 rows). A three-way one (1.35e10 rows) is not enough: DataFusion counts it in
#: about 3.6 s of CPU, so on an idle machine it answered before a 5 s timeout, with
#: Records, Stats and End, and the timeout test saw no error event.
ENDLESS = "SELECT count(*) FROM S3Object a, S3Object b, S3Object c, S3Object d WHERE a._1 < b._1"


class SelectLimitTests(SelectTestCase):
    """S4_SELECT_TIMEOUT and S4_SELECT_MAX_MEMORY stop a query; the server carries on."""

    server_env = {
        "S4_SELECT_TIMEOUT": "5",
        "S4_SELECT_MAX_MEMORY": "4MB",
        "S4_SELECT_CONCURRENCY": "1",
    }

    def error_event(self, key: str, expression: str) -> dict[str, Any]:
        response = self.s3.select_object_content(
            Bucket=self.bucket,
            Key=key,
            Expression=expression,
            ExpressionType="SQL",
            InputSerialization={"CSV": {}},
            OutputSerialization={"JSON": {}},
        )
        events: list[str] = []
        try:
            for event in response["Payload"]:
                events.extend(event)
        except Exception as e:  # noqa: BLE001 - the error event, as botocore raises it
            self.assertNotIn("End", events)
            return {"text": str(e)}
        self.fail(f"the stream ended without an error event; its events: {events}")

    def test_timeout_is_an_error_event(self) -> None:
        """A query past its time ends with QueryTimeout; S3 requests kept being served."""
        import threading
        import time

        self.put("rows.csv", b"".join(b"%d\n" % i for i in range(3000)))
        self.put("small.txt", b"hello")
        outcome: dict[str, Any] = {}

        def query() -> None:
            try:
                outcome.update(self.error_event("rows.csv", ENDLESS))
            except BaseException as e:  # noqa: BLE001 - reported by the test's thread
                outcome["failure"] = e

        worker = threading.Thread(target=query)
        started = time.monotonic()
        worker.start()
        slowest, gets = 0.0, 0
        while worker.is_alive() and time.monotonic() - started < 60:
            t0 = time.monotonic()
            body = self.s3.get_object(Bucket=self.bucket, Key="small.txt")["Body"].read()
            slowest = max(slowest, time.monotonic() - t0)
            gets += 1
            self.assertEqual(body, b"hello")
        worker.join(60)
        elapsed = time.monotonic() - started
        if "failure" in outcome:
            raise outcome["failure"]
        self.assertIn("QueryTimeout", outcome["text"])
        self.assertLess(elapsed, 30)
        # GETs kept being answered while the query computed (a GET queued behind the
        # query would have waited for its whole 5 s); the margin allows a loaded machine
        self.assertGreaterEqual(gets, 3)
        self.assertLess(slowest, elapsed / 2, "a GET waited on the query")

    def test_memory_limit_is_an_error_event(self) -> None:
        """A join whose build side outgrows the memory pool ends with QueryMemoryExceeded."""
        self.put("big.csv", b"".join(b"%d,%s\n" % (i, b"x" * 40) for i in range(300000)))
        outcome = self.error_event(
            "big.csv", "SELECT count(*) FROM S3Object a JOIN S3Object b ON a._1 = b._1"
        )
        self.assertIn("QueryMemoryExceeded", outcome["text"])
        records, _ = self.select("big.csv", "SELECT count(*) AS n FROM S3Object", {"CSV": {}})
        self.assertEqual(self.json_lines(records), [{"n": 300000}])


class SelectCancelTests(SelectTestCase):
    """A client that goes away cancels its query (one query thread: the next one must run)."""

    server_env = {"S4_SELECT_TIMEOUT": "300", "S4_SELECT_CONCURRENCY": "1"}

    def test_disconnect_cancels_the_query(self) -> None:
        import http.client
        import time
        from urllib.parse import urlsplit

        assert self.server is not None
        self.put("rows.csv", b"".join(b"%d\n" % i for i in range(3000)))
        url, headers = signed_select(self.server, self.bucket, "rows.csv", select_xml(ENDLESS))
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=30)
        connection.request("POST", f"{parts.path}?{parts.query}", select_xml(ENDLESS), headers)
        response = connection.getresponse()
        self.assertEqual(response.status, 200)
        connection.close()  # gone while the query computes
        started = time.monotonic()
        records, _ = self.select("rows.csv", "SELECT count(*) AS n FROM S3Object", {"CSV": {}})
        self.assertEqual(self.json_lines(records), [{"n": 3000}])
        self.assertLess(time.monotonic() - started, 60, "the next query waited for the first")


def sql_query(server: Any, bucket: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
    """``POST /bucket?sql`` signed with SigV4: status, content type and body."""
    url = f"{server.endpoint}/{bucket}?sql"
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST", url=url, data=data, headers={"Content-Type": "application/json"}
    )
    credentials = Credentials(server.access_key, server.secret_key)
    S3SigV4Auth(credentials, "s3", server.region).add_auth(request)
    prepared = urllib.request.Request(url, data=data, method="POST", headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared, timeout=120, context=server.ssl_context()) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


class MultiObjectSqlTests(SelectTestCase):
    """``POST /{bucket}?sql`` over many objects."""

    def test_glob_json_output(self) -> None:
        """A glob selects the objects; the answer is a JSON array."""
        self.put("logs/2026-01/a.csv", b"level,msg\nINFO,start\nERROR,disk\n")
        self.put("logs/2026-02/b.csv", b"level,msg\nERROR,net\nINFO,stop\n")
        self.put("logs/other.txt", b"level,msg\nERROR,not matched\n")
        status, kind, body = sql_query(
            self.server,
            self.bucket,
            {"sql": "SELECT msg FROM 'logs/2026-*/*.csv' WHERE level = 'ERROR' ORDER BY msg"},
        )
        self.assertEqual((status, kind), (200, "application/json"), body)
        self.assertEqual(json.loads(body), [{"msg": "disk"}, {"msg": "net"}])

    def test_join_of_two_prefixes_csv_output(self) -> None:
        """A JOIN between two globs; CSV output with a header."""
        self.put("users/a.csv", b"id,name\n1,ann\n2,bo\n")
        self.put("users/b.csv", b"id,name\n3,cy\n")
        self.put("orders/1.csv", b"user,total\n1,10\n3,5\n")
        self.put("orders/2.csv", b"user,total\n1,7\n")
        status, kind, body = sql_query(
            self.server,
            self.bucket,
            {
                "sql": "SELECT u.name, sum(CAST(o.total AS INT)) AS spent FROM 'users/*.csv' u "
                "JOIN 'orders/*.csv' o ON u.id = o.user GROUP BY u.name ORDER BY spent DESC",
                "output": "csv",
            },
        )
        self.assertEqual((status, kind), (200, "text/csv"), body)
        self.assertEqual(body, b"name,spent\nann,17\ncy,5\n")

    def test_thousand_objects(self) -> None:
        """A query over 1,000 CSV objects (listed a page at a time) counts every row."""
        from concurrent.futures import ThreadPoolExecutor

        def put(n: int) -> None:
            self.put(f"events/{n:04d}.csv", b"id,kind\n%d,a\n%d,b\n" % (n, n))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(1000)))
        self.put("elsewhere/x.csv", b"id,kind\n0,a\n")
        status, _, body = sql_query(
            self.server,
            self.bucket,
            {
                "sql": "SELECT kind, count(*) AS n, count(DISTINCT id) AS ids, "
                "min(CAST(id AS INT)) AS lo, max(CAST(id AS INT)) AS hi "
                "FROM 'events/*.csv' GROUP BY kind ORDER BY kind"
            },
        )
        self.assertEqual(status, 200, body)
        self.assertEqual(
            json.loads(body),
            [
                {"kind": "a", "n": 1000, "ids": 1000, "lo": 0, "hi": 999},
                {"kind": "b", "n": 1000, "ids": 1000, "lo": 0, "hi": 999},
            ],
        )

    def test_error_after_the_start_cuts_the_body(self) -> None:
        """A failure once rows are flowing: the client sees an incomplete body."""
        import http.client

        self.put("late/1.csv", b"n\n" + b"".join(b"%d\n" % i for i in range(300000)) + b"x\n")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, OSError)):
            sql_query(
                self.server,
                self.bucket,
                {"sql": "SELECT CAST(n AS INT) AS n FROM 'late/*.csv'", "output": "csv"},
            )

    def test_errors_are_s3_documents(self) -> None:
        """No match, bad SQL, a statement that is not a query: S3 XML errors."""
        self.put("a.csv", b"x\n1\n")
        for body, code in (
            ({"sql": "SELECT * FROM 'nothing/*'"}, b"<Code>InvalidRequest</Code>"),
            ({"sql": "SELECT * FROM 'a.csv' WHERE"}, b"<Code>ParseExpectedExpression</Code>"),
            ({"sql": "DROP TABLE t0"}, b"<Code>UnsupportedSqlOperation</Code>"),
        ):
            status, kind, answer = sql_query(self.server, self.bucket, body)
            self.assertEqual((status, kind), (400, "application/xml"), answer)
            self.assertIn(code, answer)
