"""SelectObjectContent over CSV objects, through the whole in-memory server.

Each test stores objects with PUT, sends AWS's request document to the real
site (seam, route, handler, query service, engine, store) and decodes the
event stream it answers (:class:`tests.sql._support.SelectAnswer`, whose
decoder checks every CRC). Queries run inline, so the response is complete
when the request returns.
"""

from __future__ import annotations

import csv
import io

from twisted.trial.unittest import SynchronousTestCase

from tests.sql._support import QueryMemoryS3, SelectAnswer, select_document

USE = "<CSV><FileHeaderInfo>USE</FileHeaderInfo></CSV>"
NONE = "<CSV><FileHeaderInfo>NONE</FileHeaderInfo></CSV>"


class SelectCase(SynchronousTestCase):
    """An in-memory server with a bucket ``bkt``."""

    def setUp(self) -> None:
        self.s3 = QueryMemoryS3()
        self.addCleanup(self.s3.close)

    def put(self, key: str, body: bytes) -> None:
        self.s3.put("bkt", key, body)

    def select(
        self, key: str, expression: str, input_xml: str = USE, output_xml: str = "<JSON/>",
        extra: str = "",
    ) -> SelectAnswer:  # fmt: skip
        response = self.s3.chunked(
            "POST",
            f"/bkt/{key}?select&select-type=2",
            select_document(expression, input_xml, output_xml, extra),
        )
        return SelectAnswer(response)

    def assertRecords(self, answer: SelectAnswer, expected: list[object]) -> None:  # noqa: N802
        self.assertEqual(answer.response.status, 200, answer.response.body[:500])
        self.assertEqual(answer.kinds[-2:], ["Stats", "End"], answer.error())
        self.assertEqual(answer.json_records(), expected)

    def assertRefused(self, answer: SelectAnswer, code: str, status: int = 400) -> None:  # noqa: N802
        self.assertEqual(
            (answer.response.status, answer.response.code()),
            (status, code),
            answer.response.body[:500],
        )


class HeaderTests(SelectCase):
    """FileHeaderInfo and the ways a column is named."""

    BODY = b"Name,Age,City\nalice,30,Paris\nbob,25,Berlin\n"

    def test_use_names_columns_case_insensitively(self) -> None:
        """Unquoted names match the header in any case; output keys are the header's."""
        self.put("p.csv", self.BODY)
        answer = self.select("p.csv", "SELECT s.name, s.AGE FROM S3Object s")
        self.assertRecords(answer, [{"Name": "alice", "Age": "30"}, {"Name": "bob", "Age": "25"}])

    def test_quoted_names_are_exact(self) -> None:
        """A quoted name must match the header exactly."""
        self.put("p.csv", self.BODY)
        self.assertRecords(
            self.select("p.csv", 'SELECT s."City" FROM S3Object s WHERE s."Name" = \'bob\''),
            [{"City": "Berlin"}],
        )
        self.assertRefused(
            self.select("p.csv", 'SELECT s."city" FROM S3Object s'),
            "EvaluatorBindingDoesNotExist",
        )

    def test_positional_names_with_a_header(self) -> None:
        """``_N`` is the N-th column even when the header names it."""
        self.put("p.csv", self.BODY)
        self.assertRecords(
            self.select("p.csv", "SELECT s._3 FROM S3Object s LIMIT 1"), [{"City": "Paris"}]
        )

    def test_ignore_skips_the_header(self) -> None:
        """IGNORE: the first line is not a record, columns are positional."""
        self.put("p.csv", self.BODY)
        answer = self.select(
            "p.csv",
            "SELECT s._1 FROM S3Object s",
            "<CSV><FileHeaderInfo>IGNORE</FileHeaderInfo></CSV>",
        )
        self.assertRecords(answer, [{"_1": "alice"}, {"_1": "bob"}])

    def test_none_reads_every_line(self) -> None:
        """NONE: the first line is a record."""
        self.put("p.csv", self.BODY)
        self.assertRecords(
            self.select("p.csv", "SELECT s._2 FROM S3Object s", NONE),
            [{"_2": "Age"}, {"_2": "30"}, {"_2": "25"}],
        )

    def test_select_star_and_count(self) -> None:
        """``*`` keeps the header's names; an unnamed expression is ``_N``."""
        self.put("p.csv", self.BODY)
        self.assertRecords(
            self.select("p.csv", "SELECT * FROM S3Object LIMIT 1"),
            [{"Name": "alice", "Age": "30", "City": "Paris"}],
        )
        self.assertRecords(
            self.select("p.csv", "SELECT count(*), max(s.age) FROM S3Object s"),
            [{"_1": 2, "_2": "30"}],
        )

    def test_unknown_column_and_index(self) -> None:
        """An unknown name and a column index past the last column are refused up front."""
        self.put("p.csv", self.BODY)
        self.assertRefused(
            self.select("p.csv", "SELECT s.nope FROM S3Object s"), "EvaluatorBindingDoesNotExist"
        )
        self.assertRefused(
            self.select("p.csv", "SELECT s._4 FROM S3Object s"), "InvalidColumnIndex"
        )


