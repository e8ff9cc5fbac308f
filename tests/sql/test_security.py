"""Queries cannot change anything, nor reach a file, a URL or a table function.

Every statement here is sent through the whole server as S3 Select and as
``?sql``; each must be answered with an S3 error (or, for a string that
merely looks like a path, read as an object key of the bucket), and none may
create or read a file outside the store: the tests plant a marker file and
check that no query saw its content, and name a file no query may create.
The last tests check the plan check itself, with a context that has a file
table registered (which no query context ever has).
"""

from __future__ import annotations

import json
import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.sql.session import check_plan, new_context, statement_options
from tests.sql._support import QueryMemoryS3, SelectAnswer, select_document

SECRET = b"do-not-leak-8f14e45fceea167a"


class SecurityCase(SynchronousTestCase):
    """A server with one object; a secret file and a path no query may write."""

    def setUp(self) -> None:
        self.s3 = QueryMemoryS3()
        self.addCleanup(self.s3.close)
        self.s3.put("bkt", "data.csv", b"a,b\n1,2\n")
        self.dir = tempfile.mkdtemp(prefix="s4d-sql-security-")
        self.secret = os.path.join(self.dir, "secret.csv")
        with open(self.secret, "wb") as f:
            f.write(b"a\n" + SECRET + b"\n")
        self.target = os.path.join(self.dir, "written.csv")

    def tearDown(self) -> None:
        self.assertFalse(os.path.exists(self.target), "a query wrote a file")
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def statements(self) -> list[str]:
        secret, target = self.secret, self.target
        return [
            f"CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '{secret}'",
            "CREATE TABLE t AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE s3object",
            "INSERT INTO s3object VALUES ('1', '2')",
            "DELETE FROM s3object",
            "UPDATE s3object SET a = '0'",
            f"COPY (SELECT 1) TO '{target}'",
            f"COPY s3object TO '{target}' STORED AS CSV",
            "SET datafusion.execution.batch_size = 1",
            "EXPLAIN SELECT * FROM S3Object",
            "SHOW TABLES",
            "DESCRIBE s3object",
            f"SELECT * FROM read_csv('{secret}')",
            f"SELECT * FROM read_parquet('{secret}')",
            f"SELECT * FROM read_json('{secret}')",
            f"SELECT * FROM S3Object s WHERE s.a IN (SELECT a FROM read_csv('{secret}'))",
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            "SELECT * FROM range(10)",
            "SELECT * FROM information_schema.tables",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
            "SELECT * FROM S3Object; DROP TABLE s3object",
            "PREPARE p AS SELECT 1",
        ]

    def assertNoLeak(self, body: bytes) -> None:  # noqa: N802
        self.assertNotIn(SECRET, body)


class SelectSecurityTests(SecurityCase):
    """S3 Select: every one of them is an S3 error."""

    def test_statements_are_refused(self) -> None:
        for statement in self.statements():
            response = self.s3.exchange(
                "POST",
                "/bkt/data.csv?select&select-type=2",
                select_document(statement, "<CSV><FileHeaderInfo>USE</FileHeaderInfo></CSV>"),
            )
            self.assertEqual(response.status, 400, (statement, response.body[:300]))
            self.assertNotEqual(response.code(), "InternalError", statement)
            self.assertNoLeak(response.body)

    def test_paths_in_from_are_not_files(self) -> None:
        for source in (f"'{self.secret}'", f"'file://{self.secret}'", "'http://127.0.0.1:1/x'"):
            statement = f"SELECT * FROM {source}"
            answer = SelectAnswer(
                self.s3.exchange(
                    "POST", "/bkt/data.csv?select&select-type=2", select_document(statement)
                )
            )
            self.assertEqual(answer.response.status, 400, statement)
            self.assertNoLeak(answer.response.body)


class SqlSecurityTests(SecurityCase):
    """``?sql``: statements are refused; a quoted path is a key of the bucket, nothing else."""

    def query(self, sql: str) -> tuple[int, bytes]:
        response = self.s3.exchange("POST", "/bkt?sql", json.dumps({"sql": sql}).encode())
        return response.status, response.body

    def test_statements_are_refused(self) -> None:
        for statement in self.statements():
            statement = statement.replace("S3Object", "'data.csv'")
            status, body = self.query(statement)
            self.assertEqual(status, 400, (statement, body[:300]))
            self.assertNotIn(b"<Code>InternalError</Code>", body, statement)
            self.assertNoLeak(body)

    def test_quoted_paths_are_keys(self) -> None:
        for source in (self.secret, f"file://{self.secret}", "/etc/passwd", "../../etc/*"):
            status, body = self.query(f"SELECT * FROM '{source}'")
            self.assertEqual(status, 400, (source, body[:300]))
            self.assertIn(b"No objects matched", body)
            self.assertNoLeak(body)


class PlanCheckTests(SynchronousTestCase):
    """The physical plan check refuses a plan that reads anything but the query's datasets."""

    def test_file_scan_is_refused(self) -> None:
        directory = tempfile.mkdtemp(prefix="s4d-sql-plan-")
        path = os.path.join(directory, "t.csv")
        with open(path, "w") as f:
            f.write("a\n1\n")
        try:
            context = new_context(64 << 20)
            context.register_csv("files", path)  # no query's context ever registers one
            frame = context.sql_with_options("SELECT * FROM files", statement_options())
            with self.assertRaises(S3Error) as caught:
                check_plan(frame)
            self.assertEqual(caught.exception.code, "UnsupportedSqlOperation")
        finally:
            os.unlink(path)
            os.rmdir(directory)

    def test_constants_are_allowed(self) -> None:
        context = new_context(64 << 20)
        for sql in ("SELECT 1", "SELECT * FROM (VALUES (1), (2)) v", "SELECT unnest([1, 2])"):
            check_plan(context.sql_with_options(sql, statement_options()))

    def test_table_functions_are_gone(self) -> None:
        context = new_context(64 << 20)
        for sql in ("SELECT * FROM generate_series(1, 3)", "SELECT * FROM range(3)"):
            with self.assertRaises(ValueError, msg=sql) as caught:
                context.sql_with_options(sql, statement_options())
            self.assertIn("not found", str(caught.exception))
