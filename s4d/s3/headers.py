"""A request's headers as handlers and body sinks read them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence


class CallHeaders:
    """A request's headers, read-only, by lower-case name (values decoded as latin-1)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self._values = dict(values)

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, Sequence[bytes]]]) -> CallHeaders:
        """From twisted.web's ``getAllRawHeaders()``."""
        values: dict[str, list[str]] = {}
        for name, items in raw:
            values.setdefault(name.decode("latin-1").lower(), []).extend(
                v.decode("latin-1") for v in items
            )
        return cls(values)

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        found = self._values.get(name.lower())
        return found[0] if found else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def items(self) -> Iterator[tuple[str, str]]:
        """Every (lower-case name, value) pair, repeated headers one by one."""
        for name, values in self._values.items():
            for value in values:
                yield name, value
