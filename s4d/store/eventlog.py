"""The event log the store writes to: a protocol, with a silent and a collecting one.

The store must not import Twisted, so it logs through :class:`EventLog`, whose
format strings use twisted.logger's ``{name}`` style with the fields passed as
keywords (``log.info("compacted {count} segments", count=3)``). The server
passes an adapter to ``twisted.logger.Logger`` (:class:`s4d.util.eventlog.TwistedEventLog`);
tests pass a :class:`ListEventLog` and read what was logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class EventLog(Protocol):
    """Where the store reports what it did and what went wrong."""

    def info(self, fmt: str, **fields: object) -> None:
        """Something worth knowing happened (a compaction pass, a scrub slice)."""

    def warn(self, fmt: str, **fields: object) -> None:
        """Something is wrong but was dealt with (a damaged chunk found and recorded)."""

    def error(self, fmt: str, **fields: object) -> None:
        """Something is wrong and needs attention."""


class NullEventLog:
    """An event log that drops every event."""

    def info(self, fmt: str, **fields: object) -> None:
        """Drop an event."""

    def warn(self, fmt: str, **fields: object) -> None:
        """Drop an event."""

    def error(self, fmt: str, **fields: object) -> None:
        """Drop an event."""


@dataclass(frozen=True)
class Event:
    """One logged event: its level, format string and fields."""

    level: str
    fmt: str
    fields: dict[str, object]

    def text(self) -> str:
        """The message with its fields filled in (``{name}`` placeholders)."""
        return self.fmt.format(**self.fields)


@dataclass
class ListEventLog:
    """An event log that keeps every event, in order (for tests)."""

    events: list[Event] = field(default_factory=list)

    def info(self, fmt: str, **fields: object) -> None:
        """Keep an ``info`` event."""
        self.events.append(Event("info", fmt, fields))

    def warn(self, fmt: str, **fields: object) -> None:
        """Keep a ``warn`` event."""
        self.events.append(Event("warn", fmt, fields))

    def error(self, fmt: str, **fields: object) -> None:
        """Keep an ``error`` event."""
        self.events.append(Event("error", fmt, fields))

    def texts(self, level: str | None = None) -> list[str]:
        """The messages logged (at ``level``, or all), fields filled in."""
        return [e.text() for e in self.events if level is None or e.level == level]


#: the shared silent event log
NULL_EVENT_LOG: EventLog = NullEventLog()
