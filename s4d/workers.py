"""Several server processes on one listening socket (``S4_WORKERS``).

Twisted runs Python on one core; with ``S4_WORKERS=N`` the main process opens
the listening socket, serves it itself, and starts N-1 worker processes that
adopt the same socket (file descriptor 3) and accept from it too. Every process
opens the data directory on its own: LMDB is safe across processes (write
transactions serialise on its lock), and each process appends to a segment of
its own (segments are claimed with ``flock``). Background jobs run only in the
main process. A worker exits when the main process goes away (its standard
input closes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from dataclasses import asdict
from typing import Any

from twisted.application import service
from twisted.internet import protocol
from twisted.logger import Logger

from s4d.config import Config

log = Logger()
INHERITED_FD = 3


def tls_factory(config: Config, factory: Any) -> Any:
    """Wrap ``factory`` in TLS when a certificate is configured."""
    if not (config.tls_cert and config.tls_key):
        return factory
    from twisted.internet.ssl import DefaultOpenSSLContextFactory
    from twisted.protocols.tls import TLSMemoryBIOFactory

    context = DefaultOpenSSLContextFactory(config.tls_key, config.tls_cert)
    return TLSMemoryBIOFactory(context, False, factory)


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for IPv6 literals, else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, index: int) -> None:
        self.index = index

    def processEnded(self, reason: Any) -> None:
        log.info("worker {index} ended: {reason}", index=self.index, reason=reason.value)


class WorkerPool(service.Service):
    """Listens on the configured port and shares the socket with worker processes."""

    def __init__(self, config: Config, factory: Any, reactor: Any) -> None:
        self.config = config
        self.factory = factory
        self.reactor = reactor
        self.port: Any = None
        self.processes: list[Any] = []

    def startService(self) -> None:
        """Bind, serve here, and start the other workers."""
        super().startService()
        family = family_of(self.config.host)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        sock.listen(1024)
        sock.setblocking(False)
        self.port = self.reactor.adoptStreamPort(
            sock.fileno(), family, tls_factory(self.config, self.factory)
        )
        payload = json.dumps(asdict(self.config))
        for index in range(1, self.config.workers):
            process = self.reactor.spawnProcess(
                _WorkerProcess(index),
                sys.executable,
                [sys.executable, "-m", "s4d.workers", payload, str(index)],
                env=os.environ.copy(),
                childFDs={0: "w", 1: 1, 2: 2, INHERITED_FD: sock.fileno()},
            )
            self.processes.append(process)
        sock.close()
        log.info("{n} worker processes share the port", n=self.config.workers)

    def stopService(self) -> Any:
        """Stop listening and stop the workers."""
        super().stopService()
        for process in self.processes:
            try:
                process.signalProcess("TERM")
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self.port is not None:
            return self.port.stopListening()
        return None


class _ParentWatch(protocol.Protocol):
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def connectionLost(self, reason: Any = None) -> None:
        if self.reactor.running:
            self.reactor.stop()


def worker_main(argv: list[str]) -> int:
    """Run one worker: ``python -m s4d.workers CONFIG_JSON INDEX``."""
    from twisted.internet import reactor
    from twisted.internet.stdio import StandardIO
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from s4d.service import StoreService, build_site
    from s4d.util.memory import tune_malloc

    config = Config(**json.loads(argv[0]))
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    tune_malloc()
    store_service = StoreService(config, reactor)
    engine = store_service.open()
    site = build_site(config, engine, reactor)
    reactor.adoptStreamPort(INHERITED_FD, family_of(config.host), tls_factory(config, site))
    os.close(INHERITED_FD)
    StandardIO(_ParentWatch(reactor))
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    reactor.addSystemEventTrigger("before", "shutdown", store_service.stopService)
    reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
