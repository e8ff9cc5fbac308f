"""Byte streams between an object and its parser: ranges, decompression, CSV and JSON shaping.

Every stage has one method, ``read_block(size) -> bytes`` (``b""`` at the
end), and wraps the stage before it:

- :class:`RecordRange` keeps the records that start inside a ScanRange
  (uncompressed CSV and JSON lines), reading past the range's end to finish
  the last one;
- :class:`Decompressed` undoes GZIP (several members) or BZIP2 (several
  streams);
- :class:`CsvText` drops comment lines and turns an unusual record delimiter
  into a newline, for pyarrow's CSV reader; it passes blocks through untouched
  when they need neither;
- :class:`JsonRecords` turns a JSON document (one top-level array, or values
  reached through a path such as ``S3Object[*].items``) into one JSON object
  per line, for pyarrow's JSON reader;
- :class:`Counted` counts the bytes that reach the parser (BytesProcessed).

:class:`StreamFile` is the last stage as a Python file for ``pyarrow.PythonFile``.
An error in a stage becomes an :class:`S3Error` with AWS's code, recorded in
the query's :class:`~s4d.sql.control.QueryControl` (DataFusion would turn it
into text on its way up).
"""

from __future__ import annotations

import bz2
import codecs
import io
import json
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

from s4d.errors import S3Error
from s4d.sql.control import QueryCancelled, QueryControl
from s4d.sql.dialect import PathStep
from s4d.sql.objects import ObjectReader

#: Bytes a stage asks of the one before it at a time, and of a CSV or JSON block that
#: pyarrow parses at once (larger blocks cost memory, not speed: docs/performance.rst).
BLOCK = 256 << 10
#: Largest JSON value :class:`JsonRecords` holds while decoding it.
MAX_JSON_VALUE = 64 << 20
#: Record delimiters pyarrow's CSV reader knows itself.
NATIVE_DELIMITERS = (b"\n", b"\r\n", b"\r")


class ByteSource(Protocol):
    """A stage: hands out its bytes block by block."""

    def read_block(self, size: int) -> bytes:
        """Up to ``size`` bytes (maybe more for shaping stages); ``b""`` at the end."""
        ...


class Bytes:
    """A stage over bytes in memory (a peeked head put back in front of the rest)."""

    def __init__(self, head: bytes, rest: ByteSource | None = None) -> None:
        self._head = head
        self._rest = rest

    def read_block(self, size: int) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        return self._rest.read_block(size) if self._rest is not None else b""


class RecordRange:
    """The records of an object that start in bytes ``first..stop`` (exclusive)."""

    def __init__(self, reader: ObjectReader, first: int, stop: int, delimiter: bytes) -> None:
        self._reader = reader
        self._delimiter = delimiter
        self._stop = stop
        self._at = self._record_start(first)
        self._done = self._at >= stop

    def _find(self, start: int) -> int:
        """The offset just after the first delimiter at or after ``start`` (or the size)."""
        at = start
        carry = b""
        while at < self._reader.size:
            block = self._reader.read(at, BLOCK)
            data = carry + block
            found = data.find(self._delimiter)
            if found >= 0:
                return at - len(carry) + found + len(self._delimiter)
            keep = len(self._delimiter) - 1
            carry = data[len(data) - keep :] if keep else b""
            at += len(block)
        return self._reader.size

    def _record_start(self, first: int) -> int:
        if first <= 0:
            return 0
        return self._find(max(0, first - len(self._delimiter)))

    def read_block(self, size: int) -> bytes:
        if self._done:
            return b""
        if self._at < self._stop:
            data = self._reader.read(self._at, min(size, self._stop - self._at))
            self._at += len(data)
            if not data:
                self._done = True
            return data
        # finish the record that started before the range's end (unless one starts there)
        self._done = True
        delimiter, at = self._delimiter, self._at
        if at >= self._reader.size or self._reader.read(at - len(delimiter), len(delimiter)) == (
            delimiter
        ):
            return b""
        end = self._find(max(0, at - (len(delimiter) - 1)))
        return self._reader.read(at, end - at)


