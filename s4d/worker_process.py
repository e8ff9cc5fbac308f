"""One worker process of ``S4_WORKERS``: serve the inherited socket until the parent goes.

Started by :class:`s4d.workers.WorkerPool` as ``python -m s4d.worker_process
--config-fd=4 --index=N``: it reads its configuration from the pipe on file
descriptor 4, opens the data directory, builds the same S3 site as the main
process (:mod:`s4d.service`) and accepts on file descriptor 3. It stops on
SIGTERM or when its standard input (the parent) closes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from twisted.internet import protocol

from s4d.workers import CONFIG_FD, INHERITED_FD, family_of, read_config, tls_factory


class _ParentWatch(protocol.Protocol):
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def connectionLost(self, reason: Any = None) -> None:
        if self.reactor.running:
            self.reactor.stop()


def worker_main(argv: Sequence[str]) -> int:
    """Run one worker until it is told to stop; its exit status."""
    parser = argparse.ArgumentParser(prog="python -m s4d.worker_process")
    parser.add_argument("--config-fd", type=int, default=CONFIG_FD)
    parser.add_argument("--index", type=int, default=1)
    args = parser.parse_args(argv)

    from twisted.internet import reactor as global_reactor
    from twisted.internet.stdio import StandardIO
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from s4d.service import OpsTelemetry, StoreService, build_site
    from s4d.util.memory import tune_malloc

    reactor: Any = global_reactor
    config = read_config(args.config_fd)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    tune_malloc()
    store_service = StoreService(config, reactor)
    engine = store_service.open()
    telemetry = OpsTelemetry(config, engine, reactor)
    site = build_site(config, engine, reactor, telemetry, store_service.queries)
    telemetry.start()
    reactor.adoptStreamPort(INHERITED_FD, family_of(config.host), tls_factory(config, site))
    os.close(INHERITED_FD)
    StandardIO(_ParentWatch(reactor))  # type: ignore[no-untyped-call]
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    reactor.addSystemEventTrigger("before", "shutdown", telemetry.stop)
    reactor.addSystemEventTrigger("before", "shutdown", store_service.stopService)
    reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
