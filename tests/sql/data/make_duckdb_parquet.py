"""Write ``duckdb_orders.parquet`` with DuckDB (run by hand; the file is committed).

``python tests/sql/data/make_duckdb_parquet.py`` with ``duckdb`` importable (it
is not a dependency of s4d or of its tests: the committed file is what the tests
read). The table has DuckDB's own choices of encodings, compression (ZSTD),
row groups (1,000 rows each) and statistics, and the types S3 Select reads:
integers, doubles, decimals, strings, booleans, dates, timestamps, NULLs, a list
and a struct.
"""

from __future__ import annotations

import os

import duckdb  # type: ignore[import-not-found]

HERE = os.path.dirname(os.path.abspath(__file__))

QUERY = """
SELECT
    i AS id,
    'customer-' || (i % 37) AS customer,
    CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 97) * 1.25 END AS amount,
    CAST(i % 1000 AS DECIMAL(10, 2)) / 4 AS price,
    i % 2 = 0 AS paid,
    DATE '2026-01-01' + CAST(i % 365 AS INTEGER) AS day,
    TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) MINUTE AS placed,
    [i % 3, i % 7] AS codes,
    {'city': CASE WHEN i % 2 = 0 THEN 'Paris' ELSE 'Berlin' END, 'floor': i % 9} AS shop
FROM range(10000) t(i)
"""


def main() -> None:
    path = os.path.join(HERE, "duckdb_orders.parquet")
    duckdb.sql(QUERY).write_parquet(path, compression="zstd", row_group_size=1000)
    print(path, os.path.getsize(path), duckdb.__version__)


if __name__ == "__main__":
    main()
