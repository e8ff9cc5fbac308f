"""The objects a query reads, as pyarrow datasets that DataFusion scans as streams.

A table of a query is a set of objects (:class:`ObjectList`: the one object
of S3 Select, or the keys a glob matches, listed page by page while the scan
runs) and a :class:`Shape` saying how their bytes are written (CSV, JSON or
Parquet, compression, ScanRange, JSON path). :func:`build_table` reads what
the plan needs up front (the CSV header, a sample of JSON, the Parquet
footer) and returns a :class:`Table`: its columns, for the translation, and a
``pyarrow.dataset.Dataset`` over :class:`StoreFileSystem`, a pyarrow file
system whose files are views of the store, never of the disk:

- CSV and JSON tables are one file: every object's shaped bytes, one after
  the other (:class:`Concatenation`, which opens the next objects while the
  current one is parsed; each object's CSV header is dropped), so any number
  of objects streams through one parser with bounded memory;
- a Parquet table has one file per object, read at random, so a filter and a
  projection read only the row groups and columns they need.
"""

from __future__ import annotations

import collections
import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pa_pq

from s4d.engine import ObjectsFacade, OpenObject
from s4d.errors import S3Error
from s4d.sql.access import ReadAccess
from s4d.sql.control import EngineBridge, QueryControl
from s4d.sql.dialect import Column, PathStep
from s4d.sql.globs import Glob
from s4d.sql.objects import ObjectReader, RandomAccessFile, SequentialFile
from s4d.sql.request import CsvInput, InputFormat, JsonInput, ParquetInput, ScanRange
from s4d.sql.streams import (
    BLOCK,
    Bytes,
    ByteSource,
    Counted,
    CsvText,
    Decompressed,
    JsonRecords,
    RecordRange,
    StreamFile,
)

#: Objects opened ahead of the one being parsed (each with its first chunk, when small).
OPEN_AHEAD = 8
#: Listing page size while a glob's objects are found.
LIST_PAGE = 1000
#: Bytes of a JSON object read to learn its columns.
JSON_SAMPLE = 4 << 20
#: Bytes of JSON pyarrow parses at once: the columns are those of the first block, and
#: no record may be longer.
JSON_BLOCK = 1 << 20
#: Largest CSV header line.
MAX_HEADER = 1 << 20
#: Objects tried, at most, to find one that is not empty (for the columns).
SCHEMA_TRIES = 100
#: How Parquet is read: column chunks as decoding reaches them, not every chunk of the
#: row groups ahead at once (pyarrow's pre-buffering holds about 16 row groups in memory).
PARQUET_SCAN = pa_ds.ParquetFragmentScanOptions(pre_buffer=False, buffer_size=1 << 20)


@dataclass(frozen=True)
class ObjectRef:
    """One object to read: its key and, when listed, the version listed and its size."""

    key: str
    version_id: str | None = None
    size: int = -1


def _denied(key: str) -> S3Error:
    return S3Error("AccessDenied", f"The query may not read {key!r}.")


class ObjectList:
    """The objects of one table, listed again each time the table is scanned.

    :param glob: the keys a ``?sql`` glob matches (only its literal prefix is
        listed); None with ``key``: that one object; None with neither: every
        key of the bucket.
    """

    def __init__(
        self,
        objects: ObjectsFacade,
        bridge: EngineBridge,
        bucket: str,
        access: ReadAccess,
        glob: Glob | None = None,
        key: str | None = None,
    ) -> None:
        self.objects = objects
        self.bridge = bridge
        self.bucket = bucket
        self.access = access
        self.glob = glob
        self.key = key

    def __iter__(self) -> Iterator[ObjectRef]:
        if self.key is not None:
            if not self.access.may_read(self.bucket, self.key):
                raise _denied(self.key)
            yield ObjectRef(self.key)
            return
        prefix = self.glob.prefix if self.glob is not None else ""
        after: str | None = None
        while True:
            self.bridge.control.check()
            page = self.bridge.call(
                self.objects.list_page, self.bucket, prefix, None, after, LIST_PAGE
            )
            for entry in page.entries:
                if self.glob is not None and not self.glob.matches(entry.key):
                    continue
                if entry.key.endswith("/") and entry.version.size == 0:
                    continue  # a folder marker, not data
                if not self.access.may_read(self.bucket, entry.key):
                    raise _denied(entry.key)
                yield ObjectRef(entry.key, entry.version.version_id, entry.version.size)
            if not page.is_truncated or page.last is None:
                return
            after = page.last


