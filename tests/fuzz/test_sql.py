"""Fuzzing queries: random SQL over random CSV and JSON objects, through the whole server.

Strategy: statements are drawn from a small grammar of S3 Select (column
references by name, position and path, literals, casts, functions,
operators, aggregates, GROUP BY, ORDER BY, LIMIT), sometimes with a random
token dropped in or the text cut short; objects are rows of awkward text
(delimiters, quotes, newlines, ``#``, non-ASCII, invalid UTF-8) written as
CSV or JSON, or random bytes, sometimes compressed, sometimes declared in
the wrong format. The property, for every pair: the answer is an S3 error
document with a code from the table (never ``InternalError``), or a 200
whose event stream decodes completely (both CRCs) and ends with ``Stats``
and ``End`` or with one error event. The dialect's rewrite is fuzzed alone
too, with far more examples: a result or an S3 error, nothing else.
"""

from __future__ import annotations

import gzip
import json
from typing import Any
from xml.sax.saxutils import escape

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import ERROR_STATUS
from s4d.sql import eventstream
from s4d.sql.dialect import Column, parse
from tests.fuzz._support import fuzz, s3_only
from tests.sql._support import QueryMemoryS3

COLUMNS = ["s._1", "s._2", "s._3", "s.a", "s.b", 's."A"', "s.nope", "_1", "a", "s.a.b", "s.a[0]"]
LITERALS = ["1", "-2.5", "'x'", "''", "'it''s'", "TRUE", "NULL", "`2010-01-01T`", "1e400"]
TYPES = ["INT", "FLOAT", "STRING", "TIMESTAMP", "BOOL", "DECIMAL", "INTEGER", "NUMERIC"]
FUNCTIONS_1 = ["UPPER", "LOWER", "CHAR_LENGTH", "TO_TIMESTAMP", "TRIM", "abs", "length"]
AGGREGATES = ["count", "sum", "avg", "min", "max"]
OPERATORS = ["+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR", "||", "LIKE"]
JUNK = ["(", ")", ",", "FROM", "SELECT", "[", "]", ".", "*", "'", '"', ";", "MISSING", "\x00"]

expressions = st.recursive(
    st.sampled_from(COLUMNS + LITERALS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(OPERATORS), inner).map(" ".join),
        st.tuples(inner, st.sampled_from(TYPES)).map(lambda p: f"CAST({p[0]} AS {p[1]})"),
        st.tuples(st.sampled_from(FUNCTIONS_1), inner).map(lambda p: f"{p[0]}({p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"COALESCE({p[0]}, {p[1]})"),
        st.tuples(inner, st.sampled_from(["IS NULL", "IS NOT MISSING", "IS MISSING"])).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["year", "day", "week"]), inner).map(
            lambda p: f"DATE_ADD({p[0]}, 1, {p[1]})"
        ),
        inner.map(lambda e: f"SUBSTRING({e} FROM 2 FOR 3)"),
        inner.map(lambda e: f"NOT ({e})"),
    ),
    max_leaves=6,
)


@st.composite
def statements(draw: Any) -> str:
    items = draw(
        st.lists(
            st.one_of(
                expressions,
                st.just("*"),
                st.tuples(st.sampled_from(AGGREGATES), expressions).map(
                    lambda p: f"{p[0]}({p[1]})"
                ),
                st.just("count(*)"),
            ),
            min_size=1,
            max_size=3,
        )
    )
    source = draw(st.sampled_from(["S3Object s", "S3Object[*] s", "S3Object"]))
    sql = f"SELECT {', '.join(items)} FROM {source}"
    if draw(st.booleans()):
        sql += f" WHERE {draw(expressions)}"
    if draw(st.booleans()):
        sql += f" GROUP BY {draw(st.sampled_from(COLUMNS))}"
    if draw(st.booleans()):
        sql += f" ORDER BY {draw(st.sampled_from(['1', *COLUMNS]))}"
    if draw(st.booleans()):
        sql += f" LIMIT {draw(st.integers(0, 5))}"
    mangle = draw(st.integers(0, 3))
    if mangle == 1:  # a stray token
        words = sql.split(" ")
        at = draw(st.integers(0, len(words)))
        words.insert(at, draw(st.sampled_from(JUNK)))
        sql = " ".join(words)
    elif mangle == 2:  # cut short
        sql = sql[: draw(st.integers(1, len(sql)))]
    return sql


