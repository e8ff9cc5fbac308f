"""A request's headers as handlers and body sinks read them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence


class CallHeaders:
    """A request's headers, read-only, by lower-case name (values decoded as latin-1)."""

    __slots__ = ("_raw",)

    def __init__(self, values: Mapping[str, Sequence[str]]) -> None:
        """``values``: header values by lower-case name."""
        self._raw: dict[str, Sequence[bytes | str]] = {
            name: list(items) for name, items in values.items()
        }

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, Sequence[bytes]]]) -> CallHeaders:
        """From twisted.web's ``getAllRawHeaders()`` (each name once, any case).

        Values stay bytes until read: most requests read only a few of them.
        """
        headers = cls.__new__(cls)
        headers._raw = {name.lower().decode("latin-1"): items for name, items in raw}
        return headers

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        found = self._raw.get(name) or self._raw.get(name.lower())
        return _text(found[0]) if found else None

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order."""
        found = self._raw.get(name) or self._raw.get(name.lower()) or ()
        return [_text(value) for value in found]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._raw

    def names(self) -> Iterator[str]:
        """Every header's lower-case name, once (values are not decoded)."""
        return iter(self._raw)

    def items(self) -> Iterator[tuple[str, str]]:
        """Every (lower-case name, value) pair, repeated headers one by one."""
        for name, values in self._raw.items():
            for value in values:
                yield name, _text(value)


def _text(value: bytes | str) -> str:
    """A header value as text: wire bytes are decoded as latin-1, as HTTP has them."""
    return value.decode("latin-1") if isinstance(value, bytes) else value