@dataclass(frozen=True)
class Shape:
    """How every object of a table is written and which of its bytes to read.

    :ivar compression: ``NONE``, ``GZIP``, ``BZIP2``, or ``AUTO`` (by the key's
        ``.gz`` / ``.bz2`` suffix, for ``?sql``).
    """

    input: InputFormat
    compression: str = "NONE"
    scan_range: ScanRange | None = None
    path: tuple[PathStep, ...] = ()

    def compression_of(self, key: str) -> str:
        """The compression of the object ``key``."""
        if self.compression != "AUTO":
            return self.compression
        lowered = key.lower()
        if lowered.endswith((".gz", ".gzip")):
            return "GZIP"
        if lowered.endswith((".bz2", ".bzip2")):
            return "BZIP2"
        return "NONE"

    @property
    def record_delimiter(self) -> bytes:
        """The delimiter records end with in the raw object (for ScanRange)."""
        if isinstance(self.input, CsvInput):
            return self.input.record_delimiter.encode("utf-8")
        return b"\n"

    def raw(self, reader: ObjectReader, key: str) -> ByteSource:
        """The object's bytes this shape reads, decompressed."""
        source: ByteSource
        if self.scan_range is not None:
            first, stop = self.scan_range.bounds(reader.size)
            source = RecordRange(reader, first, stop, self.record_delimiter)
        else:
            source = SequentialFile(reader)
        compression = self.compression_of(key)
        if compression != "NONE":
            source = Decompressed(source, compression)
        return source

    def csv_text(self, source: ByteSource) -> tuple[ByteSource, bytes]:
        """CSV bytes with comments dropped; and the delimiter its records now end with."""
        assert isinstance(self.input, CsvInput)
        delimiter = self.input.record_delimiter.encode("utf-8")
        text = CsvText(source, delimiter, self.input.comments.encode("utf-8"))
        if text.needed:
            return text, text.delimiter
        return source, delimiter

    @property
    def has_header(self) -> bool:
        """Each object's first CSV record is a header."""
        return isinstance(self.input, CsvInput) and self.input.file_header_info in ("USE", "IGNORE")

    def reads_first_record(self, size: int) -> bool:
        """The records read include the object's first one (its header, if it has one)."""
        return self.scan_range is None or self.scan_range.bounds(size)[0] == 0

    def shaped(
        self, reader: ObjectReader, key: str, control: QueryControl | None = None
    ) -> ByteSource:
        """The object's bytes as its parser reads them (header dropped, JSON lined up).

        With ``control``, the bytes read (after decompression) count as processed.
        """
        source = self.raw(reader, key)
        if control is not None:
            source = Counted(source, control)
        if isinstance(self.input, CsvInput):
            source, delimiter = self.csv_text(source)
            if self.has_header and self.reads_first_record(reader.size):
                _header, source = split_first_record(source, self.input, delimiter)
            return Terminated(source, delimiter if delimiter in (b"\r", b"\r\n") else b"\n")
        if isinstance(self.input, JsonInput):
            if self.input.type == "DOCUMENT":
                head = _peek(source)
                source = Bytes(head, source)
                if self.path or head.lstrip()[:1] == b"[":
                    source = JsonRecords(source, self.path)
            return Terminated(source, b"\n")
        raise AssertionError("Parquet is read at random, not shaped")


def _peek(source: ByteSource) -> bytes:
    """The first bytes of ``source`` that are not blank (with the blanks before them)."""
    out = b""
    while not out.strip():
        block = source.read_block(BLOCK)
        if not block:
            break
        out += block
    return out


