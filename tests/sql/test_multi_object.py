"""Multi-object SQL (``POST /{bucket}?sql``, S4's shapes), in memory.

The engine's listing is watched to check that a glob lists only its literal
prefix, page by page, while the query runs. Globs themselves are tested as
patterns first.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.sql.globs import compile_glob, literal_prefix
from tests.s3.memory import MemoryResponse
from tests.sql._support import QueryMemoryS3


class GlobTests(SynchronousTestCase):
    """Glob patterns and their literal prefixes."""

    def test_literal_prefix(self) -> None:
        self.assertEqual(literal_prefix("logs/2026-*/*.csv"), "logs/2026-")
        self.assertEqual(literal_prefix("a/b.csv"), "a/b.csv")
        self.assertEqual(literal_prefix("*.csv"), "")
        self.assertEqual(literal_prefix(r"we\*ird/*"), "we*ird/")

    def test_matching(self) -> None:
        cases = [
            ("logs/*.csv", "logs/a.csv", True),
            ("logs/*.csv", "logs/x/a.csv", False),
            ("logs/**.csv", "logs/x/a.csv", True),
            ("logs/**/a.csv", "logs/a.csv", True),
            ("logs/**/a.csv", "logs/x/y/a.csv", True),
            ("data-?.json", "data-1.json", True),
            ("data-?.json", "data-10.json", False),
            ("data-[0-4].json", "data-3.json", True),
            ("data-[!0-4].json", "data-3.json", False),
            ("{a,b}/*.csv", "b/x.csv", True),
            ("{a,b}/*.csv", "c/x.csv", False),
            (r"x\*y", "x*y", True),
        ]
        for pattern, key, expected in cases:
            self.assertEqual(compile_glob(pattern).matches(key), expected, (pattern, key))

    def test_malformed(self) -> None:
        for pattern in ("a[bc", "{a,b", "ends\\"):
            with self.assertRaises(S3Error, msg=pattern):
                compile_glob(pattern)


class MultiObjectCase(SynchronousTestCase):
    """An in-memory server; ``query`` sends ``?sql``."""

    def setUp(self) -> None:
        self.s3 = QueryMemoryS3()
        self.addCleanup(self.s3.close)
        self.listed: list[tuple[str, str | None]] = []
        objects = self.s3.queries.objects
        original = objects.list_page

        def watched(bucket: str, prefix: str = "", *args: Any, **kwargs: Any) -> Any:
            self.listed.append((prefix, args[1] if len(args) > 1 else kwargs.get("after")))
            return original(bucket, prefix, *args, **kwargs)

        objects.list_page = watched  # type: ignore[method-assign]

    def put(self, key: str, body: bytes) -> None:
        self.s3.put("bkt", key, body)

    def query(self, **body: Any) -> MemoryResponse:
        return self.s3.chunked("POST", "/bkt?sql", json.dumps(body).encode())

    def rows(self, **body: Any) -> Any:
        response = self.query(**body)
        self.assertEqual(response.status, 200, response.body[:500])
        self.assertEqual(response.headers.get("x-test-complete"), "true")
        if response.headers["content-type"] == "text/csv":
            return list(csv.reader(io.StringIO(response.body.decode())))
        return json.loads(response.body)


class MultiObjectTests(MultiObjectCase):
    """Globs, formats, outputs, joins."""

    def test_glob_lists_only_its_prefix(self) -> None:
        self.put("logs/2026-01/a.csv", b"level,msg\nINFO,a1\nERROR,a2\n")
        self.put("logs/2026-02/b.csv", b"level,msg\nERROR,b1\n")
        self.put("logs/2025-12/old.csv", b"level,msg\nERROR,old\n")
        self.put("other/c.csv", b"level,msg\nERROR,c1\n")
        self.assertEqual(
            self.rows(sql="SELECT msg FROM 'logs/2026-*/*.csv' WHERE level = 'ERROR' ORDER BY msg"),
            [{"msg": "a2"}, {"msg": "b1"}],
        )
        self.assertEqual({prefix for prefix, _ in self.listed}, {"logs/2026-"})

    def test_no_glob_reads_the_whole_bucket(self) -> None:
        self.put("a.csv", b"x\n1\n")
        self.put("dir/b.csv", b"x\n2\n")
        self.assertEqual(
            self.rows(sql="SELECT sum(CAST(x AS INT)) AS total FROM S3Object"), [{"total": 3}]
        )
        self.assertEqual({prefix for prefix, _ in self.listed}, {""})

    def test_csv_output_and_options(self) -> None:
        self.put("t/1.csv", b"a;b\n1;x\n")
        self.put("t/2.csv", b"a;b\n2;y,z\n")
        self.assertEqual(
            self.rows(sql="SELECT b, a FROM 't/*.csv' ORDER BY a", delimiter=";", output="csv"),
            [["b", "a"], ["x", "1"], ["y,z", "2"]],
        )
        self.assertEqual(
            self.rows(sql="SELECT _2 FROM 't/*.csv' ORDER BY _1", has_headers=False, delimiter=";"),
            [{"_2": "x"}, {"_2": "y,z"}, {"_2": "b"}, {"_2": "b"}],
        )

    def test_json_lines_json_documents_parquet_and_gzip(self) -> None:
        self.put("j/1.jsonl", b'{"k": "a", "v": 1}\n{"k": "b", "v": 2}\n')
        self.put("j/2.jsonl.gz", gzip.compress(b'{"k": "a", "v": 10}\n'))
        self.assertEqual(
            self.rows(sql="SELECT k, sum(v) AS v FROM 'j/*' GROUP BY k ORDER BY k", format="jsonl"),
            [{"k": "a", "v": 11}, {"k": "b", "v": 2}],
        )
        self.put("d/1.json", json.dumps({"k": "a", "v": 5}, indent=2).encode())
        self.assertEqual(self.rows(sql="SELECT v FROM 'd/*.json'", format="json"), [{"v": 5}])
        for n in range(3):
            out = io.BytesIO()
            pq.write_table(pa.table({"n": [n, n + 10]}), out)
            self.put(f"p/{n}.parquet", out.getvalue())
        self.assertEqual(
            self.rows(sql="SELECT count(*) AS c, max(n) AS m FROM 'p/*.parquet'", format="parquet"),
            [{"c": 6, "m": 12}],
        )

    def test_join_two_globs(self) -> None:
        self.put("users/1.csv", b"id,name\n1,ann\n2,bo\n")
        self.put("users/2.csv", b"id,name\n3,cy\n")
        self.put("orders/2026.csv", b"user,total\n1,10\n3,5\n1,7\n")
        self.assertEqual(
            self.rows(
                sql="SELECT u.name, sum(CAST(o.total AS INT)) AS spent "
                "FROM 'users/*.csv' u JOIN 'orders/*.csv' o ON u.id = o.user "
                "GROUP BY u.name ORDER BY spent DESC"
            ),
            [{"name": "ann", "spent": 17}, {"name": "cy", "spent": 5}],
        )
        self.assertEqual({prefix for prefix, _ in self.listed}, {"users/", "orders/"})

    def test_one_key_without_wildcards(self) -> None:
        self.put("exact.csv", b"x\n1\n")
        self.put("exact.csv.bak", b"x\n2\n")
        self.assertEqual(self.rows(sql="SELECT x FROM 'exact.csv'"), [{"x": "1"}])

    def test_many_objects_are_listed_page_by_page(self) -> None:
        for n in range(1205):
            self.put(f"many/{n:05d}.csv", b"n\n%d\n" % n)
        self.assertEqual(
            self.rows(sql="SELECT count(*) AS c, sum(CAST(n AS INT)) AS s FROM 'many/*.csv'"),
            [{"c": 1205, "s": sum(range(1205))}],
        )
        pages = [after for prefix, after in self.listed if prefix == "many/"]
        self.assertGreaterEqual(len(pages), 2)


class MultiObjectErrorTests(MultiObjectCase):
    """Bad requests are S3 errors."""

    def assertRefused(self, response: MemoryResponse, code: str) -> None:  # noqa: N802
        self.assertEqual((response.status, response.code()), (400, code), response.body[:400])

    def test_no_objects_matched(self) -> None:
        self.put("a.csv", b"x\n1\n")
        response = self.query(sql="SELECT * FROM 'nothing/*.csv'")
        self.assertRefused(response, "InvalidRequest")
        self.assertIn(b"No objects matched the query pattern", response.body)

    def test_bad_bodies(self) -> None:
        bodies = [
            b"",
            b"not json",
            b"[]",
            b'{"sql": 1}',
            b'{"sql": "SELECT 1", "format": "xml"}',
            b'{"sql": "SELECT 1", "output": "xml"}',
            b'{"sql": "x", "extra": 1}',
            b'{"sql": "SELECT 1", "delimiter": ",,"}',
        ]
        for body in bodies:
            response = self.s3.chunked("POST", "/bkt?sql", body)
            self.assertRefused(response, "InvalidRequest")

    def test_no_such_bucket(self) -> None:
        response = self.s3.chunked("POST", "/nobkt?sql", b'{"sql": "SELECT * FROM \'*\'"}')
        self.assertEqual((response.status, response.code()), (404, "NoSuchBucket"))

    def test_mid_stream_error_cuts_the_response(self) -> None:
        """After the 200, an error drops the connection: the body is visibly incomplete."""
        self.put("late/1.csv", b"n\n" + b"".join(b"%d\n" % i for i in range(100000)) + b"x\n")
        body = json.dumps({"sql": "SELECT CAST(n AS INT) AS n FROM 'late/*.csv'", "output": "csv"})
        response, conn = self.s3.exchange_on_connection("POST", "/bkt?sql", body.encode())
        self.assertEqual(response.status, 200)
        self.assertTrue(conn.transport.disconnecting)  # aborted, not finished
