"""S3 Select's functions: the Python parts alone, then through queries.

AWS's examples for TO_TIMESTAMP, TO_STRING, DATE_ADD and DATE_DIFF are the
expected values; the query tests check that the dialect's rewrite reaches the
UDFs and DataFusion's own string, conditional and window functions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.trial.unittest import SynchronousTestCase

from s4d.sql.functions import (
    TimestampError,
    date_add,
    date_diff,
    format_timestamp,
    parse_timestamp,
)
from tests.sql.test_select_csv import SelectCase


def ts(text: str) -> datetime:
    return parse_timestamp(text)


class TimestampTests(SynchronousTestCase):
    """AWS's (Ion) timestamps."""

    def test_precisions_and_offsets(self) -> None:
        self.assertEqual(ts("2007T"), datetime(2007, 1, 1, tzinfo=UTC))
        self.assertEqual(ts("2007-02T"), datetime(2007, 2, 1, tzinfo=UTC))
        self.assertEqual(ts("2007-02-23T"), datetime(2007, 2, 23, tzinfo=UTC))
        self.assertEqual(ts("2007-02-23T12:14Z"), datetime(2007, 2, 23, 12, 14, tzinfo=UTC))
        self.assertEqual(
            ts("2007-02-23T12:14:33.079-08:00"),
            datetime(2007, 2, 23, 20, 14, 33, 79000, tzinfo=UTC),
        )

    def test_not_timestamps(self) -> None:
        for text in ("", "x", "2007-13-01", "2007-02-30T", "12:00"):
            with self.assertRaises(TimestampError, msg=text):
                parse_timestamp(text)

    def test_to_string_patterns(self) -> None:
        moment = ts("1969-07-20T20:18:00Z")
        self.assertEqual(format_timestamp(moment, "MMMM d, y"), "July 20, 1969")
        self.assertEqual(format_timestamp(moment, "MMM d, yyyy"), "Jul 20, 1969")
        self.assertEqual(format_timestamp(moment, "M-d-yy"), "7-20-69")
        self.assertEqual(format_timestamp(moment, "MM-d-y"), "07-20-1969")
        self.assertEqual(format_timestamp(moment, "MMMM d, y h:m a"), "July 20, 1969 8:18 PM")
        self.assertEqual(format_timestamp(moment, "y-MM-dd'T'H:m:ssX"), "1969-07-20T20:18:00Z")
        self.assertEqual(
            format_timestamp(moment, "y-MM-dd'T'H:m:ssxxx"), "1969-07-20T20:18:00+00:00"
        )

    def test_date_add(self) -> None:
        self.assertEqual(date_add("year", 5, ts("2010-01-01T")), ts("2015-01-01T"))
        self.assertEqual(date_add("month", 1, ts("2010-01-31T")), ts("2010-02-28T"))
        self.assertEqual(date_add("day", -1, ts("2017-01-10T")), ts("2017-01-09T"))
        self.assertEqual(date_add("hour", 1, ts("2017T")), ts("2017-01-01T01:00Z"))
        self.assertEqual(date_add("minute", 1, ts("2017-01-02T03:04Z")), ts("2017-01-02T03:05Z"))
        self.assertEqual(
            date_add("second", 1, ts("2017-01-02T03:04:05.006Z")), ts("2017-01-02T03:04:06.006Z")
        )

    def test_date_diff(self) -> None:
        self.assertEqual(date_diff("year", ts("2010-01-01T"), ts("2011-01-01T")), 1)
        self.assertEqual(date_diff("month", ts("2010T"), ts("2010-05T")), 4)
        self.assertEqual(date_diff("day", ts("2010-01-01T23:00Z"), ts("2010-01-02T01:00Z")), 0)
        self.assertEqual(date_diff("year", ts("2010-12T"), ts("2011-01T")), 0)
        self.assertEqual(date_diff("day", ts("2011-01-02T"), ts("2011-01-01T")), -1)


class QueryFunctionTests(SelectCase):
    """The functions as queries call them."""

    BODY = b"name,d,n,x\nAlice Smith,2010-01-31T10:00:00Z,3,\nbob,2011-06-15T,-2,7\n"

    def setUp(self) -> None:
        super().setUp()
        self.put("f.csv", self.BODY)

    def rows(self, expression: str) -> list[object]:
        answer = self.select("f.csv", expression)
        self.assertEqual(
            answer.kinds[-2:], ["Stats", "End"], answer.error() or answer.response.body
        )
        return answer.json_records()

    def test_dates(self) -> None:
        self.assertEqual(
            self.rows(
                "SELECT DATE_ADD(month, 1, TO_TIMESTAMP(s.d)) AS m, "
                "DATE_DIFF(day, TO_TIMESTAMP(s.d), `2012-01-01T`) AS dd, "
                "TO_STRING(CAST(s.d AS TIMESTAMP), 'yyyy/MM/dd HH:mm') AS t, "
                "EXTRACT(YEAR FROM TO_TIMESTAMP(s.d)) AS y FROM S3Object s"
            ),
            [
                {"m": "2010-02-28T10:00:00Z", "dd": 699, "t": "2010/01/31 10:00", "y": 2010},
                {"m": "2011-07-15T00:00:00Z", "dd": 200, "t": "2011/06/15 00:00", "y": 2011},
            ],
        )
        self.assertEqual(
            self.rows("SELECT UTCNOW() > `2026T` AS later FROM S3Object LIMIT 1"), [{"later": True}]
        )

    def test_strings(self) -> None:
        self.assertEqual(
            self.rows(
                "SELECT CHAR_LENGTH(s.name) AS a, LOWER(s.name) AS b, UPPER(s.name) AS c, "
                "SUBSTRING(s.name FROM 2 FOR 3) AS d, TRIM(BOTH 'b' FROM s.name) AS e "
                "FROM S3Object s"
            ),
            [
                {"a": 11, "b": "alice smith", "c": "ALICE SMITH", "d": "lic", "e": "Alice Smith"},
                {"a": 3, "b": "bob", "c": "BOB", "d": "ob", "e": "o"},
            ],
        )

    def test_conditionals_like_and_windows(self) -> None:
        self.assertEqual(
            self.rows("SELECT COALESCE(NULLIF(s.x, ''), 'none') AS x FROM S3Object s"),
            [{"x": "none"}, {"x": "7"}],
        )
        self.assertEqual(
            self.rows("SELECT s.name FROM S3Object s WHERE s.name LIKE 'A%' AND s.n NOT LIKE '-%'"),
            [{"name": "Alice Smith"}],
        )
        self.assertEqual(
            self.rows("SELECT s.name FROM S3Object s WHERE s.name || '%' LIKE '%!%' ESCAPE '!'"),
            [{"name": "Alice Smith"}, {"name": "bob"}],
        )
        self.assertEqual(
            self.rows(
                "SELECT s.name, ROW_NUMBER() OVER (ORDER BY CAST(s.n AS INT)) AS r "
                "FROM S3Object s ORDER BY r"
            ),
            [{"name": "bob", "r": 1}, {"name": "Alice Smith", "r": 2}],
        )

    def test_bad_timestamp_is_an_error_event(self) -> None:
        answer = self.select("f.csv", "SELECT TO_TIMESTAMP(s.name) FROM S3Object s")
        self.assertEqual(answer.kinds, ["error"])
        self.assertEqual(answer.error()[0], "CastFailed")  # type: ignore[index]