class Terminated:
    """Ends the bytes with ``terminator`` unless they end with a newline already."""

    def __init__(self, source: ByteSource, terminator: bytes) -> None:
        self._source = source
        self._terminator = terminator
        self._last = b""
        self._done = False

    def read_block(self, size: int) -> bytes:
        if self._done:
            return b""
        data = self._source.read_block(size)
        if data:
            self._last = data[-1:]
            return data
        self._done = True
        if self._last and self._last not in (b"\n", b"\r"):
            return self._terminator
        return b""


def split_first_record(
    source: ByteSource, csv: CsvInput, delimiter: bytes
) -> tuple[bytes, ByteSource]:
    """The first CSV record (quotes respected) and a source of everything after it."""
    quote = csv.quote_character.encode("utf-8")
    escape = csv.quote_escape_character.encode("utf-8")
    buffer = b""
    scanned = 0
    in_quotes = False
    while True:
        at = scanned
        while at < len(buffer):
            char = buffer[at : at + 1]
            if in_quotes and escape != quote and char == escape:
                at += 2
                continue
            if char == quote:
                in_quotes = not in_quotes
            elif not in_quotes and buffer.startswith(delimiter, at):
                end = at + len(delimiter)
                return buffer[:at], Bytes(buffer[end:], source)
            at += 1
        scanned = len(buffer)
        if scanned > MAX_HEADER:
            raise S3Error("CSVParsingError", "The first CSV record is longer than 1 MiB.")
        block = source.read_block(BLOCK)
        if not block:
            return buffer, Bytes(b"")
        buffer += block


def csv_fields(record: bytes, csv: CsvInput) -> list[str]:
    """The fields of one CSV record."""
    import csv as py_csv

    try:
        text = record.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise S3Error("InvalidTextEncoding", "The CSV header is not UTF-8.") from None
    escape = csv.quote_escape_character
    reader = py_csv.reader(
        [text],
        delimiter=csv.field_delimiter,
        quotechar=csv.quote_character,
        escapechar=escape if escape != csv.quote_character else None,
        doublequote=True,
        strict=False,
    )
    try:
        return next(reader, [])
    except py_csv.Error as e:
        raise S3Error("CSVParsingError", f"The CSV header cannot be read: {e}.") from None


class Concatenation:
    """The shaped bytes of every object of a list, one after the other.

    Opens up to :data:`OPEN_AHEAD` objects ahead of the one being read, each
    (when it is a single small chunk) with its bytes; an object deleted since
    it was listed is skipped.
    """

    def __init__(
        self,
        refs: Iterator[ObjectRef],
        open_object: Callable[[ObjectRef], Future[OpenObject]],
        stack: Callable[[ObjectRef, OpenObject], ByteSource],
        control: QueryControl,
    ) -> None:
        self._refs = refs
        self._open = open_object
        self._stack = stack
        self._control = control
        self._ahead: collections.deque[tuple[ObjectRef, Future[OpenObject]]] = collections.deque()
        self._current: ByteSource | None = None
        self._listed_all = False
        self._produced = False
        self._ended = False

    def _fill(self) -> None:
        while not self._listed_all and len(self._ahead) < OPEN_AHEAD:
            ref = next(self._refs, None)
            if ref is None:
                self._listed_all = True
                return
            self._ahead.append((ref, self._open(ref)))

    def _next_object(self) -> bool:
        while True:
            self._fill()
            if not self._ahead:
                return False
            ref, pending = self._ahead.popleft()
            try:
                opened = self._control.wait(pending)
            except S3Error as e:
                if e.code in ("NoSuchKey", "NoSuchVersion"):
                    continue  # deleted since it was listed
                raise
            self._current = self._stack(ref, opened)
            self._fill()
            return True

    def read_block(self, size: int) -> bytes:
        while True:
            if self._current is None and not self._next_object():
                if self._produced or self._ended:
                    return b""
                self._ended = True
                return b"\n"  # no records at all: a blank line (pyarrow refuses empty input)
            assert self._current is not None
            data = self._current.read_block(size)
            if data:
                self._produced = True
                return data
            self._current = None


