"""Record batches written as S3 Select writes them: CSV or JSON, whole batches at a time.

The text of a batch is built column by column with pyarrow's compute
functions (values turned into text, quoted and escaped where needed, joined
into lines), so a large result costs a few passes over each column rather
than Python work per value; only timestamps and nested values (structs,
lists) are formatted value by value.

CSV follows AWS's ``CSVOutput``: a field is quoted when ``QuoteFields`` is
``ALWAYS``, or when it holds the field delimiter, the quote character or a
line break (``ASNEEDED``); a quote inside a quoted field is preceded by
``QuoteEscapeCharacter``. JSON writes one object per record (keys in the
select list's order, NULL as ``null``), or, for ``?sql``'s ``output: json``,
one array of them.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from s4d.sql.request import CsvOutput, JsonOutput, OutputFormat

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _iso(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return f"{value.isoformat()}Z"
    if isinstance(value, (datetime.date, datetime.time)):
        return str(value.isoformat())
    if isinstance(value, datetime.timedelta):
        return str(value)
    return str(value)


def _plain(value: Any) -> Any:
    """A value json.dumps can write."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time, datetime.timedelta)):
        return _iso(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value


def _json_text(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def _by_value(column: pa.Array, write: Callable[[Any], str | None]) -> pa.Array:
    if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
        # Python's datetime holds microseconds
        column = column.cast(pa.timestamp("us", column.type.tz), safe=False)
    return pa.array([write(v) for v in column.to_pylist()], type=pa.string())


def _is_temporal(kind: pa.DataType) -> bool:
    return bool(pa.types.is_temporal(kind))


def _is_nested(kind: pa.DataType) -> bool:
    return bool(pa.types.is_nested(kind) or pa.types.is_map(kind))


def _string(column: pa.Array) -> pa.Array:
    """The column as text (nulls stay null), as CSV shows it."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode()
        kind = column.type
    if pa.types.is_string(kind):
        return column
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if _is_temporal(kind):
        return _by_value(column, lambda v: None if v is None else _iso(v))
    if _is_nested(kind):
        return _by_value(column, lambda v: None if v is None else _json_text(v))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return _by_value(column, lambda v: None if v is None else _plain(v))
    if pa.types.is_floating(kind):
        text = pc.cast(column, pa.string())
        return pc.if_else(pc.is_finite(column), text, pa.scalar(None, pa.string()))
    return pc.cast(column, pa.string())


def _joined(pieces: list[pa.Array | pa.Scalar | str]) -> pa.Array:
    """Element-wise concatenation (strings become scalars)."""
    items = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in pieces]
    return pc.binary_join_element_wise(*items, "")


def _bytes(lines: pa.Array) -> bytes:
    """The concatenated text of a string array without nulls."""
    if len(lines) == 0:
        return b""
    if lines.offset or pa.types.is_large_string(lines.type):
        lines = pa.concat_arrays([lines]).cast(pa.string())
    offsets = lines.buffers()[1]
    data = lines.buffers()[2]
    if data is None:
        return b""
    view = memoryview(offsets).cast("i")
    start, stop = view[lines.offset], view[lines.offset + len(lines)]
    return bytes(memoryview(data)[start:stop])


class CsvWriter:
    """Batches as CSV records (AWS's ``CSVOutput``)."""

    def __init__(self, options: CsvOutput) -> None:
        self.options = options
        quote, escape = options.quote_character, options.quote_escape_character
        special = {options.field_delimiter, quote, "\r", "\n", *options.record_delimiter}
        self._needs_quotes = "[" + "".join("\\" + c if c in "\\]^-[" else c for c in special) + "]"
        self._quote, self._escaped = quote, escape + quote

    def _field(self, column: pa.Array) -> pa.Array:
        text = pc.fill_null(_string(column), "")
        quoted = _joined([self._quote, pc.replace_substring(text, self._quote, self._escaped),
                          self._quote])  # fmt: skip
        if self.options.quote_fields == "ALWAYS":
            return quoted
        needs = pc.match_substring_regex(text, self._needs_quotes)
        return pc.if_else(needs, quoted, text)

    def header(self, names: list[str]) -> bytes:
        """The column names as a record."""
        column = pa.array([names], type=pa.list_(pa.string())).flatten()
        fields = self._field(column).to_pylist()
        line = self.options.field_delimiter.join(fields) + self.options.record_delimiter
        return line.encode("utf-8")

    def batch(self, batch: pa.RecordBatch) -> bytes:
        """The records of ``batch``."""
        if batch.num_rows == 0:
            return b""
        pieces: list[pa.Array | pa.Scalar | str] = []
        for i in range(batch.num_columns):
            if i:
                pieces.append(self.options.field_delimiter)
            pieces.append(self._field(batch.column(i)))
        pieces.append(self.options.record_delimiter)
        if batch.num_columns == 0:
            return self.options.record_delimiter.encode("utf-8") * int(batch.num_rows)
        text: bytes = _bytes(_joined(pieces))
        return text


def _escape_json(text: pa.Array) -> pa.Array:
    escaped = pc.replace_substring(text, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    escaped = pc.replace_substring(escaped, "\n", "\\n")
    escaped = pc.replace_substring(escaped, "\r", "\\r")
    escaped = pc.replace_substring(escaped, "\t", "\\t")
    return _joined(['"', escaped, '"'])


def json_values(column: pa.Array) -> pa.Array:
    """Each value of ``column`` as JSON text (``null`` for NULL)."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode()
        kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        text = column.cast(pa.string())
        if pc.any(pc.match_substring_regex(text, _CONTROL)).as_py():
            out = _by_value(text, lambda v: "null" if v is None else _json_text(v))
        else:
            out = _escape_json(text)
    elif pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        out = pc.cast(column, pa.string())
    elif pa.types.is_floating(kind):
        text = pc.cast(column, pa.string())
        out = pc.if_else(pc.is_finite(column), text, pa.scalar(None, pa.string()))
    elif pa.types.is_null(kind):
        out = pa.nulls(len(column), pa.string())
    else:  # temporal, nested, binary: value by value
        out = _by_value(column, lambda v: "null" if v is None else _json_text(v))
    return pc.fill_null(out, "null")


class JsonWriter:
    """Batches as JSON records: one object per record, or one array (``?sql``)."""

    def __init__(self, options: JsonOutput) -> None:
        self.options = options
        self._first = True

    def start(self) -> bytes:
        """What comes before the first record."""
        return b"[" if self.options.array else b""

    def end(self) -> bytes:
        """What comes after the last record."""
        if not self.options.array:
            return b""
        return b"]\n" if self._first else b"\n]\n"

    def batch(self, batch: pa.RecordBatch) -> bytes:
        """The records of ``batch``."""
        if batch.num_rows == 0:
            return b""
        pieces: list[pa.Array | pa.Scalar | str] = []
        for i, name in enumerate(batch.schema.names):
            key = json.dumps(name, ensure_ascii=False)
            pieces.append(("{" if i == 0 else ",") + key + ":")
            pieces.append(json_values(batch.column(i)))
        if not pieces:
            pieces.append("{")
        pieces.append("}")
        if self.options.array:
            lines = _joined(pieces)
            body = _bytes(_joined([lines, ",\n"]))[:-2]
            prefix = b"\n" if self._first else b",\n"
            self._first = False
            return prefix + body
        pieces.append(self.options.record_delimiter)
        return _bytes(_joined(pieces))


Writer = CsvWriter | JsonWriter


def writer_for(options: OutputFormat) -> Writer:
    """The writer of ``options``."""
    if isinstance(options, CsvOutput):
        return CsvWriter(options)
    return JsonWriter(options)