cells = st.one_of(
    st.text(alphabet=st.sampled_from(list('ab1,"\n#\r ;é-.x')), max_size=8),
    st.integers(-100, 100).map(str),
    st.sampled_from(["2010-01-01T", "true", "", "1.5", "NaN"]),
)


@st.composite
def objects(draw: Any) -> tuple[bytes, str]:
    """An object's bytes and the InputSerialization declared for it."""
    rows = draw(st.lists(st.lists(cells, min_size=1, max_size=4), max_size=6))
    kind = draw(st.sampled_from(["csv", "json-lines", "json-document", "bytes"]))
    if kind == "csv":
        body = "".join(",".join(row) + "\n" for row in rows).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        records = [{"a": row[0], "b": row[1:]} for row in rows]
        joined = "\n" if kind == "json-lines" else " "
        body = joined.join(json.dumps(r) for r in records).encode()
    declared = draw(st.sampled_from(["CSV-USE", "CSV-NONE", "CSV-IGNORE", "LINES", "DOCUMENT"]))
    compression = "NONE"
    if draw(st.integers(0, 4)) == 0:
        body = gzip.compress(body)
        compression = draw(st.sampled_from(["GZIP", "NONE"]))
    if declared.startswith("CSV"):
        info = declared.split("-")[1]
        inner = f"<CSV><FileHeaderInfo>{info}</FileHeaderInfo></CSV>"
    else:
        inner = f"<JSON><Type>{declared}</Type></JSON>"
    return body, f"<CompressionType>{compression}</CompressionType>{inner}"


def document(sql: str, input_xml: str, output: str) -> bytes:
    return (
        '<SelectObjectContentRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Expression>{escape(sql)}</Expression><ExpressionType>SQL</ExpressionType>"
        f"<InputSerialization>{input_xml}</InputSerialization>"
        f"<OutputSerialization>{output}</OutputSerialization></SelectObjectContentRequest>"
    ).encode("utf-8", "surrogateescape")


class DialectFuzz(SynchronousTestCase):
    """The rewrite alone: a DataFusion statement or an S3 error."""

    @fuzz(400)
    @given(sql=st.one_of(statements(), st.text(max_size=80)))
    def test_rewrite(self, sql: str) -> None:
        parsed = s3_only(parse, sql)
        if isinstance(parsed, Exception):
            return
        columns = [Column("a", {"B": Column("b")}), Column("b"), Column("A")]
        s3_only(parsed.translate, [columns] * len(parsed.sources))


class SelectFuzz(SynchronousTestCase):
    """Random statements over random objects, through the whole server."""

    def setUp(self) -> None:
        self.s3 = QueryMemoryS3()
        self.addCleanup(self.s3.close)
        self.s3.exchange("PUT", "/bkt", b"")

    @fuzz(60)
    @given(
        sql=statements(),
        obj=objects(),
        output=st.sampled_from(
            ["<JSON/>", "<CSV/>", "<CSV><QuoteFields>ALWAYS</QuoteFields></CSV>"]
        ),
    )
    def test_answers_are_errors_or_event_streams(
        self, sql: str, obj: tuple[bytes, str], output: str
    ) -> None:
        body, input_xml = obj
        assert self.s3.exchange("PUT", "/bkt/o", body).status == 200
        response = self.s3.exchange(
            "POST", "/bkt/o?select&select-type=2", document(sql, input_xml, output)
        )
        if response.status != 200:
            code = response.code()
            self.assertIn(code, ERROR_STATUS, response.body[:300])
            self.assertNotEqual(code, "InternalError", (sql, response.body[:500]))
            self.assertEqual(ERROR_STATUS[code or ""][0], response.status)
            return
        self.assertEqual(response.headers.get("x-test-complete"), "true")
        messages, rest = eventstream.decode(response.body)
        self.assertEqual(rest, b"")
        kinds = [m.kind for m in messages]
        if kinds and kinds[-1] == "error":
            self.assertNotIn("End", kinds)
            code = messages[-1].headers[":error-code"]
            self.assertIn(code, ERROR_STATUS)
            self.assertNotEqual(code, "InternalError", (sql, messages[-1].headers))
        else:
            self.assertEqual(kinds[-2:], ["Stats", "End"], (sql, kinds))
