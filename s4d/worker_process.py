"""One worker process of ``S4_WORKERS``: serve the inherited socket until told to stop.

Started by :class:`s4d.workers.WorkerPool` as ``python -m s4d.worker_process
--config-fd=4 --index=N --parent=PID``: it reads its configuration from the
pipe on file descriptor 4, opens the data directory, builds the same S3 site as
the main process (:func:`s4d.service.make_worker_service`) and accepts on file
descriptor 3; it may hold the background duties (:class:`s4d.service.DutyHolder`).

It stops on SIGTERM, when its standard input closes (the main process is
gone), or, as a second guard, when the kernel tells it its parent died
(``PR_SET_PDEATHSIG``, which sends SIGTERM): it stops accepting at once (its copy
of the listening socket closes), lets the requests in flight finish (within
``S4_SHUTDOWN_TIMEOUT``), closes the store and exits.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import protocol

from s4d.workers import CONFIG_FD, read_config

#: prctl(2) option: the signal this process gets when its parent dies
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM when the parent dies; stop now if it has already."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the closing standard input still tells
    if parent and os.getppid() != parent:
        # the parent died before the guard was set
        sys.exit(0)


class _ParentWatch(protocol.Protocol):
    """Standard input: when it closes, the main process is gone."""

    def __init__(self, stop: Callable[[str], None]) -> None:
        self.stop = stop

    def connectionLost(self, reason: Any = None) -> None:
        self.stop("the main process is gone")


def worker_main(argv: Sequence[str]) -> int:
    """Run one worker until it is told to stop; its exit status."""
    parser = argparse.ArgumentParser(prog="python -m s4d.worker_process")
    parser.add_argument("--config-fd", type=int, default=CONFIG_FD)
    parser.add_argument("--index", type=int, default=1)
    parser.add_argument("--parent", type=int, default=0)
    args = parser.parse_args(argv)
    die_with_parent(args.parent)

    from twisted.internet import reactor as global_reactor
    from twisted.internet.stdio import StandardIO
    from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

    from s4d.service import make_worker_service
    from s4d.util.memory import tune_gc, tune_malloc

    reactor: Any = global_reactor
    config = read_config(args.config_fd)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    log = Logger(namespace="s4d.worker")
    tune_malloc()
    root = make_worker_service(config, reactor, args.index)
    root.startService()  # type: ignore[no-untyped-call]
    reactor.callWhenRunning(tune_gc)
    stopping: list[str] = []

    def stop(why: str) -> None:
        if stopping:
            return
        stopping.append(why)
        log.info("Worker {index} stopping: {why}", index=args.index, why=why)
        stopped = root.stopService()  # type: ignore[no-untyped-call]
        stopped.addErrback(lambda f: log.failure("Stopping the worker failed", f))
        stopped.addBoth(lambda _: reactor.stop())

    StandardIO(_ParentWatch(stop))  # type: ignore[no-untyped-call]
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(stop, "SIGTERM"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the main process, which stops us
    reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