class _Limited:
    """At most ``limit`` bytes of a source."""

    def __init__(self, source: ByteSource, limit: int) -> None:
        self._source = source
        self._left = limit

    def read_block(self, size: int) -> bytes:
        if self._left <= 0:
            return b""
        data = self._source.read_block(min(size, self._left))
        self._left -= len(data)
        return data


# --- pyarrow's view of the store ---------------------------------------------------------


class StoreFileSystem(pa_fs.FileSystemHandler):  # type: ignore[misc]
    """A pyarrow file system whose files are made by functions (views of stored objects).

    Nothing else is reachable through it: any other path is not found, and
    nothing can be written.
    """

    def __init__(self) -> None:
        self.files: dict[str, tuple[Callable[[], io.RawIOBase], int]] = {}

    def add(self, path: str, opener: Callable[[], io.RawIOBase], size: int = -1) -> None:
        """Make ``path`` a file that ``opener`` opens."""
        self.files[path] = (opener, size)

    def _file(self, path: str) -> tuple[Callable[[], io.RawIOBase], int]:
        found = self.files.get(path)
        if found is None:
            raise FileNotFoundError(path)
        return found

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return id(self)

    def get_type_name(self) -> str:
        return "s4d-store"

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> list[pa_fs.FileInfo]:
        infos = []
        for path in paths:
            if path in self.files:
                size = self.files[path][1]
                infos.append(
                    pa_fs.FileInfo(path, pa_fs.FileType.File, size=size if size >= 0 else None)
                )
            else:
                infos.append(pa_fs.FileInfo(path, pa_fs.FileType.NotFound))
        return infos

    def get_file_info_selector(self, selector: Any) -> list[pa_fs.FileInfo]:
        return self.get_file_info(sorted(self.files))

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return pa.PythonFile(self._file(path)[0](), mode="r")

    def open_input_file(self, path: str) -> pa.NativeFile:
        return pa.PythonFile(self._file(path)[0](), mode="r")

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("the store is read-only to queries")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


# --- tables ---------------------------------------------------------------------------


@dataclass
class Table:
    """A table ready to register: its columns and the dataset that reads it."""

    name: str
    columns: list[Column]
    dataset: pa_ds.Dataset | None
    schema: pa.Schema


def columns_of(schema: pa.Schema) -> list[Column]:
    """The columns of ``schema``, with the member names of struct columns."""

    def column(field: pa.Field) -> Column:
        members: dict[str, Column] = {}
        if pa.types.is_struct(field.type):
            for i in range(field.type.num_fields):
                child = column(field.type.field(i))
                members.setdefault(child.name.upper(), child)
        return Column(field.name, members)

    return [column(field) for field in schema]


