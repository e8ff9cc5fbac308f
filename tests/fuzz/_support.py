"""Shared pieces of the fuzz suite: example budget, the one property, byte mutations.

Every parser fuzzed here has the same contract: for any input it returns a
result or raises :class:`~s4d.errors.S3Error`; any other exception is a bug
(the server would answer 500 or drop the connection). :func:`s3_only` states
that contract once.

The example counts are kept small so the whole suite runs in well under a
minute; ``S4D_FUZZ_EXAMPLES=5000`` (or any number) raises every test to at
least that many examples for a long run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from s4d.errors import ERROR_STATUS, S3Error

T = TypeVar("T")

#: The least number of examples every fuzz test runs (``S4D_FUZZ_EXAMPLES``; 0: each its own).
AT_LEAST = int(os.environ.get("S4D_FUZZ_EXAMPLES", "0") or 0)


def fuzz(examples: int) -> Any:
    """Hypothesis settings for a fuzz test of ``examples`` examples (or ``S4D_FUZZ_EXAMPLES``)."""
    return settings(
        max_examples=max(examples, AT_LEAST),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def s3_only(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | S3Error:
    """``call``'s result, or the S3Error it raised (with a code from the table).

    Any other exception propagates and fails the test.
    """
    try:
        return call(*args, **kwargs)
    except S3Error as e:
        assert e.code in ERROR_STATUS, f"unknown S3 error code {e.code!r}"
        return e


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply ``(kind, position, bytes)`` edits: 0 replace, 1 insert, 2 delete, 3 truncate."""
    out = bytearray(data)
    for kind, position, piece in edits:
        at = position % (len(out) + 1)
        if kind == 0 and out:
            out[at : at + len(piece)] = piece
        elif kind == 1:
            out[at:at] = piece
        elif kind == 2:
            del out[at : at + max(1, len(piece))]
        else:
            del out[at:]
    return bytes(out)


#: Bytes that matter to the parsers here: framing, separators, digits, odd characters.
INTERESTING = [
    b"\r\n", b"\n", b"\r", b"\x00", b";", b",", b"=", b":", b"/", b"%", b"%00", b"%ff", b"..",
    b"-", b"0", b"9", b"f", b"ffffffffffffffffff", b"99999999999999999999999", b"\xb2", b"\xff",
    b" ", b"\t", b"<", b">", b"&", b"<!DOCTYPE a [<!ENTITY e \"x\">]>", b"&e;", b"--", b'"',
    "\u0661".encode(), "\u00b2".encode(), b"chunk-signature=", b"x-amz-", b"${filename}",
]  # fmt: skip

edits = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 1 << 20),
        st.one_of(st.sampled_from(INTERESTING), st.binary(max_size=12)),
    ),
    max_size=6,
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (the network decides where pieces end)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


#: Text with the characters that break naive parsers (digits that ``int`` refuses included).
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789-=,;: \t/\u00b2\u00b3\u00b9\u0661\u0662", max_size=30),
    st.sampled_from(["", "9" * 5000, "-1", "1e3", " 5", "\u00b2", "0x10", "+1", "1_000"]),
)
