"""The S3 Select dialect's rewrite into DataFusion SQL, token by token, without running it.

Each test parses a statement, gives its sources columns, and compares the
DataFusion SQL written (whitespace squeezed) or the S3 error raised. What the
rewritten statements compute is tested by running them (test_select_*).
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.sql.dialect import Column, PathStep, parse, tokenize

PEOPLE = [Column("Name"), Column("age"), Column("addr", {"CITY": Column("City")})]


def rewrite(sql: str, columns: list[Column] = PEOPLE, select_mode: bool = True) -> str:
    parsed = parse(sql, select_mode)
    text = parsed.translate([columns] * len(parsed.sources)).sql
    return re.sub(r"\s+", " ", text).strip()


class SourceTests(SynchronousTestCase):
    """FROM: S3Object, its alias, a JSON path, quoted globs."""

    def test_alias_forms(self) -> None:
        for sql in (
            "SELECT s.name FROM S3Object s",
            "SELECT s.name FROM S3Object AS s",
            "select S.NAME from s3object s",
        ):
            self.assertEqual(
                rewrite(sql).lower(), 'select "s"."name" as "name" from s3object as "s"', sql
            )

    def test_no_alias(self) -> None:
        self.assertEqual(
            rewrite("SELECT S3Object.age, name FROM S3Object"),
            'SELECT s3object."age" AS "age", "Name" AS "Name" FROM s3object',
        )

    def test_json_path_in_from(self) -> None:
        parsed = parse("SELECT p.x FROM S3Object[*].people[*] p")
        self.assertEqual(parsed.sources[0].path, (PathStep(), PathStep(name="people"), PathStep()))
        self.assertEqual(parsed.sources[0].alias, "p")

    def test_globs_become_tables(self) -> None:
        parsed = parse(
            "SELECT a.x FROM 'logs/*.csv' a JOIN 'other/*.csv' AS b ON a.id = b.id",
            select_mode=False,
        )
        self.assertEqual([(s.table, s.alias, s.glob) for s in parsed.sources],
                         [("t0", "a", "logs/*.csv"), ("t1", "b", "other/*.csv")])  # fmt: skip
        parsed = parse("SELECT * FROM 'a/*' x, 'b/*' y", select_mode=False)
        self.assertEqual([s.glob for s in parsed.sources], ["a/*", "b/*"])

    def test_missing_from(self) -> None:
        with self.assertRaises(S3Error) as caught:
            parse("SELECT 1")
        self.assertEqual(caught.exception.code, "ParseSelectMissingFrom")


class NameTests(SynchronousTestCase):
    """Column names, positions, members, indexes."""

    def test_case_insensitive_unquoted_exact_quoted(self) -> None:
        self.assertEqual(
            rewrite('SELECT s.NAME, s."age" FROM S3Object s'),
            'SELECT "s"."Name" AS "Name", "s"."age" AS "age" FROM s3object AS "s"',
        )

    def test_positional(self) -> None:
        self.assertEqual(
            rewrite("SELECT s._2 FROM S3Object s"), 'SELECT "s"."age" AS "age" FROM s3object AS "s"'
        )
        with self.assertRaises(S3Error) as caught:
            rewrite("SELECT s._9 FROM S3Object s")
        self.assertEqual(caught.exception.code, "InvalidColumnIndex")

    def test_unknown_column_after_alias(self) -> None:
        with self.assertRaises(S3Error) as caught:
            rewrite("SELECT s.nope FROM S3Object s")
        self.assertEqual(caught.exception.code, "EvaluatorBindingDoesNotExist")

    def test_members_and_indexes(self) -> None:
        self.assertEqual(
            rewrite("SELECT s.addr.city, s.tags[0] FROM S3Object s", [*PEOPLE, Column("tags")]),
            'SELECT "s"."addr"."City" AS "City", "s"."tags"[1] AS "_2" FROM s3object AS "s"',
        )
        with self.assertRaises(S3Error) as caught:
            rewrite("SELECT s.tags[*] FROM S3Object s", [*PEOPLE, Column("tags")])
        self.assertEqual(caught.exception.code, "ParseInvalidPathComponent")

    def test_keywords_types_and_parts_are_not_columns(self) -> None:
        columns = [Column("int"), Column("year"), Column("day")]
        self.assertEqual(
            rewrite(
                "SELECT CAST(s.int AS INT), EXTRACT(year FROM s.day), s.year + INTERVAL '1' DAY "
                "FROM S3Object s",
                columns,
            ),
            'SELECT CAST("s"."int" AS BIGINT) AS "_1", EXTRACT(year FROM "s"."day") AS "_2", '
            '"s"."year" + INTERVAL \'1\' DAY AS "_3" FROM s3object AS "s"',
        )

    def test_cte_columns_pass_through(self) -> None:
        self.assertEqual(
            rewrite("WITH q AS (SELECT s.name FROM S3Object s) SELECT q.NAME FROM q"),
            'WITH q AS (SELECT "s"."Name" FROM s3object AS "s" ) SELECT q."Name" AS "Name" FROM q',
        )

    def test_strings_are_never_touched(self) -> None:
        self.assertEqual(
            rewrite("SELECT s.name FROM S3Object s WHERE s.name = 'name s.age _1 MISSING'"),
            'SELECT "s"."Name" AS "Name" FROM s3object AS "s" '
            'WHERE "s"."Name" = \'name s.age _1 MISSING\'',
        )


class ExpressionTests(SynchronousTestCase):
    """MISSING, CAST, functions, literals, output names."""

    def test_missing(self) -> None:
        self.assertEqual(
            rewrite("SELECT * FROM S3Object s WHERE s.age IS MISSING OR s.name IS NOT MISSING"),
            'SELECT * FROM s3object AS "s" WHERE "s"."age" IS NULL OR "s"."Name" IS NOT NULL',
        )

    def test_cast_types(self) -> None:
        self.assertEqual(
            rewrite(
                "SELECT CAST(s.age AS INT), CAST(s.age AS FLOAT), CAST(s.age AS STRING), "
                "CAST(s.age AS DECIMAL(5, 2)), CAST(s.age AS TIMESTAMP) FROM S3Object s"
            ),
            'SELECT CAST("s"."age" AS BIGINT) AS "_1", CAST("s"."age" AS DOUBLE) AS "_2", '
            'CAST("s"."age" AS VARCHAR) AS "_3", CAST("s"."age" AS DECIMAL(5, 2)) AS "_4", '
            's3_to_timestamp(CAST("s"."age" AS VARCHAR)) AS "_5" FROM s3object AS "s"',
        )
        with self.assertRaises(S3Error) as caught:
            rewrite("SELECT CAST(s.age AS BLOB) FROM S3Object s")
        self.assertEqual(caught.exception.code, "InvalidCast")

    def test_functions_and_ion_literals(self) -> None:
        self.assertEqual(
            rewrite(
                "SELECT DATE_ADD(day, 1, UTCNOW()), DATE_DIFF(year, `2010T`, TO_TIMESTAMP(s.age)),"
                " TO_STRING(UTCNOW(), 'yyyy') FROM S3Object s"
            ),
            "SELECT s3_date_add('day', 1, now()) AS \"_1\", "
            "s3_date_diff('year', s3_to_timestamp('2010T'), s3_to_timestamp(\"s\".\"age\")) "
            'AS "_2", s3_to_string(now(), \'yyyy\') AS "_3" FROM s3object AS "s"',
        )
        with self.assertRaises(S3Error) as caught:
            rewrite("SELECT DATE_ADD(week, 1, UTCNOW()) FROM S3Object")
        self.assertEqual(caught.exception.code, "ParseExpectedDatePart")

    def test_like_escape(self) -> None:
        self.assertEqual(
            rewrite("SELECT * FROM S3Object s WHERE s.name LIKE '50!%%' ESCAPE '!'"),
            'SELECT * FROM s3object AS "s" WHERE "s"."Name" LIKE \'50\\%%\' ESCAPE \'\\\'',
        )

    def test_output_names(self) -> None:
        sql = (
            "SELECT s.name, s.age AS years, count(*), s.name FROM S3Object s GROUP BY s.name, s.age"
        )
        parsed = parse(sql)
        translated = parsed.translate([PEOPLE])
        self.assertEqual(translated.names, ("Name", "years", "_3", "_4"))


class StatementTests(SynchronousTestCase):
    """Only one SELECT statement; the lexer's errors."""

    def test_refused_statements(self) -> None:
        for sql, code in (
            ("CREATE TABLE x AS SELECT 1", "UnsupportedSqlOperation"),
            ("DROP TABLE s3object", "UnsupportedSqlOperation"),
            ("INSERT INTO s3object VALUES (1)", "UnsupportedSqlOperation"),
            ("COPY s3object TO '/tmp/x'", "UnsupportedSqlOperation"),
            ("EXPLAIN SELECT * FROM S3Object", "UnsupportedSqlOperation"),
            ("SET x = 1", "UnsupportedSqlOperation"),
            ("SELECT * FROM S3Object; DROP TABLE s3object", "UnsupportedSqlOperation"),
            ("VALUES (1)", "ParseUnsupportedSelect"),
            ("", "ParseUnexpectedToken"),
            (" ; ;", "ParseUnexpectedToken"),  # only semicolons (found by the fuzzer)
        ):
            with self.assertRaises(S3Error, msg=sql) as caught:
                parse(sql)
            self.assertEqual(caught.exception.code, code, sql)

    def test_trailing_semicolon(self) -> None:
        self.assertEqual(rewrite("SELECT * FROM S3Object;"), "SELECT * FROM s3object")

    def test_lexer_errors(self) -> None:
        for sql, code in (
            ("SELECT 'open FROM S3Object", "LexerInvalidLiteral"),
            ('SELECT "open FROM S3Object', "LexerInvalidLiteral"),
            ("SELECT \x00 FROM S3Object", "LexerInvalidChar"),
        ):
            with self.assertRaises(S3Error) as caught:
                tokenize(sql)
            self.assertEqual(caught.exception.code, code, sql)