class FormatTests(SelectCase):
    """Delimiters, quotes, comments, compression and ranges of CSV input."""

    def test_field_and_record_delimiters(self) -> None:
        """Any field delimiter; a record delimiter other than a newline."""
        self.put("semi.csv", b"a;b|1;2|3;4|")
        answer = self.select(
            "semi.csv",
            "SELECT s.a, s.b FROM S3Object s",
            "<CSV><FileHeaderInfo>USE</FileHeaderInfo><FieldDelimiter>;</FieldDelimiter>"
            "<RecordDelimiter>|</RecordDelimiter></CSV>",
        )
        self.assertRecords(answer, [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}])

    def test_crlf_records(self) -> None:
        """CRLF line ends are record delimiters, not part of the last field."""
        self.put("crlf.csv", b"a,b\r\n1,2\r\n3,4\r\n")
        answer = self.select(
            "crlf.csv",
            "SELECT s.b FROM S3Object s",
            "<CSV><FileHeaderInfo>USE</FileHeaderInfo><RecordDelimiter>\r\n</RecordDelimiter></CSV>",
        )
        self.assertRecords(answer, [{"b": "2"}, {"b": "4"}])

    def test_quote_and_escape_characters(self) -> None:
        """QuoteCharacter and QuoteEscapeCharacter of the input."""
        self.put("q.csv", b"a,b\n'x,y','it\\'s'\n")
        answer = self.select(
            "q.csv",
            "SELECT * FROM S3Object",
            "<CSV><FileHeaderInfo>USE</FileHeaderInfo><QuoteCharacter>'</QuoteCharacter>"
            "<QuoteEscapeCharacter>\\</QuoteEscapeCharacter></CSV>",
        )
        self.assertRecords(answer, [{"a": "x,y", "b": "it's"}])

    def test_quoted_record_delimiter(self) -> None:
        """AllowQuotedRecordDelimiter: a newline inside quotes stays in the field."""
        self.put("nl.csv", b'a,b\n"line one\nline two",2\n')
        answer = self.select(
            "nl.csv",
            "SELECT s.a FROM S3Object s",
            "<CSV><FileHeaderInfo>USE</FileHeaderInfo>"
            "<AllowQuotedRecordDelimiter>TRUE</AllowQuotedRecordDelimiter></CSV>",
        )
        self.assertRecords(answer, [{"a": "line one\nline two"}])

    def test_comments(self) -> None:
        """Lines starting with ``#`` (the default) or the Comments character are skipped."""
        self.put("c.csv", b"# made by hand\na,b\n1,2\n# skipped\n3,4\n")
        self.assertRecords(
            self.select("c.csv", "SELECT s.a FROM S3Object s"), [{"a": "1"}, {"a": "3"}]
        )
        self.put("c2.csv", b"a,b\n;1,2\n3,4\n")
        answer = self.select(
            "c2.csv",
            "SELECT s.a FROM S3Object s",
            "<CSV><FileHeaderInfo>USE</FileHeaderInfo><Comments>;</Comments></CSV>",
        )
        self.assertRecords(answer, [{"a": "3"}])

    def test_scan_range(self) -> None:
        """Records that start inside the range, the last one read to its end."""
        body = b"".join(b"%d,row%d\n" % (i, i) for i in range(10))  # 7 bytes a record
        self.put("r.csv", body)

        def rows(scan: str) -> list[str]:
            answer = self.select("r.csv", "SELECT s._1 FROM S3Object s", NONE, extra=scan)
            self.assertEqual(answer.kinds[-2:], ["Stats", "End"])
            return [r["_1"] for r in answer.json_records()]

        self.assertEqual(rows("<ScanRange><Start>5</Start><End>20</End></ScanRange>"), ["1", "2"])
        self.assertEqual(rows("<ScanRange><Start>7</Start><End>7</End></ScanRange>"), ["1"])
        self.assertEqual(rows("<ScanRange><End>20</End></ScanRange>"), ["8", "9"])
        self.assertEqual(rows("<ScanRange><Start>63</Start></ScanRange>"), ["9"])
        self.assertEqual(rows("<ScanRange><Start>500</Start></ScanRange>"), [])

    def test_scan_range_keeps_header_names(self) -> None:
        """A range past the header still names columns from it."""
        self.put("h.csv", b"id,name\n1,a\n2,b\n3,c\n")
        answer = self.select(
            "h.csv",
            "SELECT s.name FROM S3Object s",
            extra="<ScanRange><Start>9</Start></ScanRange>",
        )
        self.assertRecords(answer, [{"name": "b"}, {"name": "c"}])

    def test_csv_output_options(self) -> None:
        """CSV output: delimiters, ALWAYS quoting, escaped quotes."""
        self.put("p.csv", b'a,b\nx,"say ""hi"""\n')
        answer = self.select(
            "p.csv",
            "SELECT * FROM S3Object",
            output_xml="<CSV><QuoteFields>ALWAYS</QuoteFields><FieldDelimiter>|</FieldDelimiter>"
            "<RecordDelimiter>;</RecordDelimiter></CSV>",
        )
        self.assertEqual(answer.records, b'"x"|"say ""hi"""' + b";")
        answer = self.select("p.csv", "SELECT * FROM S3Object", output_xml="<CSV/>")
        self.assertEqual(
            list(csv.reader(io.StringIO(answer.records.decode()))), [["x", 'say "hi"']]
        )

    def test_empty_object(self) -> None:
        """An empty object has no records: a count is 0, a selection nothing."""
        self.put("empty.csv", b"")
        answer = self.select("empty.csv", "SELECT s._1, s.name FROM S3Object s", NONE)
        self.assertEqual(answer.kinds, ["Stats", "End"])
        self.assertRecords(self.select("empty.csv", "SELECT count(*) FROM S3Object"), [{"_1": 0}])


