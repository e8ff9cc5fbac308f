"""Opening the listening port: say where s4d serves once it does, or why it cannot, plainly.

A port that cannot be opened (in use, no permission, no such address) is one
log line, ``cannot listen on 127.0.0.1:9000: address already in use``, and
twistd exits with status 1: the service raises :class:`CannotListen`, which
twistd lets through (after removing its pid file) and whose traceback
:func:`quiet_excepthook` leaves out, the message having been logged already.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from twisted.application import service
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()


class CannotListen(Exception):
    """The listening port could not be opened (already logged)."""


def reason_of(error: BaseException) -> str:
    """``"address already in use"`` for the OS error behind ``error``."""
    cause: BaseException = error
    if isinstance(error, CannotListenError) and isinstance(error.socketError, BaseException):
        cause = error.socketError
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[0].lower() + cause.strerror[1:]
    return str(cause) or type(cause).__name__


def cannot_listen(host: str, port: int, error: BaseException) -> CannotListen:
    """Log why ``host:port`` cannot be opened; the exception that ends the start."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    message = f"cannot listen on {where}: {reason_of(error)}"
    log.error("{message}", message=message)
    sys.excepthook = quiet_excepthook
    return CannotListen(message)


def quiet_excepthook(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    """:data:`sys.excepthook` that leaves :class:`CannotListen` out (it has been logged).

    twistd sends standard error to its log, so printing it would say it twice.
    """
    if isinstance(value, CannotListen):
        return
    sys.__excepthook__(kind, value, tb)


class ListeningService(service.Service):
    """Listens on a strports endpoint; calls ``on_listening`` only once that worked.

    :param description: the endpoint, e.g. ``tcp:9000:interface=127.0.0.1``
    :param host: the host named in an error message
    :param port: the port named in an error message
    """

    def __init__(
        self,
        reactor: Any,
        description: str,
        factory: Any,
        host: str,
        port: int,
        on_listening: Callable[[], None],
    ) -> None:
        self.reactor = reactor
        self.description = description
        self.factory = factory
        self.host = host
        self.port_number = port
        self.on_listening = on_listening
        self.port: Any = None

    def startService(self) -> None:
        """Listen (synchronously for TCP and TLS); raise :class:`CannotListen` if that fails."""
        super().startService()  # type: ignore[no-untyped-call]
        endpoint = endpoints.serverFromString(  # type: ignore[no-untyped-call]
            self.reactor, self.description
        )
        outcome: list[Any] = []
        endpoint.listen(self.factory).addBoth(outcome.append)
        if not outcome:
            raise RuntimeError(f"{self.description} did not listen synchronously")
        if isinstance(outcome[0], Failure):
            self.running = False
            error = outcome[0].value
            raise cannot_listen(self.host, self.port_number, error or RuntimeError("failed"))
        self.port = outcome[0]
        self.on_listening()

    def stopService(self) -> Any:
        """Stop listening."""
        super().stopService()  # type: ignore[no-untyped-call]
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None
