"""Streaming an object's bytes to the client chunk by chunk, with backpressure.

Only the chunks a range touches are read; the next chunk is read while the
current one is written; writing stops while the transport asks us to pause. A
chunk that fails its checksum mid-stream cannot change the status line any
more, so the connection is aborted: the client sees a short body, never wrong
bytes.
"""

from __future__ import annotations

import os

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from s4d.engine import ChunkLocation, ObjectsFacade
from s4d.s3.call import ResponseWriter
from s4d.s3.sendfile import SENDFILE_MIN, FileSender, file_sender

log = Logger()


@implementer(IPushProducer)
class Pause:
    """A push producer that turns pause/resume into a Deferred to wait on."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiter: Deferred[None] | None = None

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._wake()

    def stopProducing(self) -> None:
        self.stopped = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.callback(None)

    def wait(self) -> Deferred[None] | None:
        if not self.paused or self.stopped:
            return None
        self._waiter = Deferred()
        return self._waiter


def spans(
    locations: list[ChunkLocation], first: int, last: int
) -> list[tuple[ChunkLocation, int, int]]:
    """The chunks covering bytes ``first..last`` with the slice of each to send."""
    out = []
    offset = 0
    for loc in locations:
        end = offset + loc.size
        if end > first and offset <= last:
            out.append((loc, max(first, offset) - offset, min(last + 1, end) - offset))
        if offset > last:
            break
        offset = end
    return out


async def send_object(
    writer: ResponseWriter,
    objects: ObjectsFacade,
    locations: list[ChunkLocation],
    first: int,
    last: int,
) -> None:
    """Write bytes ``first..last`` of an object to ``writer``.

    Over plain HTTP, large uncompressed chunks go from their segment file to
    the socket by ``sendfile`` (:mod:`s4d.s3.sendfile`); other chunks are read
    (the next while the current one is written) and written.
    """
    pause = Pause()
    writer.registerProducer(pause, True)
    pieces = spans(locations, first, last)
    sender = None
    if any(loc.size >= SENDFILE_MIN and not loc.flags for loc, _, _ in pieces):
        sender = file_sender(writer)
    try:
        if sender is not None and await sender.start():
            await _send_files(writer, objects, pieces, pause, sender)
        else:
            await _send_reads(writer, objects, pieces, pause)
    finally:
        if sender is not None:
            sender.close()
        if not writer.gone:  # a client gone meanwhile took the channel (and its producer)
            writer.unregisterProducer()


async def _send_reads(
    writer: ResponseWriter,
    objects: ObjectsFacade,
    pieces: list[tuple[ChunkLocation, int, int]],
    pause: Pause,
) -> None:
    pending = objects.read_chunk(pieces[0][0]) if pieces else None
    for index, (_loc, start, end) in enumerate(pieces):
        assert pending is not None
        try:
            data = await pending
        except CancelledError:
            raise  # the client went away: nothing to report
        except Exception:
            log.failure("reading a chunk at offset {offset}", offset=start)
            writer.abort()
            return
        pending = objects.read_chunk(pieces[index + 1][0]) if index + 1 < len(pieces) else None
        if pause.stopped:
            return
        writer.write(data[start:end] if (start, end) != (0, len(data)) else data)
        waiter = pause.wait()
        if waiter is not None:
            await waiter
        if pause.stopped:
            return


async def _send_files(
    writer: ResponseWriter,
    objects: ObjectsFacade,
    pieces: list[tuple[ChunkLocation, int, int]],
    pause: Pause,
    sender: FileSender,
) -> None:
    for loc, start, end in pieces:
        if pause.stopped:
            return
        opened = None
        if loc.size >= SENDFILE_MIN and not loc.flags:
            opened = await objects.open_chunk(loc)
        if opened is None:
            # small or compressed (or to be read with retries): through Twisted's buffer
            try:
                data = await objects.read_chunk(loc)
            except CancelledError:
                raise  # the client went away: nothing to report
            except Exception:
                log.failure("reading a chunk at offset {offset}", offset=start)
                writer.abort()
                return
            writer.write(data[start:end] if (start, end) != (0, len(data)) else data)
            waiter = pause.wait()
            if waiter is not None:
                await waiter
            if not await sender.flush():
                if not writer.gone:
                    writer.abort()
                return
            continue
        fd, payload = opened
        try:
            if not await sender.send(fd, payload + start, end - start):
                if not writer.gone:
                    writer.abort()
                return
        finally:
            os.close(fd)
