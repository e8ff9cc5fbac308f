"""S3 Select's SQL dialect, rewritten into DataFusion's.

S3 Select writes ``SELECT s._1, s.name FROM S3Object s WHERE s.a.b[0] IS NOT
MISSING``; DataFusion knows no ``S3Object``, numbers array elements from 1,
has no ``MISSING`` and names no column ``_1`` unless one is called that. The
rewrite works on tokens, not on text, so a string literal or a quoted name is
never touched by mistake, and it happens in two steps:

1. :func:`parse` tokenizes the statement and finds its sources: ``S3Object``
   (with a JSON path such as ``S3Object[*].items``) or, for ``?sql``, a quoted
   glob (``FROM 'logs/*.csv'``), each with its alias. A query must be one
   ``SELECT`` (or ``WITH ... SELECT``) statement.
2. Once the sources' columns are known (read from the objects),
   :meth:`ParsedQuery.translate` writes DataFusion SQL: sources become the
   registered tables, names resolve to columns case-insensitively (a quoted
   name exactly), ``_N`` means the N-th column, ``[n]`` becomes ``[n+1]``,
   ``IS [NOT] MISSING`` becomes ``IS [NOT] NULL``, S3 Select's functions map
   to DataFusion's or to s4d's (:mod:`s4d.sql.functions`), backquoted Ion
   timestamps become timestamps, and, for S3 Select, every item of the select
   list gets the name AWS gives it (a path's last name, else ``_N``).

Anything beyond S3 Select that DataFusion understands (GROUP BY, ORDER BY,
JOIN, window functions, CTEs) passes through. Errors are :class:`S3Error`
with AWS's codes (``LexerInvalidChar``, ``ParseUnexpectedToken`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from s4d.errors import S3Error

# --- tokens -----------------------------------------------------------------------------

IDENT, QIDENT, STRING, NUMBER, ION, OP, SPACE = (
    "ident",
    "qident",
    "string",
    "number",
    "ion",
    "op",
    "space",
)
#: An identifier the translation decided is a keyword (a type or date part): never a column.
WORD = "word"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ion>`[^`]*`)
  | (?P<op><>|!=|<=|>=|\|\||::|[-+*/%(),.;\[\]=<>!:^&|~@?{}])
    """,
    re.VERBOSE | re.DOTALL,
)

#: Reserved words: never taken for a column name unless they follow ``alias.``.
KEYWORDS = frozenset(
    """ALL AND ANY AS ASC BETWEEN BOTH BY CASE CAST CROSS CURRENT DATE DESC DISTINCT ELSE END
    ESCAPE EXCEPT EXISTS EXTRACT FALSE FETCH FILTER FIRST FOLLOWING FOR FROM FULL GROUP HAVING
    ILIKE IN INNER INTERSECT INTERVAL INTO IS JOIN LAST LATERAL LEADING LEFT LIKE LIMIT MISSING
    NATURAL NOT NULL NULLS OFFSET ON OR ORDER OUTER OVER PARTITION PRECEDING RANGE RECURSIVE
    RIGHT ROW ROWS SELECT SIMILAR SOME THEN TIME TIMESTAMP TRAILING TRUE UNBOUNDED UNION UNNEST
    USING VALUES WHEN WHERE WINDOW WITH""".split()
)
#: Words that end a FROM item (after them comes no alias).
_CLAUSE_WORDS = frozenset(
    """WHERE GROUP ORDER LIMIT HAVING UNION EXCEPT INTERSECT JOIN INNER LEFT RIGHT FULL CROSS
    NATURAL ON USING WINDOW OFFSET FETCH QUALIFY LATERAL""".split()
)
_STATEMENT_STARTS = frozenset({"SELECT", "WITH"})


@dataclass
class Token:
    """One token; ``text`` is rewritten in place by the translation."""

    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        """The text in upper case (for keywords)."""
        return self.text.upper()

    def is_word(self, *words: str) -> bool:
        """An unquoted identifier that is one of ``words`` (any case)."""
        return self.kind == IDENT and self.text.upper() in words

    def is_op(self, *ops: str) -> bool:
        """An operator or punctuation that is one of ``ops``."""
        return self.kind == OP and self.text in ops

    @property
    def name(self) -> str:
        """An identifier's name (a quoted one without its quotes)."""
        if self.kind == QIDENT:
            return self.text[1:-1].replace('""', '"')
        return self.text


