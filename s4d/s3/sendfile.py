"""Sending a chunk's bytes from its segment file to a plain-TCP client (``sendfile``).

A large GET over plain HTTP then never brings the bytes into Python: the kernel
copies them from the page cache to the socket. The chunk's payload is checked
first (mapped, not copied: :meth:`ObjectsFacade.open_chunk`), so a damaged chunk
is still never sent. The socket is written directly, on a descriptor of our own
(a ``dup``, so that a connection closed meanwhile can never have its number
reused under us), once Twisted's own buffer (the headers) is empty; a full
socket is waited for in the reactor like any other writer, and a client that
stops reading for the idle timeout is dropped as one reading through Twisted is.
Only where TLS is off, the response is not chunk-framed, and the transport is
Twisted's TCP connection (:func:`file_sender`); everything else uses writes.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

#: A chunk smaller than this is read and written as usual (one trip costs less).
SENDFILE_MIN = 256 << 10
#: Most bytes one ``sendfile`` call is asked for (the reactor gets a turn between calls).
SENDFILE_STEP = 4 << 20
#: How long a client may leave its socket full when no idle timeout is configured.
DEFAULT_STALL = 120.0
#: Reactor turns to wait at once for Twisted's buffer to drain ...
FLUSH_TURNS = 1000
#: ... then seconds between looks, until the client has been stalled too long.
FLUSH_POLL = 0.005


def file_sender(writer: Any) -> FileSender | None:
    """A sender for ``writer`` (a twisted.web request) if its body may go by sendfile."""
    if not hasattr(os, "sendfile"):
        return None
    transport = getattr(writer, "transport", None)
    if not isinstance(transport, tcp.Connection):
        return None  # TLS (the transport is the TLS protocol), or anything unusual
    try:
        if writer.isSecure() or getattr(writer, "method", None) != b"GET":
            return None
    except AttributeError:
        return None
    if not all(hasattr(transport, a) for a in ("dataBuffer", "offset", "_tempDataBuffer")):
        return None
    channel = getattr(writer, "channel", None)
    limits = getattr(channel, "limits", None)
    stall = float(getattr(limits, "idle_timeout", 0) or DEFAULT_STALL)
    return FileSender(writer, transport, stall)


class FileSender:
    """Writes file ranges to one response's socket, in order after what Twisted wrote."""

    def __init__(self, writer: Any, transport: tcp.Connection, stall: float) -> None:
        from twisted.internet import reactor

        self._reactor: Any = reactor
        self._writer = writer
        self._transport = transport
        self._stall = stall
        self._fd: int | None = None
        self._started = False
        self._waiter: Deferred[bool] | None = None
        self._timer: Any = None

    # -- IWriteDescriptor, while the socket is full ------------------------------------

    def fileno(self) -> int:
        """Our own descriptor of the socket."""
        return self._fd if self._fd is not None else -1

    def doWrite(self) -> None:
        """The socket has room again."""
        self._wake(True)

    def connectionLost(self, reason: Failure) -> None:
        """The reactor saw the socket fail."""
        self._wake(False)

    def logPrefix(self) -> str:
        """For the reactor's log lines."""
        return "FileSender"

    def _wake(self, ok: bool) -> None:
        self._reactor.removeWriter(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.callback(ok)

    def stop(self) -> None:
        """The response is over or the client went away: stop waiting."""
        if self._waiter is not None:
            self._wake(False)

    # -- sending -------------------------------------------------------------------------

    def _flushed(self) -> bool:
        t = self._transport
        return not t._tempDataBuffer and t.offset >= len(t.dataBuffer)  # noqa: SLF001

    async def start(self) -> bool:
        """Send the headers and wait until Twisted has written them; False: use writes."""
        if self._started:
            return self._fd is not None
        self._started = True
        self._writer.write(b"")  # the status line and headers
        if getattr(self._writer, "chunked", False):
            return False
        self._fd = os.dup(self._transport.fileno())
        return await self.flush()

    async def flush(self) -> bool:
        """Wait until Twisted has written all it holds; False if the client went away first.

        A client that reads slowly is waited for like one reading through
        Twisted: until it has not taken a byte for the stall timeout (a bound on
        reactor turns alone dropped clients that paused for a few milliseconds).
        """
        turns = 0
        pending = self._pending()
        deadline = self._reactor.seconds() + self._stall
        while True:
            if self._writer.gone:
                return False
            if self._flushed():
                return True
            now = self._reactor.seconds()
            left = self._pending()
            if left < pending:
                pending, deadline = left, now + self._stall
            elif now > deadline:
                return False
            turns += 1
            turn: Deferred[None] = Deferred()
            self._reactor.callLater(0 if turns < FLUSH_TURNS else FLUSH_POLL, turn.callback, None)
            await turn

    def _pending(self) -> int:
        """Bytes Twisted still holds for the socket."""
        t = self._transport
        return len(t.dataBuffer) - t.offset + sum(len(b) for b in t._tempDataBuffer)  # noqa: SLF001

    async def send(self, fd: int, offset: int, count: int) -> bool:
        """Send ``count`` bytes of ``fd`` from ``offset``; False if the client is gone."""
        out = self._fd
        assert out is not None
        while count > 0:
            if self._writer.gone:
                return False
            try:
                sent = os.sendfile(out, fd, offset, min(count, SENDFILE_STEP))
            except BlockingIOError:
                if not await self._writable():
                    return False
                continue
            except OSError:
                return False
            if sent == 0:
                return False
            offset += sent
            count -= sent
            self._writer.sentLength += sent
        return True

    def _writable(self) -> Deferred[bool]:
        self._waiter = Deferred()
        self._timer = self._reactor.callLater(self._stall, self._wake, False)
        self._reactor.addWriter(self)
        return self._waiter

    def close(self) -> None:
        """Forget the socket (our descriptor of it)."""
        self.stop()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
