"""What a query asks for: SelectObjectContent's request document and ``?sql``'s JSON body.

The S3 layer parses the XML (safely, :mod:`s4d.s3.xml`) and hands the element
tree here; everything about the document's meaning, defaults and limits is
decided in this module, and a request that AWS would refuse is refused with
AWS's error code before any object byte is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from s4d.errors import S3Error

#: Longest SQL expression accepted (AWS: 256 KB).
MAX_EXPRESSION = 256 << 10
COMPRESSIONS = ("NONE", "GZIP", "BZIP2")
HEADER_INFOS = ("USE", "IGNORE", "NONE")
JSON_TYPES = ("DOCUMENT", "LINES")
QUOTE_FIELDS = ("ALWAYS", "ASNEEDED")
#: ``?sql`` input formats (``jsonl`` and ``ndjson`` name JSON lines).
SQL_FORMATS = ("csv", "json", "jsonl", "ndjson", "parquet")
SQL_OUTPUTS = ("json", "csv")


@dataclass(frozen=True)
class CsvInput:
    """How a CSV object is written (AWS's ``CSVInput``)."""

    file_header_info: str = "NONE"
    field_delimiter: str = ","
    record_delimiter: str = "\n"
    quote_character: str = '"'
    quote_escape_character: str = '"'
    #: lines starting with this are skipped ("" : none); AWS's default is ``#``
    comments: str = "#"
    allow_quoted_record_delimiter: bool = False


@dataclass(frozen=True)
class JsonInput:
    """A JSON object: one document (``DOCUMENT``) or one record per line (``LINES``)."""

    type: str = "DOCUMENT"


@dataclass(frozen=True)
class ParquetInput:
    """A Parquet object."""


InputFormat = CsvInput | JsonInput | ParquetInput


@dataclass(frozen=True)
class CsvOutput:
    """How CSV output is written (AWS's ``CSVOutput``)."""

    field_delimiter: str = ","
    record_delimiter: str = "\n"
    quote_character: str = '"'
    quote_escape_character: str = '"'
    quote_fields: str = "ASNEEDED"
    #: write the column names first (``?sql`` does; S3 Select never does)
    header: bool = False


@dataclass(frozen=True)
class JsonOutput:
    """JSON output: one object per record, each followed by ``record_delimiter``.

    ``array``: one JSON array of the records instead (``?sql``'s ``output: json``).
    """

    record_delimiter: str = "\n"
    array: bool = False


OutputFormat = CsvOutput | JsonOutput


@dataclass(frozen=True)
class ScanRange:
    """AWS's ``ScanRange``: the records that start in bytes ``start..end`` (inclusive).

    Only ``end``: the last ``end`` bytes. Only ``start``: from there to the end.
    """

    start: int | None = None
    end: int | None = None

    def bounds(self, size: int) -> tuple[int, int]:
        """Where the records read start: ``first`` and ``stop`` (exclusive) in an object."""
        if self.start is None:
            return max(0, size - (self.end or 0)), size
        stop = size if self.end is None else min(size, self.end + 1)
        return min(self.start, size), max(min(self.start, size), stop)


@dataclass(frozen=True)
class SelectRequest:
    """One SelectObjectContent request."""

    expression: str
    input: InputFormat
    output: OutputFormat
    compression: str = "NONE"
    request_progress: bool = False
    #: the records to read, or None for the whole object
    scan_range: ScanRange | None = None


@dataclass(frozen=True)
class MultiObjectRequest:
    """One ``POST /{bucket}?sql`` request (S4's shape)."""

    sql: str
    input: InputFormat
    output: OutputFormat
    extra: dict[str, object] = field(default_factory=dict)


# --- SelectObjectContent ----------------------------------------------------------------


def _text(element: Element | None, tag: str) -> str | None:
    if element is None:
        return None
    found = element.find(tag)
    if found is None:
        return None
    return found.text or ""


def _choice(value: str | None, allowed: tuple[str, ...], default: str, code: str) -> str:
    if value is None:
        return default
    upper = value.strip().upper()
    if upper not in allowed:
        raise S3Error(code, f"{value!r} is not one of {', '.join(allowed)}.")
    return upper


def _boolean(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise S3Error("InvalidRequestParameter", f"{name} must be true or false.")
    return lowered == "true"


def _one_char(value: str | None, default: str, name: str, allow_empty: bool = False) -> str:
    if value is None:
        return default
    if value == "" and allow_empty:
        return ""
    if len(value) != 1:
        raise S3Error("InvalidRequestParameter", f"{name} must be a single character.")
    return value


def _delimiter(value: str | None, default: str, name: str) -> str:
    if value is None or value == "":
        return default
    if len(value) > 2:
        raise S3Error("InvalidRequestParameter", f"{name} must be one or two characters.")
    return value


def _csv_input(element: Element) -> CsvInput:
    field_delimiter = _one_char(_text(element, "FieldDelimiter"), ",", "FieldDelimiter")
    quote = _one_char(_text(element, "QuoteCharacter"), '"', "QuoteCharacter")
    escape = _one_char(_text(element, "QuoteEscapeCharacter"), '"', "QuoteEscapeCharacter")
    record = _delimiter(_text(element, "RecordDelimiter"), "\n", "RecordDelimiter")
    comments = _one_char(_text(element, "Comments"), "#", "Comments", allow_empty=True)
    if field_delimiter in record or field_delimiter == quote:
        raise S3Error("InvalidRequestParameter", "FieldDelimiter clashes with another delimiter.")
    return CsvInput(
        file_header_info=_choice(
            _text(element, "FileHeaderInfo"), HEADER_INFOS, "NONE", "InvalidFileHeaderInfo"
        ),
        field_delimiter=field_delimiter,
        record_delimiter=record,
        quote_character=quote,
        quote_escape_character=escape,
        comments=comments,
        allow_quoted_record_delimiter=_boolean(
            _text(element, "AllowQuotedRecordDelimiter"), "AllowQuotedRecordDelimiter"
        ),
    )


def _input(element: Element | None) -> tuple[InputFormat, str]:
    if element is None:
        raise S3Error("MissingRequiredParameter", "InputSerialization is required.")
    compression = _choice(
        _text(element, "CompressionType"), COMPRESSIONS, "NONE", "InvalidCompressionFormat"
    )
    found = [child for child in element if child.tag in ("CSV", "JSON", "Parquet")]
    if len(found) != 1:
        raise S3Error(
            "ObjectSerializationConflict",
            "InputSerialization names exactly one of CSV, JSON and Parquet.",
        )
    kind = found[0]
    if kind.tag == "CSV":
        return _csv_input(kind), compression
    if kind.tag == "JSON":
        json_type = _choice(_text(kind, "Type"), JSON_TYPES, "DOCUMENT", "InvalidJsonType")
        return JsonInput(json_type), compression
    if compression != "NONE":
        raise S3Error(
            "InvalidCompressionFormat", "Parquet objects are compressed by column, not whole."
        )
    return ParquetInput(), compression


def _output(element: Element | None) -> OutputFormat:
    if element is None:
        raise S3Error("MissingRequiredParameter", "OutputSerialization is required.")
    found = [child for child in element if child.tag in ("CSV", "JSON")]
    if len(found) != 1:
        raise S3Error(
            "ObjectSerializationConflict", "OutputSerialization names exactly one of CSV and JSON."
        )
    kind = found[0]
    if kind.tag == "JSON":
        return JsonOutput(_delimiter(_text(kind, "RecordDelimiter"), "\n", "RecordDelimiter"))
    field_delimiter = _one_char(_text(kind, "FieldDelimiter"), ",", "FieldDelimiter")
    quote = _one_char(_text(kind, "QuoteCharacter"), '"', "QuoteCharacter")
    return CsvOutput(
        field_delimiter=field_delimiter,
        record_delimiter=_delimiter(_text(kind, "RecordDelimiter"), "\n", "RecordDelimiter"),
        quote_character=quote,
        quote_escape_character=_one_char(
            _text(kind, "QuoteEscapeCharacter"), quote, "QuoteEscapeCharacter"
        ),
        quote_fields=_choice(
            _text(kind, "QuoteFields"), QUOTE_FIELDS, "ASNEEDED", "InvalidQuoteFields"
        ),
    )


def _scan_range(
    element: Element | None, input_format: InputFormat, compression: str
) -> ScanRange | None:
    if element is None:
        return None
    start_text, end_text = _text(element, "Start"), _text(element, "End")
    try:
        start = int(start_text) if start_text not in (None, "") else None
        end = int(end_text) if end_text not in (None, "") else None
    except ValueError:
        raise S3Error("InvalidScanRange", "ScanRange Start and End must be integers.") from None
    if start is None and end is None:
        raise S3Error("InvalidScanRange", "ScanRange names a Start, an End or both.")
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise S3Error("InvalidScanRange", "ScanRange values must not be negative.")
    if start is not None and end is not None and end < start:
        raise S3Error("InvalidScanRange", "ScanRange End must not be before Start.")
    if compression != "NONE":
        raise S3Error("UnsupportedScanRangeInput", "ScanRange needs an uncompressed object.")
    if isinstance(input_format, JsonInput) and input_format.type != "LINES":
        raise S3Error("UnsupportedScanRangeInput", "ScanRange needs JSON of type LINES.")
    if isinstance(input_format, CsvInput) and input_format.allow_quoted_record_delimiter:
        raise S3Error(
            "UnsupportedScanRangeInput", "ScanRange cannot be used with AllowQuotedRecordDelimiter."
        )
    return ScanRange(start, end)


def select_request(root: Element) -> SelectRequest:
    """The request described by a ``SelectObjectContentRequest`` document."""
    if root.tag != "SelectObjectContentRequest":
        raise S3Error("MalformedXML")
    expression = _text(root, "Expression")
    if expression is None or not expression.strip():
        raise S3Error("MissingRequiredParameter", "Expression is required.")
    if len(expression.encode("utf-8")) > MAX_EXPRESSION:
        raise S3Error("ExpressionTooLong")
    expression_type = _text(root, "ExpressionType")
    if expression_type is None:
        raise S3Error("MissingRequiredParameter", "ExpressionType is required.")
    if expression_type.strip().upper() != "SQL":
        raise S3Error("InvalidExpressionType")
    input_format, compression = _input(root.find("InputSerialization"))
    progress = root.find("RequestProgress")
    return SelectRequest(
        expression=expression,
        input=input_format,
        output=_output(root.find("OutputSerialization")),
        compression=compression,
        request_progress=_boolean(_text(progress, "Enabled"), "RequestProgress.Enabled"),
        scan_range=_scan_range(root.find("ScanRange"), input_format, compression),
    )


# --- ?sql ------------------------------------------------------------------------------


def multi_object_request(body: bytes) -> MultiObjectRequest:
    """The request described by a ``?sql`` JSON body."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise S3Error("InvalidRequest", "The request body is not a JSON document.") from None
    if not isinstance(document, dict):
        raise S3Error("InvalidRequest", "The request body must be a JSON object.")
    sql = document.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise S3Error("InvalidRequest", "The request names no sql.")
    if len(sql.encode("utf-8")) > MAX_EXPRESSION:
        raise S3Error("ExpressionTooLong")
    known = {"sql", "format", "output", "has_headers", "delimiter"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise S3Error("InvalidRequest", f"Unknown field(s): {', '.join(unknown)}.")
    fmt = document.get("format", "csv")
    if not isinstance(fmt, str) or fmt.lower() not in SQL_FORMATS:
        raise S3Error("InvalidRequest", f"format must be one of {', '.join(SQL_FORMATS)}.")
    out = document.get("output", "json")
    if not isinstance(out, str) or out.lower() not in SQL_OUTPUTS:
        raise S3Error("InvalidRequest", f"output must be one of {', '.join(SQL_OUTPUTS)}.")
    has_headers = document.get("has_headers", True)
    if not isinstance(has_headers, bool):
        raise S3Error("InvalidRequest", "has_headers must be true or false.")
    delimiter = document.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise S3Error("InvalidRequest", "delimiter must be one character (not a quote or EOL).")
    fmt = fmt.lower()
    input_format: InputFormat
    if fmt == "csv":
        input_format = CsvInput(
            file_header_info="USE" if has_headers else "NONE",
            field_delimiter=delimiter,
            comments="",
        )
    elif fmt == "json":
        input_format = JsonInput("DOCUMENT")
    elif fmt in ("jsonl", "ndjson"):
        input_format = JsonInput("LINES")
    else:
        input_format = ParquetInput()
    output: OutputFormat = (
        JsonOutput(array=True) if out.lower() == "json" else CsvOutput(header=True)
    )
    return MultiObjectRequest(sql=sql, input=input_format, output=output)
