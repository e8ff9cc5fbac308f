"""SelectObjectContent over JSON (DOCUMENT and LINES) and Parquet, in memory.

JSON records are typed as JSON types them (numbers stay numbers, objects are
structs reached with paths); Parquet objects are read at random, and a test
counts the bytes a selective query read against the object's size. One
Parquet object was written by DuckDB (``data/duckdb_orders.parquet``, made by
``data/make_duckdb_parquet.py``), the others by pyarrow here.
"""

from __future__ import annotations

import gzip
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from tests.sql._support import QueryMemoryS3
from tests.sql.test_select_csv import SelectCase

LINES = "<JSON><Type>LINES</Type></JSON>"
DOCUMENT = "<JSON><Type>DOCUMENT</Type></JSON>"
PARQUET = "<Parquet/>"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

PEOPLE = [
    {"id": i, "name": f"n{i}", "tags": ["a", "b"][: i % 3], "addr": {"city": c, "zip": 75000 + i}}
    for i, c in enumerate(["Rome", "Paris", "Rome", "Paris", "Oslo"])
]


def json_lines(records: list[dict[str, object]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def parquet(table: pa.Table, row_group_size: int = 1000) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=row_group_size)
    return out.getvalue()


class JsonTests(SelectCase):
    """JSON LINES and DOCUMENT input."""

    def test_lines_paths_and_types(self) -> None:
        """Nested members by path, numbers compared as numbers, 0-based list indexes."""
        self.put("p.json", json_lines(PEOPLE))
        self.assertRecords(
            self.select("p.json", "SELECT s.id, s.addr.city FROM S3Object s WHERE s.id > 2", LINES),
            [{"id": 3, "city": "Paris"}, {"id": 4, "city": "Oslo"}],
        )
        self.assertRecords(
            self.select(
                "p.json", "SELECT s.tags[0] AS t0, s.tags[1] AS t1 FROM S3Object s", LINES
            ),
            [{"t0": None, "t1": None}, {"t0": "a", "t1": None}, {"t0": "a", "t1": "b"},
             {"t0": None, "t1": None}, {"t0": "a", "t1": None}],
        )  # fmt: skip

    def test_is_missing(self) -> None:
        """IS MISSING holds for a member or element that is not there."""
        self.put("p.json", json_lines(PEOPLE))
        answer = self.select(
            "p.json", "SELECT s.name FROM S3Object s WHERE s.tags[1] IS MISSING", LINES
        )
        self.assertRecords(answer, [{"name": "n0"}, {"name": "n1"}, {"name": "n3"}, {"name": "n4"}])
        answer = self.select(
            "p.json", "SELECT s.name FROM S3Object s WHERE s.tags[1] IS NOT MISSING", LINES
        )
        self.assertRecords(answer, [{"name": "n2"}])

    def test_whole_records_and_group_by(self) -> None:
        """``*`` writes records back as JSON; GROUP BY over a nested member."""
        self.put("p.json", json_lines(PEOPLE))
        self.assertRecords(
            self.select("p.json", "SELECT * FROM S3Object LIMIT 1", LINES), PEOPLE[:1]
        )
        self.assertRecords(
            self.select(
                "p.json",
                "SELECT s.addr.city AS city, count(*) AS n FROM S3Object s "
                "GROUP BY s.addr.city ORDER BY n DESC, city",
                LINES,
            ),
            [{"city": "Paris", "n": 2}, {"city": "Rome", "n": 2}, {"city": "Oslo", "n": 1}],
        )

    def test_document_of_pretty_printed_objects(self) -> None:
        """DOCUMENT: objects that span lines, one after the other."""
        body = b"".join(json.dumps(r, indent=2).encode() for r in PEOPLE[:3])
        self.put("d.json", body)
        self.assertRecords(
            self.select("d.json", "SELECT s.id, s.addr.zip FROM S3Object s", DOCUMENT),
            [{"id": 0, "zip": 75000}, {"id": 1, "zip": 75001}, {"id": 2, "zip": 75002}],
        )

    def test_document_array_and_paths_in_from(self) -> None:
        """``S3Object[*]`` walks a top-level array; a path in FROM walks into the document."""
        self.put("a.json", json.dumps(PEOPLE, indent=1).encode())
        self.assertRecords(
            self.select("a.json", "SELECT s.id FROM S3Object[*] s WHERE s.id < 2", DOCUMENT),
            [{"id": 0}, {"id": 1}],
        )
        self.put("n.json", json.dumps({"meta": {"v": 1}, "people": PEOPLE}).encode())
        self.assertRecords(
            self.select(
                "n.json", "SELECT p.name FROM S3Object.people[*] p WHERE p.id = 1", DOCUMENT
            ),
            [{"name": "n1"}],
        )
        self.assertRecords(  # [*] over one object is that object (AWS's Rules[*] example)
            self.select("n.json", "SELECT count(*) AS n FROM S3Object[*].people[*] p", DOCUMENT),
            [{"n": 5}],
        )

    def test_gzip_json_and_scan_range(self) -> None:
        """GZIP JSON lines; a ScanRange over uncompressed lines."""
        body = json_lines(PEOPLE)
        self.put("p.json.gz", gzip.compress(body))
        answer = self.select(
            "p.json.gz",
            "SELECT count(*) AS n FROM S3Object",
            "<CompressionType>GZIP</CompressionType>" + LINES,
        )
        self.assertRecords(answer, [{"n": 5}])
        self.put("p.json", body)
        second = body.index(b"\n") + 1
        answer = self.select(
            "p.json",
            "SELECT s.id FROM S3Object s",
            LINES,
            extra=f"<ScanRange><Start>1</Start><End>{second}</End></ScanRange>",
        )
        self.assertRecords(answer, [{"id": 1}])

    def test_not_json(self) -> None:
        """An object that is not JSON: JSONParsingError."""
        self.put("x.json", b"this is not json\n")
        self.assertRefused(
            self.select("x.json", "SELECT * FROM S3Object", LINES), "JSONParsingError"
        )


class ParquetTests(SelectCase):
    """Parquet input, written by pyarrow and by DuckDB."""

    def table(self, n: int = 10000) -> pa.Table:
        return pa.table(
            {
                "id": pa.array(range(n), pa.int64()),
                "group": pa.array([f"g{i % 4}" for i in range(n)]),
                "value": pa.array([i * 0.5 for i in range(n)]),
                "blob": pa.array([os.urandom(64).hex() for _ in range(n)]),
            }
        )

    def test_filter_aggregate(self) -> None:
        """Typed columns; GROUP BY and ORDER BY."""
        self.put("t.parquet", parquet(self.table()))
        answer = self.select(
            "t.parquet",
            'SELECT s."group" AS g, count(*) AS n, sum(s.value) AS total FROM S3Object s '
            'WHERE s.id < 8 GROUP BY s."group" ORDER BY g',
            PARQUET,
        )
        self.assertRecords(
            answer,
            [{"g": "g0", "n": 2, "total": 2.0}, {"g": "g1", "n": 2, "total": 3.0},
             {"g": "g2", "n": 2, "total": 4.0}, {"g": "g3", "n": 2, "total": 5.0}],
        )  # fmt: skip

    def test_selective_filter_reads_little(self) -> None:
        """A filter on a sorted column and two small columns read a fraction of the object.

        The store reads whole chunks, so the server here cuts objects into 64 KiB ones.
        """
        self.s3 = QueryMemoryS3(chunk_size=64 << 10)
        self.addCleanup(self.s3.close)
        body = parquet(self.table(), row_group_size=1000)
        self.put("t.parquet", body)
        answer = self.select(
            "t.parquet", "SELECT s.value FROM S3Object s WHERE s.id = 4321", PARQUET
        )
        self.assertRecords(answer, [{"value": 2160.5}])
        scanned = answer.stats()["BytesScanned"]
        self.assertLess(scanned, len(body) // 4, (scanned, len(body)))

    def test_scan_range_picks_row_groups(self) -> None:
        """ScanRange over Parquet: the row groups that start in the range."""
        body = parquet(self.table(4000), row_group_size=1000)
        self.put("t.parquet", body)
        metadata = pq.ParquetFile(io.BytesIO(body)).metadata
        second = metadata.row_group(1).column(0).data_page_offset
        dictionary = metadata.row_group(1).column(0).dictionary_page_offset
        start = min(x for x in (second, dictionary) if x)
        answer = self.select(
            "t.parquet",
            "SELECT min(s.id) AS lo, max(s.id) AS hi FROM S3Object s",
            PARQUET,
            extra=f"<ScanRange><Start>{start}</Start><End>{start}</End></ScanRange>",
        )
        self.assertRecords(answer, [{"lo": 1000, "hi": 1999}])

    def test_duckdb_written_object(self) -> None:
        """DuckDB's Parquet: decimals, dates, timestamps, lists and structs."""
        with open(os.path.join(DATA, "duckdb_orders.parquet"), "rb") as f:
            self.put("orders.parquet", f.read())
        answer = self.select(
            "orders.parquet",
            "SELECT s.id, s.amount, s.day, s.placed, s.codes[1] AS c1, s.shop.city AS city "
            "FROM S3Object s WHERE s.id IN (1, 7)",
            PARQUET,
        )
        self.assertRecords(
            answer,
            [
                {"id": 1, "amount": 1.25, "day": "2026-01-02", "placed": "2026-01-01T00:01:00Z",
                 "c1": 1, "city": "Berlin"},
                {"id": 7, "amount": 8.75, "day": "2026-01-08", "placed": "2026-01-01T00:07:00Z",
                 "c1": 0, "city": "Berlin"},
            ],
        )  # fmt: skip
        answer = self.select(
            "orders.parquet",
            "SELECT count(*) AS n, count(s.amount) AS with_amount FROM S3Object s "
            "WHERE s.paid AND s.shop.city = 'Paris'",
            PARQUET,
        )
        self.assertRecords(answer, [{"n": 5000, "with_amount": 4000}])

    def test_not_parquet(self) -> None:
        """An object that is not Parquet: ParquetParsingError."""
        self.put("x.parquet", b"a,b\n1,2\n")
        self.assertRefused(
            self.select("x.parquet", "SELECT * FROM S3Object", PARQUET), "ParquetParsingError"
        )

    def test_compressed_parquet_is_refused(self) -> None:
        """Parquet with a CompressionType: InvalidCompressionFormat."""
        self.put("t.parquet", parquet(self.table(10)))
        answer = self.select(
            "t.parquet",
            "SELECT * FROM S3Object",
            "<CompressionType>GZIP</CompressionType><Parquet/>",
        )
        self.assertRefused(answer, "InvalidCompressionFormat")
