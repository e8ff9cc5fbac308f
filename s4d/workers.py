"""Several server processes on one listening socket (``S4_WORKERS``): the supervisor's side.

Twisted runs Python on one core; with ``S4_WORKERS=N`` (by default one process
per core) the main process opens the listening socket, serves it itself, and
starts N-1 worker processes (:mod:`s4d.worker_process`) that adopt the same
socket (file descriptor 3) and accept from it too.

*One socket, one accept queue.* Every process accepts from the one socket the
main process bound, rather than each binding its own with ``SO_REUSEPORT``: a
connection waits in the one queue until some process is free to take it, a
worker that dies or restarts takes no queued connection with it (a
``SO_REUSEPORT`` socket that closes resets the connections waiting in its own
queue), and the port belongs to the main process for as long as it lives.
Each process accepts one connection per wake-up (:func:`accept_one_at_a_time`),
so a burst of new connections is shared out instead of swallowed by whichever
process woke first; a busy process does not wake at all, so idle ones take
the new connections.

*Configuration* reaches a worker as JSON on file descriptor 4, a pipe the main
process writes and closes, also when it restarts a worker: no setting (the
secret key least of all) appears on a command line or in an environment, where
``ps`` would show it.

*Supervision.* A worker that dies is started again, at once the first time and
after a growing pause (up to :data:`MAX_RESTART_DELAY`) if it keeps dying
young, so a crash loop does not spin; the listening socket stays open and the
other processes keep serving meanwhile.

*Shutdown.* On SIGTERM the main process stops accepting, sends SIGTERM to the
workers (which stop accepting, finish what is in flight and exit), finishes its
own requests, and waits for the workers up to ``S4_SHUTDOWN_TIMEOUT``, after
which it kills those left. A worker stops the same way when its standard input
closes (the main process is gone, however it died) and, as a second guard, the
kernel sends it SIGTERM when its parent dies (``PR_SET_PDEATHSIG``); either way
it closes its copy of the listening socket at once, so the port is free again
as soon as the main process is gone.

*Background duties* (compaction, scrubbing, lifecycle, multipart expiry) run
in whichever process holds the duty lock (:mod:`s4d.util.duties`): in the main
process when it is the only one, else in a worker, and when that worker dies
another takes them over within a second.

Every process opens the data directory on its own: LMDB is safe across
processes (write transactions serialise on its lock), and each process appends
to a segment of its own (segments are claimed with ``flock``). This module
imports nothing of the serving stack; :mod:`s4d.worker_process` builds that in
the worker.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import protocol
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from s4d import config as s4config
from s4d.config import Config
from s4d.listening import cannot_listen
from s4d.util.connboard import ConnectionBoard, board_path

log = Logger()
#: the listening socket, in a worker
INHERITED_FD = 3
#: the pipe a worker reads its configuration from
CONFIG_FD = 4
#: a worker that dies within this many seconds of its start died young (a crash loop)
YOUNG_SECS = 10.0
#: the pause before restarting a worker that keeps dying young grows up to this (seconds)
MAX_RESTART_DELAY = 30.0
#: a process holding more connections than the least loaded one leaves the next to it: it
#: stops accepting for this many seconds, at most BALANCE_PAUSES times in a row
BALANCE_PAUSE = 0.002
BALANCE_PAUSES = 10
#: how often a process publishes its open connections on the board besides when it accepts
BOARD_REFRESH = 0.5
#: how often a draining process looks whether its connections have finished (seconds)
DRAIN_POLL = 0.05


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
        f"--config-fd={CONFIG_FD}", f"--index={index}", f"--parent={os.getpid()}",
    ]  # fmt: skip


def read_config(fd: int = CONFIG_FD) -> Config:
    """In a worker: the configuration the main process wrote to ``fd`` (read to its end)."""
    with os.fdopen(fd, "rb") as pipe:
        return Config.from_json(pipe.read())


def accept_one_at_a_time(
    port: Any, clock: Any, board: ConnectionBoard | None = None, connections: Any = None
) -> Any:
    """Make a listening ``tcp.Port`` share new connections with the other processes; the port.

    twisted.web accepts up to a hundred connections in a row (more under load)
    each time the socket is readable, so with several processes on one socket
    the first to wake would take a whole burst of connections, and keep-alive
    clients would pile on it. This port takes one connection per wake-up, and
    with a ``board`` (:class:`s4d.util.connboard.ConnectionBoard`) it first
    looks whether it already holds more connections (``connections()``) than
    the least loaded process: then it stops reading for :data:`BALANCE_PAUSE`
    seconds, leaving the connection to the others, at most
    :data:`BALANCE_PAUSES` times in a row (so a connection never waits long
    when the least loaded process is busy).
    """
    read = port.doRead
    paused = [0]

    def resume() -> None:
        if port.connected and not port.disconnecting:
            port.startReading()

    def do_read() -> Any:
        if board is not None and paused[0] < BALANCE_PAUSES and board.should_wait(connections()):
            paused[0] += 1
            port.stopReading()
            clock.callLater(BALANCE_PAUSE, resume)
            return None
        paused[0] = 0
        port.numberAccepts = 1
        result = read()
        if board is not None:
            board.set(connections())
        return result

    port.doRead = do_read
    return port


def drain(site: Any, clock: Any, timeout: float) -> Deferred[None]:
    """Let ``site``'s connections finish their requests, then close them; fires when done.

    A connection between requests is closed at once; one in the middle of a
    request is closed once that request is answered, and that answer says
    ``Connection: close`` (a channel's ``close_after_response()``, where it has
    one: :meth:`s4d.s3.request.S3Channel.close_after_response`), so the client
    does not send its next request down a connection about to close. Whatever
    is still open after ``timeout`` seconds is aborted.
    """
    done: Deferred[None] = Deferred()
    deadline = clock.seconds() + max(0.0, timeout)

    def look() -> None:
        channels = [c for c in list(getattr(site, "channels", ())) if c.transport is not None]
        if not channels:
            done.callback(None)
            return
        late = clock.seconds() >= deadline
        for channel in channels:
            if late:
                channel.transport.abortConnection()
                continue
            if not getattr(channel, "_drain_told", False):
                channel._drain_told = True
                close_after_response = getattr(channel, "close_after_response", None)
                if close_after_response is not None:
                    close_after_response()
            if not channel.requests and not getattr(channel, "_draining", False):
                channel._draining = True
                channel.transport.loseConnection()
        if late:
            log.warn(
                "Shutdown: {n} connections still busy after {t} s, aborted", n=len(channels),
                t=timeout,
            )  # fmt: skip
            done.callback(None)
            return
        clock.callLater(DRAIN_POLL, look)

    look()
    return done


class SharedPort:
    """This process's side of the shared socket: the port, the board, its refresher.

    :param index: this process's slot on the board (the main process's is 0)
    """

    def __init__(self, reactor: Any, fd: int, config: Config, factory: Any, index: int) -> None:
        self.board: ConnectionBoard | None = None
        if config.workers > 1:
            self.board = ConnectionBoard(board_path(config.data_dir), index, config.workers)

        def connections() -> int:
            return len(getattr(factory, "channels", ()))

        self.port = accept_one_at_a_time(
            reactor.adoptStreamPort(fd, family_of(config.host), tls_factory(config, factory)),
            reactor,
            self.board,
            connections,
        )
        self.refresher: LoopingCall | None = None
        if self.board is not None:
            board = self.board
            self.refresher = LoopingCall(lambda: board.set(connections()))
            self.refresher.clock = reactor
            self.refresher.start(BOARD_REFRESH, now=True)

    def close(self) -> Deferred[None]:
        """Stop accepting; fires once the socket is closed."""
        if self.refresher is not None and self.refresher.running:
            self.refresher.stop()
        if self.board is not None:
            self.board.close()
            self.board = None
        return maybeDeferred(self.port.stopListening)


class _WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, pool: WorkerPool, index: int, started: float) -> None:
        self.pool = pool
        self.index = index
        self.started = started
        self.ended: Deferred[None] = Deferred()
        self.process: Any = None

    def processEnded(self, reason: Any) -> None:
        self.pool._ended(self, reason.value)
        self.ended.callback(None)


class WorkerPool(service.Service):
    """Listens on the configured port, serves it here, and keeps N-1 workers serving it too.

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
        self.socket: socket.socket | None = None
        #: the running worker processes by index
        self.workers: dict[int, _WorkerProcess] = {}
        #: workers started in all, restarts included
        self.started = 0
        self._young_deaths: dict[int, int] = {}
        self._restarts: dict[int, Any] = {}
        self._stopping = False

    def live(self) -> int:
        """How many worker processes run now."""
        return len(self.workers)

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
        self.socket = sock  # kept open: restarted workers inherit it too
        if self.config.workers > 1:
            ConnectionBoard.reset(board_path(self.config.data_dir))
        self.port = SharedPort(self.reactor, sock.fileno(), self.config, self.factory, 0)
        self.on_listening()
        for index in range(1, self.config.workers):
            self._spawn(index)
        log.info("{n} processes share the port", n=self.config.workers)

    def _spawn(self, index: int) -> None:
        self._restarts.pop(index, None)
        if self._stopping or self.socket is None:
            return
        watcher = _WorkerProcess(self, index, self.reactor.seconds())
        process = self.reactor.spawnProcess(
            watcher,
            sys.executable,
            worker_command(index),
            env=s4config.child_environment(),
            childFDs={0: "w", 1: 1, 2: 2, INHERITED_FD: self.socket.fileno(), CONFIG_FD: "w"},
        )
        process.writeToChild(CONFIG_FD, self.config.to_json().encode())
        process.closeChildFD(CONFIG_FD)
        watcher.process = process
        self.workers[index] = watcher
        self.started += 1
        log.info("Worker {index} started (pid {pid})", index=index, pid=process.pid)

    def _ended(self, watcher: _WorkerProcess, reason: Any) -> None:
        if self.workers.get(watcher.index) is watcher:
            del self.workers[watcher.index]
            if self.port is not None and self.port.board is not None:
                self.port.board.clear(watcher.index)
        if self._stopping:
            log.info("Worker {index} stopped: {reason}", index=watcher.index, reason=reason)
            return
        lived = self.reactor.seconds() - watcher.started
        young = self._young_deaths.get(watcher.index, 0) + 1 if lived < YOUNG_SECS else 0
        self._young_deaths[watcher.index] = young
        delay = 0.0 if young <= 1 else min(MAX_RESTART_DELAY, 0.5 * 2 ** (young - 2))
        log.warn(
            "Worker {index} ended after {lived:.1f} s ({reason}); starting it again in {delay} s",
            index=watcher.index, lived=lived, reason=reason, delay=delay,
        )  # fmt: skip
        self._restarts[watcher.index] = self.reactor.callLater(delay, self._spawn, watcher.index)

    def stopService(self) -> Deferred[None]:
        """Stop accepting, tell the workers to finish, and wait for them (within the bound)."""
        super().stopService()  # type: ignore[no-untyped-call]
        self._stopping = True
        for call in self._restarts.values():
            if call.active():
                call.cancel()
        self._restarts.clear()
        port, self.port = self.port, None
        stopped = port.close() if port is not None else succeed(None)
        sock, self.socket = self.socket, None
        if sock is not None:
            sock.close()
        watchers = list(self.workers.values())
        for watcher in watchers:
            try:
                watcher.process.signalProcess("TERM")
            except Exception:  # noqa: BLE001 - already gone
                pass
        done: Deferred[None] = Deferred()
        pending = [w.ended for w in watchers]
        timer = self.reactor.callLater(
            max(0.0, self.config.shutdown_timeout) + 1.0, self._kill_left, watchers
        )

        def all_ended(_: object) -> None:
            if timer.active():
                timer.cancel()
            done.callback(None)

        gatherResults([stopped, *pending]).addBoth(all_ended)
        return done

    def _kill_left(self, watchers: list[_WorkerProcess]) -> None:
        for watcher in watchers:
            if not watcher.ended.called:
                log.warn("Worker {index} did not stop in time: killed", index=watcher.index)
                try:
                    watcher.process.signalProcess("KILL")
                except Exception:  # noqa: BLE001 - already gone
                    pass


class AdoptedPort(service.Service):
    """In a worker: accept on the listening socket inherited as ``fd`` (closed once adopted)."""

    def __init__(
        self, config: Config, factory: Any, reactor: Any, index: int, fd: int = INHERITED_FD
    ) -> None:
        self.config = config
        self.index = index
        self.factory = factory
        self.reactor = reactor
        self.fd = fd
        self.port: Any = None

    def startService(self) -> None:
        """Adopt the socket."""
        super().startService()  # type: ignore[no-untyped-call]
        self.port = SharedPort(self.reactor, self.fd, self.config, self.factory, self.index)
        os.close(self.fd)

    def stopService(self) -> Any:
        """Stop accepting (this process's copy of the socket closes)."""
        super().stopService()  # type: ignore[no-untyped-call]
        port, self.port = self.port, None
        return port.close() if port is not None else None
