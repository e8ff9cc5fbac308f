"""Several server processes on one listening socket (``S4_WORKERS``): the parent's side.

Twisted runs Python on one core; with ``S4_WORKERS=N`` the main process opens
the listening socket, serves it itself, and starts N-1 worker processes
(:mod:`s4d.worker_process`) that adopt the same socket (file descriptor 3) and
accept from it too. A worker reads its configuration as JSON from file
descriptor 4, a pipe the main process writes and closes, so no setting (the
secret key least of all) appears on a command line, where ``ps`` would show it
to every user. Every process opens the data directory on its own: LMDB is safe
across processes (write transactions serialise on its lock), and each process
appends to a segment of its own (segments are claimed with ``flock``).
Background jobs run only in the main process. A worker exits when the main
process goes away (its standard input closes).

This module imports nothing of the serving stack; :mod:`s4d.worker_process`
builds that in the worker.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import protocol
from twisted.logger import Logger

from s4d import config as s4config
from s4d.config import Config
from s4d.listening import cannot_listen

log = Logger()
#: the listening socket, in a worker
INHERITED_FD = 3
#: the pipe a worker reads its configuration from
CONFIG_FD = 4


def tls_factory(config: Config, factory: Any) -> Any:
    """Wrap ``factory`` in TLS when a certificate is configured."""
    if not (config.tls_cert and config.tls_key):
        return factory
    from twisted.internet.ssl import DefaultOpenSSLContextFactory
    from twisted.protocols.tls import TLSMemoryBIOFactory

    context = DefaultOpenSSLContextFactory(  # type: ignore[no-untyped-call]
        config.tls_key, config.tls_cert
    )
    return TLSMemoryBIOFactory(context, False, factory)


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for IPv6 literals, else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def worker_command(index: int) -> list[str]:
    """The command line of worker ``index``: no configuration on it."""
    return [
        sys.executable, "-m", "s4d.worker_process",
        f"--config-fd={CONFIG_FD}", f"--index={index}",
    ]  # fmt: skip


def read_config(fd: int = CONFIG_FD) -> Config:
    """In a worker: the configuration the main process wrote to ``fd`` (read to its end)."""
    with os.fdopen(fd, "rb") as pipe:
        return Config.from_json(pipe.read())


class _WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, index: int) -> None:
        self.index = index

    def processEnded(self, reason: Any) -> None:
        log.info("worker {index} ended: {reason}", index=self.index, reason=reason.value)


class WorkerPool(service.Service):
    """Listens on the configured port and shares the socket with worker processes.

    :param on_listening: called once the port is open (before the workers start)
    """

    def __init__(
        self,
        config: Config,
        factory: Any,
        reactor: Any,
        on_listening: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.factory = factory
        self.reactor = reactor
        self.on_listening = on_listening
        self.port: Any = None
        self.processes: list[Any] = []

    def _bind(self) -> socket.socket:
        family = family_of(self.config.host)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.config.host, self.config.port))
            sock.listen(1024)
        except OSError as e:
            sock.close()
            raise cannot_listen(self.config.host, self.config.port, e) from None
        sock.setblocking(False)
        return sock

    def startService(self) -> None:
        """Bind, serve here, and start the other workers."""
        sock = self._bind()
        super().startService()  # type: ignore[no-untyped-call]
        self.port = self.reactor.adoptStreamPort(
            sock.fileno(), sock.family, tls_factory(self.config, self.factory)
        )
        self.on_listening()
        payload = self.config.to_json().encode()
        environment = s4config.child_environment()
        for index in range(1, self.config.workers):
            process = self.reactor.spawnProcess(
                _WorkerProcess(index),
                sys.executable,
                worker_command(index),
                env=environment,
                childFDs={0: "w", 1: 1, 2: 2, INHERITED_FD: sock.fileno(), CONFIG_FD: "w"},
            )
            process.writeToChild(CONFIG_FD, payload)
            process.closeChildFD(CONFIG_FD)
            self.processes.append(process)
        sock.close()
        log.info("{n} worker processes share the port", n=self.config.workers)

    def stopService(self) -> Any:
        """Stop listening and stop the workers."""
        super().stopService()  # type: ignore[no-untyped-call]
        for process in self.processes:
            try:
                process.signalProcess("TERM")
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self.port is not None:
            return self.port.stopListening()
        return None