def _unique_names(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name or name in seen:
            name = f"_{position}"
        seen.add(name)
        out.append(name)
    return out


class TableBuilder:
    """Builds the tables of one query over the engine's object facade."""

    def __init__(
        self, objects: ObjectsFacade, bridge: EngineBridge, bucket: str, access: ReadAccess
    ) -> None:
        self.objects = objects
        self.bridge = bridge
        self.bucket = bucket
        self.access = access
        self.control = bridge.control
        self.filesystem = StoreFileSystem()
        self._arrow_fs = pa_fs.PyFileSystem(self.filesystem)
        #: objects opened while planning, by key: the scan reads them through the same
        #: reader (the chunks planning read are not read again)
        self._planned: dict[str, tuple[OpenObject, ObjectReader]] = {}

    def close(self) -> None:
        """Forget the query's files and readers (they refer back to this builder)."""
        self.filesystem.files.clear()
        for _opened, reader in self._planned.values():
            reader.close()
        self._planned.clear()

    # opening objects

    def _start_open(self, ref: ObjectRef) -> Future[OpenObject]:
        planned = self._planned.get(ref.key)
        if planned is not None:
            done: Future[OpenObject] = Future()
            done.set_result(planned[0])
            return done
        return self.bridge.start(self.objects.open, self.bucket, ref.key, ref.version_id, True)

    def _open(self, ref: ObjectRef) -> OpenObject:
        return self.control.wait(self._start_open(ref))

    def _reader(self, opened: OpenObject) -> ObjectReader:
        return ObjectReader(self.objects, self.bridge, opened)

    def _planning_reader(self, ref: ObjectRef, opened: OpenObject) -> ObjectReader:
        """The reader of an object opened while planning (kept for the scan)."""
        planned = self._planned.get(ref.key)
        if planned is None:
            planned = self._planned[ref.key] = (opened, self._reader(opened))
        return planned[1]

    def _scan_reader(self, ref: ObjectRef, opened: OpenObject) -> ObjectReader:
        """The reader a scan uses: the planning one, once, or a new one."""
        planned = self._planned.pop(ref.key, None)
        return planned[1] if planned is not None else self._reader(opened)

    def _first_opened(self, objects: ObjectList) -> Iterator[tuple[ObjectRef, OpenObject]]:
        """The first objects of a list, opened (to read its columns from); none: refused."""
        seen = False
        for tries, ref in enumerate(objects):
            seen = True
            if tries >= SCHEMA_TRIES:
                return
            try:
                yield ref, self._open(ref)
            except S3Error as e:
                if e.code in ("NoSuchKey", "NoSuchVersion") and objects.key is None:
                    continue
                raise
        if not seen:
            raise _no_match(objects)

    # the tables

    def build(self, name: str, objects: ObjectList, shape: Shape) -> Table:
        """The table ``name`` over ``objects`` written as ``shape`` says."""
        if isinstance(shape.input, ParquetInput):
            return self._parquet(name, objects, shape)
        if isinstance(shape.input, CsvInput):
            schema = self._csv_schema(objects, shape)
            file_format: pa_ds.FileFormat = self._csv_format(shape.input, schema)
        else:
            assert isinstance(shape.input, JsonInput)
            schema = self._json_schema(objects, shape)
            file_format = self._json_format(shape, schema)
        if not len(schema):
            return Table(name, [], None, schema)
        path = f"{name}/all"

        def stack(ref: ObjectRef, opened: OpenObject) -> ByteSource:
            return shape.shaped(self._scan_reader(ref, opened), ref.key, self.control)

        def opener() -> io.RawIOBase:
            joined = Concatenation(iter(objects), self._start_open, stack, self.control)
            return StreamFile(joined, self.control)

        self.filesystem.add(path, opener)
        dataset = pa_ds.FileSystemDataset.from_paths(
            [path], schema=schema, format=file_format, filesystem=self._arrow_fs
        )
        return Table(name, columns_of(schema), dataset, schema)

    def _csv_schema(self, objects: ObjectList, shape: Shape) -> pa.Schema:
        csv = shape.input
        assert isinstance(csv, CsvInput)
        whole = Shape(shape.input, shape.compression)  # the header is at the very start
        for ref, opened in self._first_opened(objects):
            reader = self._planning_reader(ref, opened)
            source, delimiter = whole.csv_text(whole.raw(reader, ref.key))
            record, _ = split_first_record(source, csv, delimiter)
            if not record.strip(b"\r\n"):
                continue
            fields = csv_fields(record, csv)
            if csv.file_header_info == "USE":
                names = _unique_names(fields)
            else:
                names = [f"_{i}" for i in range(1, len(fields) + 1)]
            return pa.schema([(n, pa.string()) for n in names])
        return pa.schema([])

    @staticmethod
    def _csv_format(csv: CsvInput, schema: pa.Schema) -> pa_ds.CsvFileFormat:
        escape = csv.quote_escape_character
        return pa_ds.CsvFileFormat(
            parse_options=pa_csv.ParseOptions(
                delimiter=csv.field_delimiter,
                quote_char=csv.quote_character,
                double_quote=True,
                escape_char=escape if escape != csv.quote_character else False,
                newlines_in_values=csv.allow_quoted_record_delimiter,
                ignore_empty_lines=True,
            ),
            read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=BLOCK),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in schema.names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def _json_schema(self, objects: ObjectList, shape: Shape) -> pa.Schema:
        for ref, opened in self._first_opened(objects):
            reader = self._planning_reader(ref, opened)
            sample = _Limited(shape.shaped(reader, ref.key), JSON_SAMPLE)
            head = _peek(sample)
            if not head.strip():
                continue
            stream = StreamFile(Bytes(head, sample), self.control)
            try:
                reader = pa_json.open_json(
                    pa.PythonFile(stream, mode="r"),
                    read_options=pa_json.ReadOptions(block_size=JSON_BLOCK),
                    parse_options=pa_json.ParseOptions(newlines_in_values=self._multiline(shape)),
                )
            except pa.ArrowInvalid as e:
                self.control.check()
                raise S3Error("JSONParsingError", f"The object is not JSON: {e}") from None
            schema: pa.Schema = reader.schema
            reader.close()
            if len(schema):
                return schema
        return pa.schema([])

    @staticmethod
    def _multiline(shape: Shape) -> bool:
        return isinstance(shape.input, JsonInput) and shape.input.type == "DOCUMENT"

    def _json_format(self, shape: Shape, schema: pa.Schema) -> pa_ds.JsonFileFormat:
        return pa_ds.JsonFileFormat(
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema,
                newlines_in_values=self._multiline(shape),
                unexpected_field_behavior="ignore",
            ),
            read_options=pa_json.ReadOptions(block_size=JSON_BLOCK),
        )

    def _parquet(self, name: str, objects: ObjectList, shape: Shape) -> Table:
        file_format = pa_ds.ParquetFileFormat(default_fragment_scan_options=PARQUET_SCAN)
        fragments = []
        schema: pa.Schema | None = None
        for n, ref in enumerate(objects):
            path = f"{name}/{n}"
            opened: OpenObject | None = None
            if schema is None or shape.scan_range is not None:
                opened = self._open(ref)
                metadata = self._parquet_metadata(ref, opened)
                if schema is None:
                    schema = metadata.schema.to_arrow_schema()
            self.filesystem.add(path, self._parquet_opener(ref, opened), ref.size)
            row_groups = None
            if shape.scan_range is not None and opened is not None:
                row_groups = _row_groups_in(metadata, shape.scan_range, self._size(opened))
            fragments.append(
                file_format.make_fragment(path, filesystem=self._arrow_fs, row_groups=row_groups)
            )
        if schema is None:
            raise _no_match(objects)
        dataset = pa_ds.FileSystemDataset(fragments, schema, file_format, self._arrow_fs)
        return Table(name, columns_of(schema), dataset, schema)

    @staticmethod
    def _size(opened: OpenObject) -> int:
        return sum(location.size for location in opened.locations)

    def _parquet_metadata(self, ref: ObjectRef, opened: OpenObject) -> Any:
        handle = pa.PythonFile(RandomAccessFile(self._planning_reader(ref, opened)), mode="r")
        try:
            return pa_pq.ParquetFile(handle).metadata
        except (pa.ArrowInvalid, OSError) as e:
            self.control.check()
            raise S3Error("ParquetParsingError", f"The object is not Parquet: {e}") from None

    def _parquet_opener(
        self, ref: ObjectRef, opened: OpenObject | None
    ) -> Callable[[], io.RawIOBase]:
        """Opens the object as a file; one opened while planning keeps its reader (and cache)."""

        def opener() -> io.RawIOBase:
            planned = self._planned.get(ref.key)
            if planned is not None:
                return RandomAccessFile(planned[1])
            found = opened if opened is not None else self._open(ref)
            return RandomAccessFile(self._reader(found))

        return opener


def _no_match(objects: ObjectList) -> S3Error:
    pattern = objects.glob.pattern if objects.glob is not None else objects.key or "*"
    return S3Error("InvalidRequest", f"No objects matched the query pattern {pattern!r}.")


def _row_groups_in(metadata: Any, scan_range: ScanRange, size: int) -> list[int]:
    """The row groups whose first byte lies in ``scan_range``."""
    first, stop = scan_range.bounds(size)
    chosen = []
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        starts = []
        for c in range(group.num_columns):
            column = group.column(c)
            for offset in (column.dictionary_page_offset, column.data_page_offset):
                if offset:
                    starts.append(offset)
        start = min(starts) if starts else 0
        if first <= start < stop:
            chosen.append(index)
    return chosen