class Decompressed:
    """GZIP or BZIP2 undone, member after member."""

    def __init__(self, source: ByteSource, compression: str) -> None:
        self._source = source
        self._compression = compression
        self._decoder: Any = self._new()
        self._pending = b""
        self._started = False
        self._eof = False

    def _new(self) -> Any:
        if self._compression == "GZIP":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return bz2.BZ2Decompressor()

    def _bad(self) -> S3Error:
        return S3Error(
            "InvalidCompressionFormat", f"The object is not valid {self._compression} data."
        )

    def read_block(self, size: int) -> bytes:
        while not self._eof:
            data = self._pending or self._source.read_block(BLOCK)
            self._pending = b""
            if not data:
                self._eof = True
                if self._started and not self._decoder.eof:
                    raise self._bad()
                break
            try:
                out: bytes = self._decoder.decompress(data)
            except (zlib.error, OSError, EOFError):
                raise self._bad() from None
            self._started = True
            if self._decoder.eof:
                rest = self._decoder.unused_data
                self._decoder = self._new()
                self._started = False
                self._pending = rest
            if out:
                return out
        return b""


class CsvText:
    """CSV bytes pyarrow can read: comment lines dropped, records ending in newlines."""

    def __init__(self, source: ByteSource, record_delimiter: bytes, comments: bytes) -> None:
        self._source = source
        self._replace = record_delimiter not in NATIVE_DELIMITERS
        self._delimiter = b"\n" if self._replace else record_delimiter
        self._original = record_delimiter
        self._comments = comments
        self._carry = b""
        self._split = b""
        self._line_start = True
        self._eof = False

    @property
    def delimiter(self) -> bytes:
        """The delimiter records end with in this stage's output."""
        return self._delimiter

    @property
    def needed(self) -> bool:
        """Whether this stage changes anything at all."""
        return self._replace or bool(self._comments)

    def _next(self) -> bytes:
        data = self._source.read_block(BLOCK)
        if not self._replace:
            return data
        data = self._split + data
        self._split = b""
        if data and len(self._original) > 1 and data.endswith(self._original[:1]):
            self._split, data = data[-1:], data[:-1]  # a delimiter may be cut in two
            if not data:
                return self._next() if not self._eof else b""
        return data.replace(self._original, b"\n")

    def read_block(self, size: int) -> bytes:
        while True:
            if self._eof:
                out, self._carry = self._carry, b""
                return self._filter(out) if out else b""
            block = self._next()
            if not block:
                self._eof = True
                if self._split:
                    self._carry += self._split
                    self._split = b""
                continue
            data = self._carry + block
            self._carry = b""
            if not self._comments or self._comments not in data:
                self._line_start = data.endswith(self._delimiter)
                return data
            cut = data.rfind(self._delimiter)
            if cut < 0:
                self._carry = data
                continue
            end = cut + len(self._delimiter)
            head, self._carry = data[:end], data[end:]
            out = self._filter(head)
            if out:
                return out

    def _filter(self, data: bytes) -> bytes:
        lines = data.split(self._delimiter)
        kept = []
        for n, line in enumerate(lines):
            continues = n == 0 and not self._line_start
            if not continues and line.startswith(self._comments):
                continue
            kept.append(line)
        self._line_start = data.endswith(self._delimiter)
        out = self._delimiter.join(kept)
        if data.endswith(self._delimiter) and kept and kept[-1] != b"":
            out += self._delimiter
        return out


class _Missing:
    """A path that leads nowhere (S3 Select's MISSING)."""


_MISSING = _Missing()


def _follow(value: Any, steps: tuple[PathStep, ...]) -> Iterator[Any]:
    """The values ``steps`` reach from ``value`` (``[*]`` fans out over a list)."""
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if step.wildcard:
        if isinstance(value, list):
            for item in value:
                yield from _follow(item, rest)
        else:  # as AWS: S3Object[*] over a document that is one object is that object
            yield from _follow(value, rest)
        return
    if step.name is not None:
        if isinstance(value, dict) and step.name in value:
            yield from _follow(value[step.name], rest)
        return
    if isinstance(value, list) and step.index is not None and step.index < len(value):
        yield from _follow(value[step.index], rest)


