"""The store's event log (:class:`s4d.store.eventlog.EventLog`) written to twisted.logger.

``s4d.store`` must not import Twisted, so it logs through a protocol; the
server passes it a :class:`TwistedEventLog`, which hands every event to a
``twisted.logger.Logger`` and so reaches twistd's log (and any observer) with
its fields intact::

    from twisted.logger import Logger
    from s4d.util.eventlog import TwistedEventLog

    store = Store(config, events=TwistedEventLog(Logger(namespace="s4d.store")))
"""

from __future__ import annotations

from twisted.logger import Logger


class TwistedEventLog:
    """An :class:`~s4d.store.eventlog.EventLog` that emits to a twisted.logger ``Logger``.

    Format strings are already in twisted.logger's ``{name}`` style, so events
    pass through unchanged. Safe to call from worker threads, as twisted.logger is.

    :param logger: where events go (default: a ``Logger`` in namespace ``s4d.store``).
    """

    def __init__(self, logger: Logger | None = None) -> None:
        self.logger = logger if logger is not None else Logger(namespace="s4d.store")

    def info(self, fmt: str, **fields: object) -> None:
        """Emit an ``info`` event."""
        self.logger.info(fmt, **fields)

    def warn(self, fmt: str, **fields: object) -> None:
        """Emit a ``warn`` event."""
        self.logger.warn(fmt, **fields)

    def error(self, fmt: str, **fields: object) -> None:
        """Emit an ``error`` event."""
        self.logger.error(fmt, **fields)
