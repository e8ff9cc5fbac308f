"""What went wrong in a query, as the S3 error AWS would answer.

DataFusion and pyarrow report errors as text; :func:`classify` reads that
text (and, first, the query's control block, which knows when the query was
cancelled, timed out or met an input error of its own) and answers an
:class:`S3Error` with S3 Select's code: ``ParseUnexpectedToken`` for a syntax
error, ``UnsupportedFunction``, ``EvaluatorBindingDoesNotExist`` for an
unknown column, ``CastFailed``, ``CSVParsingError`` ... A message that
matches nothing known is ``InvalidRequest`` when planning and
``InternalError`` afterwards; either way its text is kept.
"""

from __future__ import annotations

import re

from pyarrow.lib import ArrowException

from s4d.errors import S3Error
from s4d.sql.control import QueryCancelled, QueryControl

#: (pattern in the message, code), the first match wins.
PATTERNS: tuple[tuple[str, str], ...] = (
    (r"Resources exhausted|Failed to allocate|memory limit", "QueryMemoryExceeded"),
    (r"TokenizerError|Unterminated string", "LexerInvalidChar"),
    (r"ParserError\(\"Expected: an expression", "ParseExpectedExpression"),
    (r"ParserError|SQL error", "ParseUnexpectedToken"),
    (r"Invalid function|table function .* not found", "UnsupportedFunction"),
    (r"No field named|not found in|Schema error: No field", "EvaluatorBindingDoesNotExist"),
    (r"table '.*' not found", "InvalidTableAlias"),
    (r"Ambiguous reference", "AmbiguousFieldName"),
    (r"expects \d+ arguments|arguments but received", "EvaluatorInvalidArguments"),
    (
        r"No function matches|does not support type|Function '.*' failed",
        ("IncorrectSqlFunctionArgumentType"),
    ),
    (r"InvalidTimestampFormat", "EvaluatorInvalidTimestampFormatPattern"),
    (r"Divide by zero|division by zero", "DivisionByZero"),
    (r"[Oo]verflow", "IntegerOverflow"),
    (r"Cast error|CastFailed|Cannot cast|Unsupported CAST|Parser error", "CastFailed"),
    (
        r"Cannot coerce|Cannot infer common|type mismatch|Invalid comparison|"
        r"Cannot get result type|Invalid \w+ arithmetic|Invalid argument error|type_coercion|"
        r"Cannot access field",
        "InvalidDataType",
    ),
    (r"CSV parse error|CSV conversion error|Expected \d+ columns", "CSVParsingError"),
    (r"JSON parse error|JSON|straddling", "JSONParsingError"),
    (r"[Pp]arquet|magic bytes|Couldn't deserialize thrift", "ParquetParsingError"),
    (r"invalid UTF8|UTF-8|utf-8|Invalid UTF", "InvalidTextEncoding"),
    (r"not implemented|Unsupported|not supported", "UnsupportedSyntax"),
    (r"Placeholder", "UnsupportedSyntax"),
)
_COMPILED = tuple((re.compile(pattern), code) for pattern, code in PATTERNS)
#: DataFusion's prefixes that say nothing to a client.
_NOISE = re.compile(
    r"^(?:DataFusion error: |Error during planning: |Execution error: |Arrow error: |"
    r"External error: |Optimizer rule '[^']*' failed\s*caused by\s*|Python error: |"
    r"Arrow\w*: |Could not open \w+ input source '[^']*': |Invalid: )+"
)


#: A Python exception raised in a UDF, as DataFusion writes it.
_PYERR = re.compile(r"PyErr \{ type: <class '[\w.]+'>, value: \w+\((['\"])(.*?)\1\)", re.DOTALL)


def message_of(error: BaseException) -> str:
    """An error's text without DataFusion's layers of prefixes, on one line."""
    text = str(error).strip()
    raised = _PYERR.search(text)
    if raised:
        text = raised.group(2)
    text = re.sub(r"\s+", " ", text)
    while True:
        shorter = _NOISE.sub("", text)
        if shorter == text:
            break
        text = shorter
    return text[:1000] or type(error).__name__


def _reported(error: BaseException) -> bool:
    """An error DataFusion or pyarrow reports (not a bug of ours: those are internal)."""
    if isinstance(error, ArrowException):
        return True
    return type(error) in (Exception, ValueError, RuntimeError, OSError)


def classify(error: BaseException, control: QueryControl | None, planning: bool) -> BaseException:
    """The :class:`S3Error` (or :class:`QueryCancelled`) for ``error``."""
    if control is not None and control.stopped is not None:
        return control.stopped
    if isinstance(error, (S3Error, QueryCancelled)):
        return error
    text = message_of(error)
    if not _reported(error):
        return S3Error("InternalError", text)
    for pattern, code in _COMPILED:
        if pattern.search(text):
            return S3Error(code, text)
    return S3Error("InvalidRequest" if planning else "InternalError", text)
