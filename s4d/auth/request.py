"""The neutral view of an HTTP request that signature verification needs.

The HTTP layer builds a :class:`SignedRequest` from what it received (see
:meth:`SignedRequest.from_wire`); the verifiers in :mod:`s4d.auth.sigv4` and
:mod:`s4d.auth.sigv2` read only this, never a Twisted request.

Text fields hold wire bytes decoded as UTF-8 with ``surrogateescape``, so that
encoding them back the same way gives the exact bytes the client sent, which is
what the client signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote_to_bytes


def wire_text(data: bytes) -> str:
    """Decode wire bytes losslessly (UTF-8 with ``surrogateescape``)."""
    return data.decode("utf-8", "surrogateescape")


def wire_bytes(text: str) -> bytes:
    """The inverse of :func:`wire_text`."""
    return text.encode("utf-8", "surrogateescape")


def parse_query(raw_query: bytes) -> list[tuple[str, str]]:
    """Split a raw query string into decoded ``(name, value)`` pairs in wire order.

    ``+`` decodes to a space, as in form encoding; blank values and parameters
    without ``=`` are kept (with an empty value); empty fields (``a&&b``) are
    skipped.
    """
    pairs: list[tuple[str, str]] = []
    if not raw_query:
        return pairs
    for part in raw_query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append(
            (
                wire_text(unquote_to_bytes(name.replace(b"+", b" "))),
                wire_text(unquote_to_bytes(value.replace(b"+", b" "))),
            )
        )
    return pairs


@dataclass(frozen=True)
class SignedRequest:
    """What signing needs to know about one HTTP request.

    :ivar method: the HTTP method, upper case.
    :ivar raw_path: the path exactly as on the wire (before percent-decoding),
        without the query.
    :ivar query: decoded query pairs in wire order, blank values kept.
    :ivar raw_query: the query exactly as on the wire, without the ``?``.
    :ivar headers: lower-case header names to their values, in order.
    """

    method: str
    raw_path: bytes
    query: list[tuple[str, str]] = field(default_factory=list)
    raw_query: bytes = b""
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or ``None`` if absent.

        Repeated headers are joined with ``,``.
        """
        values = self.headers.get(name.lower())
        if not values:
            return None
        return ",".join(values)

    def query_value(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (exact case), or ``None``."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    @classmethod
    def from_wire(
        cls,
        method: str | bytes,
        target: bytes,
        headers: Mapping[str, Iterable[str]]
        | Mapping[bytes, Iterable[bytes]]
        | Iterable[tuple[bytes | str, bytes | str]],
    ) -> SignedRequest:
        """Build a request from the request target and headers as received.

        :param method: the HTTP method.
        :param target: the request target (``/path?query``) as on the wire.
        :param headers: a mapping of names to lists of values, or an iterable
            of ``(name, value)`` pairs; ``bytes`` or ``str``.
        """
        if isinstance(method, bytes):
            method = method.decode("ascii", "replace")
        merged: dict[str, list[str]] = {}
        items: Iterable[tuple[bytes | str, object]]
        if isinstance(headers, Mapping):
            items = headers.items()
        else:
            items = headers
        for name, values in items:
            key = (wire_text(name) if isinstance(name, bytes) else name).lower()
            if isinstance(values, (bytes, str)):
                values = [values]
            for value in values:
                text = wire_text(value) if isinstance(value, bytes) else str(value)
                merged.setdefault(key, []).append(text)
        return cls._of(method, target, merged)

    @classmethod
    def from_raw(
        cls, method: str, target: bytes, headers: Mapping[bytes, Sequence[bytes]]
    ) -> SignedRequest:
        """:meth:`from_wire` for what twisted.web hands over (bytes names to lists of
        bytes values, the method already text), without its per-value type checks."""
        merged: dict[str, list[str]] = {}
        for name, values in headers.items():
            key = name.decode("utf-8", "surrogateescape").lower()
            texts = [value.decode("utf-8", "surrogateescape") for value in values]
            found = merged.get(key)
            if found is None:
                merged[key] = texts
            else:
                found.extend(texts)
        return cls._of(method, target, merged)

    @classmethod
    def _of(cls, method: str, target: bytes, headers: dict[str, list[str]]) -> SignedRequest:
        """The request of ``method`` on ``target`` (``/path?query``) with text headers."""
        raw_path, _, raw_query = target.partition(b"?")
        return cls(
            method=method.upper(),
            raw_path=raw_path,
            query=parse_query(raw_query),
            raw_query=raw_query,
            headers=headers,
        )


class CredentialSource(Protocol):
    """Where verifiers look up secrets."""

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret key of ``access_key_id``, or ``None`` if there is no such key."""
        ...