def tokenize(sql: str) -> list[Token]:
    """The tokens of ``sql``; ``LexerInvalidChar`` at the first character that starts none."""
    tokens: list[Token] = []
    at = 0
    while at < len(sql):
        found = _TOKEN.match(sql, at)
        if found is None or found.lastgroup is None:
            char = sql[at]
            if char in "'\"`":
                raise S3Error("LexerInvalidLiteral", f"Unterminated {char} at position {at}.")
            raise S3Error("LexerInvalidChar", f"Invalid character {char!r} at position {at}.")
        tokens.append(Token(found.lastgroup, found.group(), at))
        at = found.end()
    return tokens


def quote_name(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# --- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathStep:
    """One step of a JSON path: a member name, an index, or ``[*]`` (every element)."""

    name: str | None = None
    index: int | None = None

    @property
    def wildcard(self) -> bool:
        """``[*]``."""
        return self.name is None and self.index is None


@dataclass
class Source:
    """One thing a query reads: ``S3Object`` (with a JSON path) or a quoted glob.

    :ivar table: the DataFusion table it becomes (``s3object``, ``t0`` ...).
    :ivar alias: its alias as written (None: none).
    :ivar glob: the glob of a ``?sql`` source (None: ``S3Object``).
    :ivar path: the JSON path after ``S3Object``.
    """

    table: str
    alias: str | None
    glob: str | None = None
    path: tuple[PathStep, ...] = ()


@dataclass(frozen=True)
class Column:
    """A column a source offers: its exact name, and its type's nested field names."""

    name: str
    #: member names of a struct column, by their lower-case form (for nested paths)
    fields: dict[str, Column] = field(default_factory=dict)


def _significant(tokens: list[Token]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.kind != SPACE]


@dataclass
class ParsedQuery:
    """A tokenized statement and its sources, ready to translate once columns are known."""

    tokens: list[Token]
    sources: list[Source]
    #: token index -> (source index, token indexes the source spans) to rewrite
    spans: list[tuple[int, list[int]]]
    select_mode: bool

    def translate(
        self, columns: Sequence[Sequence[Column]], unknown: frozenset[int] = frozenset()
    ) -> Translated:
        """DataFusion SQL for the statement; ``columns[i]`` are source ``i``'s columns.

        Sources in ``unknown`` have no known columns (an empty object): any name
        is taken for one of theirs, and reported in :attr:`Translated.discovered`.
        """
        return _Translator(self, [list(c) for c in columns], unknown).run()


@dataclass(frozen=True)
class Translated:
    """The DataFusion statement and the output names given to the select list.

    :ivar discovered: for tables whose columns were not known (an empty
        object), the names the statement used, by table: they become the
        columns of an empty table.
    """

    sql: str
    names: tuple[str | None, ...] = ()
    discovered: dict[str, list[str]] = field(default_factory=dict)


def _path_after(tokens: list[Token], sig: list[int], k: int) -> tuple[list[PathStep], int]:
    """JSON path steps starting at significant position ``k``; the position after them."""
    steps: list[PathStep] = []
    while k < len(sig):
        t = tokens[sig[k]]
        if t.is_op("[") and k + 2 < len(sig) and tokens[sig[k + 2]].is_op("]"):
            inner = tokens[sig[k + 1]]
            if inner.is_op("*"):
                steps.append(PathStep())
            elif inner.kind == NUMBER and inner.text.isdigit():
                steps.append(PathStep(index=int(inner.text)))
            elif inner.kind == STRING:
                steps.append(PathStep(name=inner.text[1:-1].replace("''", "'")))
            else:
                raise S3Error("ParseInvalidPathComponent", "Invalid path component in FROM.")
            k += 3
        elif t.is_op(".") and k + 1 < len(sig) and tokens[sig[k + 1]].kind in (IDENT, QIDENT):
            steps.append(PathStep(name=tokens[sig[k + 1]].name))
            k += 2
        elif t.is_op(".") and k + 1 < len(sig) and tokens[sig[k + 1]].is_op("*"):
            steps.append(PathStep())
            k += 2
        else:
            break
    return steps, k


def parse(sql: str, select_mode: bool = True) -> ParsedQuery:
    """Tokenize ``sql`` and find its sources.

    :param select_mode: S3 Select (one ``S3Object``, JSON paths in FROM, AWS's
        output names); False for ``?sql`` (quoted globs in FROM, DataFusion's names).
    """
    tokens = tokenize(sql)
    sig = _significant(tokens)
    while sig and tokens[sig[-1]].is_op(";"):
        sig.pop()
    if not sig:
        raise S3Error("ParseUnexpectedToken", "The query is empty.")
    first = tokens[sig[0]]
    if not (first.kind == IDENT and first.upper in _STATEMENT_STARTS):
        if first.kind == IDENT and first.upper in {
            "CREATE", "DROP", "INSERT", "UPDATE", "DELETE", "COPY", "ALTER", "TRUNCATE",
            "MERGE", "SET", "EXPLAIN", "DESCRIBE", "SHOW", "PREPARE", "EXECUTE", "DEALLOCATE",
            "GRANT", "REVOKE", "ATTACH", "LOAD", "INSTALL", "PRAGMA", "CALL", "USE",
        }:  # fmt: skip
            raise S3Error(
                "UnsupportedSqlOperation", f"Only SELECT queries are allowed, not {first.upper}."
            )
        raise S3Error("ParseUnsupportedSelect", "A query starts with SELECT (or WITH).")
    if any(tokens[i].is_op(";") for i in sig):
        raise S3Error("UnsupportedSqlOperation", "One statement per query.")
    sources: list[Source] = []
    spans: list[tuple[int, list[int]]] = []
    k = 0
    while k < len(sig):
        t = tokens[sig[k]]
        if t.is_word("FROM", "JOIN") or (t.is_op(",") and _in_from_list(tokens, sig, k)):
            found = _source_at(tokens, sig, k + 1, sources, select_mode)
            if found is not None:
                source, used = found
                existing = _same_source(sources, source)
                index = existing if existing is not None else len(sources)
                if existing is None:
                    sources.append(source)
                elif source.alias is not None:
                    sources.append(source)
                    index = len(sources) - 1
                spans.append((index, [sig[j] for j in range(k + 1, used)]))
                k = used
                continue
        k += 1
    if select_mode and not sources:
        raise S3Error("ParseSelectMissingFrom", "A query reads FROM S3Object.")
    return ParsedQuery(tokens, sources, spans, select_mode)


def _same_source(sources: list[Source], source: Source) -> int | None:
    for i, known in enumerate(sources):
        if known.glob == source.glob and known.path == source.path and source.alias is None:
            return i
    return None


def _in_from_list(tokens: list[Token], sig: list[int], k: int) -> bool:
    """The comma at ``k`` separates FROM items (not select items or arguments)."""
    depth = 0
    for j in range(k - 1, -1, -1):
        t = tokens[sig[j]]
        if t.is_op(")"):
            depth += 1
        elif t.is_op("("):
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0 and t.kind == IDENT:
            upper = t.upper
            if upper == "FROM":
                return True
            if upper in ("SELECT", "WHERE", "GROUP", "ORDER", "HAVING", "BY", "ON", "LIMIT"):
                return False
    return False


def _source_at(
    tokens: list[Token], sig: list[int], k: int, sources: list[Source], select_mode: bool
) -> tuple[Source, int] | None:
    """The source starting at significant position ``k`` and the position after it."""
    if k >= len(sig):
        return None
    t = tokens[sig[k]]
    glob: str | None = None
    path: list[PathStep] = []
    if t.kind == IDENT and t.upper == "S3OBJECT":
        path, k = _path_after(tokens, sig, k + 1)
        if path and not select_mode:
            raise S3Error("InvalidRequest", "JSON paths after S3Object are for S3 Select.")
    elif t.kind == STRING and not select_mode:
        glob = t.text[1:-1].replace("''", "'")
        k += 1
    else:
        return None
    alias: str | None = None
    if k < len(sig):
        nxt = tokens[sig[k]]
        if nxt.is_word("AS") and k + 1 < len(sig) and tokens[sig[k + 1]].kind in (IDENT, QIDENT):
            alias, k = tokens[sig[k + 1]].name, k + 2
        elif nxt.kind == QIDENT or (
            nxt.kind == IDENT and nxt.upper not in KEYWORDS and nxt.upper not in _CLAUSE_WORDS
        ):
            alias, k = nxt.name, k + 1
    table = "s3object" if select_mode else f"t{len(sources)}"
    return Source(table, alias, glob, tuple(path)), k


# --- the translation ----------------------------------------------------------------------

#: S3 Select's type names in CAST -> DataFusion's (TIMESTAMP is handled apart).
CAST_TYPES = {
    "STRING": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "CHAR": "VARCHAR",
    "TEXT": "VARCHAR",
    "INT": "BIGINT",
    "INTEGER": "BIGINT",
    "BIGINT": "BIGINT",
    "SMALLINT": "BIGINT",
    "FLOAT": "DOUBLE",
    "DOUBLE": "DOUBLE",
    "REAL": "DOUBLE",
    "DECIMAL": "DECIMAL(38, 10)",
    "NUMERIC": "DECIMAL(38, 10)",
    "BOOL": "BOOLEAN",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
}
#: S3 Select's function names -> s4d's or DataFusion's (others pass through).
FUNCTIONS = {
    "UTCNOW": "now",
    "TO_STRING": "s3_to_string",
    "TO_TIMESTAMP": "s3_to_timestamp",
    "DATE_ADD": "s3_date_add",
    "DATE_DIFF": "s3_date_diff",
}
#: Functions whose first argument is a date part written as a bare word.
_DATE_PART_FUNCTIONS = frozenset({"DATE_ADD", "DATE_DIFF"})
DATE_PARTS = frozenset({"YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND"})
_POSITIONAL = re.compile(r"_([1-9][0-9]*)\Z")


class _Translator:
    """One translation: rewrites ``query.tokens`` in place and joins them."""

    def __init__(
        self, query: ParsedQuery, columns: list[list[Column]], unknown: frozenset[int]
    ) -> None:
        self.query = query
        self.tokens = [Token(t.kind, t.text, t.pos) for t in query.tokens]
        self.columns = columns
        self.unknown = unknown
        self.discovered: dict[str, list[str]] = {}
        #: alias (as written; unquoted ones by upper case) -> source index
        self.aliases: dict[str, int] = {}
        for i, source in enumerate(query.sources):
            if source.alias is not None:
                self.aliases[source.alias.upper()] = i
            elif query.select_mode:
                self.aliases["S3OBJECT"] = i
        self.sig = _significant(self.tokens)
        while self.sig and self.tokens[self.sig[-1]].is_op(";"):
            self.tokens[self.sig.pop()].text = ""

    # the steps

    def run(self) -> Translated:
        self._rewrite_sources()
        self._rewrite_like_escapes()
        self._rewrite_missing()
        self._rewrite_casts()
        self._rewrite_functions_and_names()
        names: tuple[str | None, ...] = ()
        if self.query.select_mode:
            names = self._name_outputs()
        sql = "".join(t.text for t in self.tokens).strip()
        return Translated(sql, names, self.discovered)

    def _rewrite_sources(self) -> None:
        for index, span in self.query.spans:
            source = self.query.sources[index]
            for i in span:
                self.tokens[i].text = ""
                self.tokens[i].kind = SPACE
            if not span:
                continue
            first = self.tokens[span[0]]
            alias = f" AS {quote_name(source.alias)}" if source.alias is not None else ""
            first.text = f" {source.table}{alias} "
        self.sig = _significant(self.tokens)

    def _rewrite_like_escapes(self) -> None:
        """``LIKE 'a!%' ESCAPE '!'`` -> ``LIKE 'a\\%' ESCAPE '\\'`` (DataFusion's only escape)."""
        sig, tokens = self.sig, self.tokens
        for k in range(len(sig) - 3):
            like, pattern, escape, char = (tokens[sig[k + j]] for j in range(4))
            if not (
                like.is_word("LIKE", "ILIKE")
                and pattern.kind == STRING
                and escape.is_word("ESCAPE")
                and char.kind == STRING
            ):
                continue
            mark = char.text[1:-1].replace("''", "'")
            if len(mark) != 1:
                raise S3Error("LikeInvalidInputs", "ESCAPE takes one character.")
            if mark == "\\":
                continue
            text = pattern.text[1:-1].replace("''", "'")
            out: list[str] = []
            at = 0
            while at < len(text):
                c = text[at]
                if c == mark and at + 1 < len(text):
                    nxt = text[at + 1]
                    out.append("\\" + nxt if nxt in "%_" else nxt.replace("\\", "\\\\"))
                    at += 2
                    continue
                out.append("\\\\" if c == "\\" else c)
                at += 1
            pattern.text = quote_string("".join(out))
            char.text = "'\\'"

    def _rewrite_missing(self) -> None:
        sig, tokens = self.sig, self.tokens
        for k, i in enumerate(sig):
            if tokens[i].is_word("MISSING") and k > 0:
                before = tokens[sig[k - 1]]
                if before.is_word("IS") or (
                    before.is_word("NOT") and k > 1 and tokens[sig[k - 2]].is_word("IS")
                ):
                    tokens[i].text = "NULL"
                    tokens[i].kind = IDENT

    def _matching(self, k: int) -> int:
        """The significant position of the ``)`` closing the ``(`` at ``k``."""
        depth = 0
        for j in range(k, len(self.sig)):
            t = self.tokens[self.sig[j]]
            if t.is_op("(", "["):
                depth += 1
            elif t.is_op(")", "]"):
                depth -= 1
                if depth == 0:
                    return j
        raise S3Error("ParseExpectedRightParenBuiltinFunctionCall", "Unbalanced parentheses.")

    def _rewrite_casts(self) -> None:
        sig, tokens = self.sig, self.tokens
        for k, i in enumerate(sig):
            if not (tokens[i].is_word("CAST") and k + 1 < len(sig)):
                continue
            if not tokens[sig[k + 1]].is_op("("):
                raise S3Error("ParseExpectedLeftParenAfterCast", "CAST is followed by (.")
            close = self._matching(k + 1)
            as_at = self._top_level_as(k + 2, close)
            if as_at is None or as_at + 1 >= close:
                raise S3Error("ParseCastArity", "CAST takes (expression AS type).")
            type_token = tokens[sig[as_at + 1]]
            type_name = type_token.upper
            type_token.kind = WORD
            if type_name == "TIMESTAMP" and as_at + 2 == close:
                tokens[i].text = "s3_to_timestamp(CAST"
                type_token.text = "VARCHAR)"
            elif type_name in CAST_TYPES:
                has_params = as_at + 2 < close and tokens[sig[as_at + 2]].is_op("(")
                if not (has_params and type_name in ("DECIMAL", "NUMERIC")):
                    type_token.text = CAST_TYPES[type_name]
            else:
                raise S3Error("InvalidCast", f"CAST to {type_token.text} is not supported.")

    def _top_level_as(self, start: int, stop: int) -> int | None:
        depth = 0
        for j in range(start, stop):
            t = self.tokens[self.sig[j]]
            if t.is_op("(", "["):
                depth += 1
            elif t.is_op(")", "]"):
                depth -= 1
            elif depth == 0 and t.is_word("AS"):
                return j
        return None

    def _rewrite_functions_and_names(self) -> None:
        sig, tokens = self.sig, self.tokens
        k = 0
        while k < len(sig):
            t = tokens[sig[k]]
            nxt = tokens[sig[k + 1]] if k + 1 < len(sig) else None
            prev = tokens[sig[k - 1]] if k > 0 else None
            if t.kind == ION:
                t.text = f"s3_to_timestamp({quote_string(t.text[1:-1])})"
                t.kind = IDENT
                k += 1
                continue
            if t.kind == IDENT and nxt is not None and nxt.is_op("("):
                self._rewrite_call(k)
                k += 1
                continue
            if t.kind == IDENT and prev is not None and prev.kind == STRING and k > 1:
                if tokens[sig[k - 2]].is_word("INTERVAL"):
                    t.kind = WORD  # INTERVAL '1' DAY: a unit, not a column nor an alias
                    k += 1
                    continue
            if t.kind in (IDENT, QIDENT) and not (
                prev is not None and (prev.is_op(".") or prev.is_word("AS"))
            ):
                k = self._rewrite_chain(k)
                continue
            k += 1

    def _rewrite_call(self, k: int) -> None:
        sig, tokens = self.sig, self.tokens
        t = tokens[sig[k]]
        upper = t.upper
        if upper in _DATE_PART_FUNCTIONS and k + 2 < len(sig):
            part = tokens[sig[k + 2]]
            if part.kind != IDENT or part.upper not in DATE_PARTS:
                raise S3Error(
                    "ParseExpectedDatePart", f"{upper} takes a date part ({', '.join(DATE_PARTS)})."
                )
            part.text = quote_string(part.upper.lower())
            part.kind = STRING
        if upper == "EXTRACT" and k + 2 < len(sig) and tokens[sig[k + 2]].kind == IDENT:
            tokens[sig[k + 2]].kind = WORD
        if upper in FUNCTIONS:
            t.text = FUNCTIONS[upper]

    def _chain_end(self, k: int) -> int:
        """The significant position after the path that starts at ``k``."""
        sig, tokens = self.sig, self.tokens
        j = k + 1
        while j < len(sig):
            t = tokens[sig[j]]
            if t.is_op(".") and j + 1 < len(sig) and tokens[sig[j + 1]].kind in (IDENT, QIDENT):
                j += 2
            elif t.is_op("[") and j + 2 < len(sig) and tokens[sig[j + 2]].is_op("]"):
                j += 3
            else:
                break
        return j

    def _rewrite_chain(self, k: int) -> int:
        """Resolve the path starting at ``k`` (alias, column, members, indexes)."""
        sig, tokens = self.sig, self.tokens
        end = self._chain_end(k)
        head = tokens[sig[k]]
        parts = [sig[j] for j in range(k, end)]
        source: int | None = None
        column_at = 0
        key = head.upper if head.kind == IDENT else head.name.upper()
        if key in self.aliases and (
            head.kind == QIDENT or key not in KEYWORDS or key == "S3OBJECT"
        ):
            alias = self.query.sources[self.aliases[key]].alias
            source = self.aliases[key]
            head.text = quote_name(alias) if alias is not None else source_table(self, source)
            if len(parts) == 1 or not tokens[parts[1]].is_op("."):
                return end
            column_at = 2
        elif head.kind == IDENT and head.upper in KEYWORDS:
            return k + 1
        if column_at >= len(parts):
            return end
        column_token = tokens[parts[column_at]]
        column = self._resolve_column(column_token, source)
        if column is None and source is None and column_at == 0 and len(parts) > 2:
            # qualifier.name where the qualifier is a CTE or subquery: a column passed through
            passed = self._any_column(tokens[parts[2]])
            if passed is not None and tokens[parts[1]].is_op("."):
                tokens[parts[2]].text = quote_name(passed.name)
                tokens[parts[2]].kind = QIDENT
            return end
        if column is None:
            if source is not None:
                raise S3Error(
                    "EvaluatorBindingDoesNotExist",
                    f"{column_token.name!r} is not a column of {self._describe(source)}.",
                )
            return end if len(parts) > 1 and tokens[parts[1]].is_op(".") else k + 1
        column_token.text = quote_name(column.name)
        column_token.kind = QIDENT
        self._rewrite_members(parts[column_at + 1 :], column)
        return end

    def _describe(self, source: int) -> str:
        names = [c.name for c in self.columns[source]]
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        return f"the object (columns: {shown or 'none'})"

    def _resolve_column(self, token: Token, source: int | None) -> Column | None:
        candidates = [source] if source is not None else list(range(len(self.columns)))
        name = token.name
        if len(candidates) == 1 and candidates[0] in self.unknown:
            if token.kind == IDENT and token.upper in KEYWORDS:
                return None
            table = self.query.sources[candidates[0]].table
            known = self.discovered.setdefault(table, [])
            if name not in known:
                known.append(name)
            return Column(name)
        found: list[Column] = []
        for s in candidates:
            columns = self.columns[s]
            exact = [c for c in columns if c.name == name]
            if exact:
                found.append(exact[0])
                continue
            if token.kind == IDENT:
                folded = [c for c in columns if c.name.upper() == name.upper()]
                if len(folded) == 1:
                    found.append(folded[0])
                    continue
            positional = _POSITIONAL.match(name)
            if positional and source is not None:
                index = int(positional.group(1))
                if index > len(columns):
                    raise S3Error(
                        "InvalidColumnIndex",
                        f"{name} names column {index}; the object has {len(columns)}.",
                    )
                found.append(columns[index - 1])
            elif positional and len(candidates) == 1 and int(positional.group(1)) <= len(columns):
                found.append(columns[int(positional.group(1)) - 1])
        if len(found) == 1:
            return found[0]
        return None

    def _any_column(self, token: Token) -> Column | None:
        """The one column of any source that ``token`` names (case-insensitively if unquoted)."""
        if token.kind not in (IDENT, QIDENT):
            return None
        every = {c.name: c for columns in self.columns for c in columns}
        if token.name in every:
            return every[token.name]
        if token.kind == QIDENT:
            return None
        folded = [c for c in every.values() if c.name.upper() == token.name.upper()]
        return folded[0] if len(folded) == 1 else None

    def _rewrite_members(self, rest: list[int], column: Column | None) -> None:
        tokens = self.tokens
        j = 0
        current = column
        while j < len(rest):
            t = tokens[rest[j]]
            if t.is_op("."):
                member = tokens[rest[j + 1]]
                name = member.name
                if current is not None and current.fields:
                    match = current.fields.get(name.upper()) if member.kind == IDENT else None
                    exact = [c for c in current.fields.values() if c.name == name]
                    chosen = exact[0] if exact else match
                    name = chosen.name if chosen is not None else name
                    current = chosen
                else:
                    current = None
                member.text = quote_name(name)
                member.kind = QIDENT
                j += 2
            else:  # [ x ]
                inner = tokens[rest[j + 1]]
                if inner.is_op("*"):
                    raise S3Error(
                        "ParseInvalidPathComponent", "[*] is only allowed in the FROM clause."
                    )
                if inner.kind == NUMBER and inner.text.isdigit():
                    inner.text = str(int(inner.text) + 1)
                current = None
                j += 3

    def _name_outputs(self) -> tuple[str | None, ...]:
        """Give each item of the outer select list AWS's name; the names given."""
        sig, tokens = self.sig, self.tokens
        start = self._outer_select()
        if start is None:
            return ()
        k = start + 1
        if k < len(sig) and tokens[sig[k]].is_word("DISTINCT", "ALL"):
            k += 1
        items: list[list[int]] = [[]]
        depth = 0
        while k < len(sig):
            t = tokens[sig[k]]
            if t.is_op("(", "["):
                depth += 1
            elif t.is_op(")", "]"):
                depth -= 1
                if depth < 0:
                    break
            elif depth == 0 and t.is_op(","):
                items.append([])
                k += 1
                continue
            elif (
                depth == 0
                and t.kind == IDENT
                and t.upper in ("FROM", "UNION", "EXCEPT", "INTERSECT", "LIMIT", "ORDER")
            ):
                break
            items[-1].append(k)
            k += 1
        names: list[str | None] = []
        used: set[str] = set()
        for position, item in enumerate(items, start=1):
            if not item:
                raise S3Error("ParseEmptySelect", "An item of the select list is empty.")
            name = self._item_name(item, position)
            if name is None:
                names.append(None)
                continue
            if name.upper() in used:
                name = f"_{position}"
            used.add(name.upper())
            names.append(name)
            if not self._has_alias(item):
                last = tokens[sig[item[-1]]]
                last.text = f"{last.text} AS {quote_name(name)}"
        return tuple(names)

    def _outer_select(self) -> int | None:
        sig, tokens = self.sig, self.tokens
        depth = 0
        for k, i in enumerate(sig):
            t = tokens[i]
            if t.is_op("("):
                depth += 1
            elif t.is_op(")"):
                depth -= 1
            elif depth == 0 and t.is_word("SELECT"):
                return k
        return None

    def _has_alias(self, item: list[int]) -> bool:
        tokens, sig = self.tokens, self.sig
        if len(item) < 2:
            return False
        last, before = tokens[sig[item[-1]]], tokens[sig[item[-2]]]
        if before.is_word("AS"):
            return True
        return (last.kind == QIDENT or (last.kind == IDENT and last.upper not in KEYWORDS)) and (
            before.kind in (IDENT, QIDENT, NUMBER, STRING) or before.is_op(")", "]")
        )

    def _item_name(self, item: list[int], position: int) -> str | None:
        """The name AWS gives a select item; None for ``*`` (which keeps the columns')."""
        tokens, sig = self.tokens, self.sig
        texts = [tokens[sig[k]] for k in item]
        if texts[-1].is_op("*"):
            return None
        if self._has_alias(item):
            return texts[-1].name
        # a plain path: alias.column.member ... (no index, no call, no operator)
        names = [t for t in texts if t.kind in (IDENT, QIDENT)]
        dots = [t for t in texts if t.is_op(".")]
        if len(names) == len(dots) + 1 and len(names) + len(dots) == len(texts):
            if names[-1].kind == QIDENT or names[-1].upper not in KEYWORDS:
                return names[-1].name
        return f"_{position}"


def source_table(translator: _Translator, source: int) -> str:
    """The table name an alias-less source is referred to by."""
    return translator.query.sources[source].table