class EventTests(SelectCase):
    """What the event stream carries besides records."""

    def test_stats_count_bytes(self) -> None:
        """BytesScanned is the object read once; BytesReturned the records sent."""
        body = b"a\n" + b"".join(b"%d\n" % i for i in range(1000))
        self.put("n.csv", body)
        answer = self.select("n.csv", "SELECT s.a FROM S3Object s WHERE s.a LIKE '99%'")
        stats = answer.stats()
        self.assertEqual(stats["BytesScanned"], len(body))
        self.assertEqual(stats["BytesProcessed"], len(body))
        self.assertEqual(stats["BytesReturned"], len(answer.records))

    def test_request_progress(self) -> None:
        """RequestProgress: a Progress event comes before Stats."""
        self.put("n.csv", b"a\n1\n2\n")
        answer = self.select(
            "n.csv",
            "SELECT count(*) FROM S3Object",
            extra="<RequestProgress><Enabled>true</Enabled></RequestProgress>",
        )
        self.assertEqual(answer.kinds, ["Records", "Progress", "Stats", "End"])

    def test_error_event_after_records(self) -> None:
        """A value that fails a cast after output started: an error event, and no End."""
        rows = b"".join(b"%d\n" % i for i in range(100000))
        self.put("late.csv", b"n\n" + rows + b"oops\n")
        answer = self.select("late.csv", "SELECT CAST(s.n AS INT) AS n FROM S3Object s")
        self.assertEqual(answer.response.status, 200)
        self.assertIn("Records", answer.kinds)
        self.assertEqual(answer.kinds[-1], "error")
        self.assertNotIn("End", answer.kinds)
        code, message = answer.error() or ("", "")
        self.assertEqual(code, "CastFailed")
        self.assertIn("oops", message)