class JsonRecords:
    """One JSON object per line from a JSON document (values reached through ``path``).

    The document is a sequence of top-level values; when ``path`` starts with
    ``[*]`` and the document is one array, its elements are streamed one by
    one (an array is never held whole). A record that is not an object
    becomes ``{"_1": value}``.
    """

    def __init__(self, source: ByteSource, path: tuple[PathStep, ...]) -> None:
        self._source = source
        self._path = path
        self._decoder = json.JSONDecoder()
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._at = 0
        self._eof = False
        self._in_array = False
        self._top_array_used = False
        self._done = False
        self._records = self.records()

    def _fill(self) -> bool:
        if self._eof:
            return False
        block = self._source.read_block(BLOCK)
        try:
            text = self._text.decode(block, final=not block)
        except UnicodeDecodeError:
            raise S3Error("InvalidTextEncoding", "The JSON object is not UTF-8.") from None
        if not block:
            self._eof = True
        self._buffer = self._buffer[self._at :] + text
        self._at = 0
        if len(self._buffer) > MAX_JSON_VALUE:
            raise S3Error("OverMaxRecordSize", "A JSON value is larger than 64 MiB.")
        return True

    def _skip_space(self, also: str = "") -> str | None:
        """The next character that is not blank (nor in ``also``); None at the end."""
        while True:
            buffer = self._buffer
            at = self._at
            while at < len(buffer) and (buffer[at] in " \t\r\n" or buffer[at] in also):
                at += 1
            self._at = at
            if at < len(buffer):
                return buffer[at]
            if not self._fill():
                return None

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._at)
            except json.JSONDecodeError as e:
                if not self._eof and self._fill():
                    continue
                raise S3Error("JSONParsingError", f"Invalid JSON: {e.msg}.") from None
            if end >= len(self._buffer) and not self._eof:
                if self._fill():
                    continue  # a number or literal may go on in the next block
            self._at = end
            return value

    def _values(self) -> Iterator[Any]:
        path = self._path
        while True:
            char = self._skip_space("," if self._in_array else "")
            if char is None:
                if self._in_array:
                    raise S3Error("JSONParsingError", "The JSON array is not closed.")
                return
            if self._in_array and char == "]":
                self._in_array = False
                self._at += 1
                continue
            if (
                not self._in_array
                and char == "["
                and path
                and path[0].wildcard
                and not self._top_array_used
            ):
                self._in_array = True
                self._top_array_used = True
                self._at += 1
                continue
            value = self._value()
            steps = path[1:] if (self._top_array_used and path) else path
            yield from _follow(value, steps)

    def records(self) -> Iterator[bytes]:
        """The records as JSON lines."""
        for value in self._values():
            record = value if isinstance(value, dict) else {"_1": value}
            yield json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"

    def read_block(self, size: int) -> bytes:
        if self._done:
            return b""
        out: list[bytes] = []
        total = 0
        for line in self._records:
            out.append(line)
            total += len(line)
            if total >= size:
                break
        else:
            self._done = True
        return b"".join(out)


class Counted:
    """Counts the bytes that pass (BytesProcessed)."""

    def __init__(self, source: ByteSource, control: QueryControl) -> None:
        self._source = source
        self._control = control

    def read_block(self, size: int) -> bytes:
        data = self._source.read_block(size)
        self._control.count_processed(len(data))
        return data


class StreamFile(io.RawIOBase):
    """The last stage as a readable Python file (``pyarrow.PythonFile`` reads it).

    Errors are recorded in the query's control block before they are raised,
    so that the query reports them with their own code.
    """

    def __init__(self, source: ByteSource, control: QueryControl) -> None:
        super().__init__()
        self._source = source
        self._control = control
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            self._control.check()
            if size is None or size < 0:
                size = 1 << 62
            pieces = [self._pending] if self._pending else []
            have = len(self._pending)
            self._pending = b""
            while have < size and not self._eof:
                block = self._source.read_block(min(size - have, BLOCK) or BLOCK)
                if not block:
                    self._eof = True
                    break
                pieces.append(block)
                have += len(block)
            data = b"".join(pieces)
            if len(data) > size:
                data, self._pending = data[:size], data[size:]
            return data
        except S3Error as e:
            raise self._control.input_error(e) from None
        except QueryCancelled:
            raise

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
