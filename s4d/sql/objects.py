"""Object bytes for a query: opened and read through the engine, as files pyarrow can read.

:class:`ObjectReader` reads any byte range of one opened object version, chunk
by chunk through :meth:`ObjectsFacade.read_chunk` (checked against the
chunk's checksum), keeping the last chunks it read and, when reads run
forward, fetching the next chunk while the current one is parsed. Only the
chunks a range touches are read, so a Parquet scan that needs two columns of
one row group reads those bytes and no others. Two file views sit on it:
:class:`SequentialFile` (a byte range read front to back: CSV, JSON) and
:class:`RandomAccessFile` (seekable: Parquet).
"""

from __future__ import annotations

import bisect
import io
import threading
from collections import OrderedDict
from concurrent.futures import Future

from s4d.engine import ChunkLocation, ObjectsFacade, OpenObject
from s4d.sql.control import EngineBridge

#: Chunks an :class:`ObjectReader` keeps after reading them.
KEPT_CHUNKS = 2


class ObjectReader:
    """Random access to one opened object's bytes (thread-safe)."""

    def __init__(self, objects: ObjectsFacade, bridge: EngineBridge, opened: OpenObject) -> None:
        self._objects = objects
        self._bridge = bridge
        self._locations: list[ChunkLocation] = list(opened.locations)
        self._starts: list[int] = []
        offset = 0
        for location in self._locations:
            self._starts.append(offset)
            offset += location.size
        self.size = offset
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, bytes] = OrderedDict()
        self._ahead: dict[int, Future[bytes]] = {}
        if opened.first_chunk is not None and self._locations:
            self._kept[0] = opened.first_chunk
            bridge.control.count_scanned(len(opened.first_chunk))

    def _chunk(self, index: int, forward: bool) -> bytes:
        with self._lock:
            data = self._kept.get(index)
            if data is not None:
                self._kept.move_to_end(index)
            pending = self._ahead.pop(index, None) if data is None else None
            if data is None and pending is None:
                pending = self._bridge.start(self._objects.read_chunk, self._locations[index])
            nxt = index + 1
            if (
                forward
                and nxt < len(self._locations)
                and nxt not in self._kept
                and nxt not in self._ahead
            ):
                self._ahead[nxt] = self._bridge.start(
                    self._objects.read_chunk, self._locations[nxt]
                )
        if data is None:
            assert pending is not None
            data = self._bridge.control.wait(pending)
            self._bridge.control.count_scanned(len(data))
            with self._lock:
                self._kept[index] = data
                while len(self._kept) > KEPT_CHUNKS:
                    self._kept.popitem(last=False)
        return data

    def read(self, offset: int, length: int, forward: bool = True) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer only at the end of the object)."""
        if offset >= self.size or length <= 0:
            return b""
        end = min(self.size, offset + length)
        index = bisect.bisect_right(self._starts, offset) - 1
        pieces: list[bytes] = []
        at = offset
        while at < end:
            start = self._starts[index]
            data = self._chunk(index, forward)
            piece = data[at - start : end - start]
            pieces.append(piece)
            at += len(piece)
            index += 1
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def processed(self, size: int) -> None:
        """``size`` bytes reached a parser (BytesProcessed)."""
        self._bridge.control.count_processed(size)

    def close(self) -> None:
        """Forget kept chunks and reads in flight."""
        with self._lock:
            self._kept.clear()
            ahead, self._ahead = self._ahead, {}
        for future in ahead.values():
            future.cancel()


class SequentialFile(io.RawIOBase):
    """Bytes ``first..stop`` (exclusive) of an object, read front to back."""

    def __init__(self, reader: ObjectReader, first: int = 0, stop: int | None = None) -> None:
        super().__init__()
        self._reader = reader
        self._at = first
        self._stop = reader.size if stop is None else min(stop, reader.size)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), self._stop - self._at)
        if size <= 0:
            return 0
        data = self._reader.read(self._at, size)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)

    def read_block(self, size: int) -> bytes:
        """Up to ``size`` bytes (b"" at the end), without an intermediate buffer."""
        size = min(size, self._stop - self._at)
        if size <= 0:
            return b""
        data = self._reader.read(self._at, size)
        self._at += len(data)
        return data


class RandomAccessFile(io.RawIOBase):
    """A whole object as a seekable file (each instance keeps its own position)."""

    def __init__(self, reader: ObjectReader) -> None:
        super().__init__()
        self._reader = reader
        self._at = 0
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with self._lock:
            if whence == io.SEEK_SET:
                self._at = offset
            elif whence == io.SEEK_CUR:
                self._at += offset
            else:
                self._at = self._reader.size + offset
            return self._at

    def tell(self) -> int:
        return self._at

    def size(self) -> int:
        """The object's size."""
        return self._reader.size

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            if size is None or size < 0:
                size = self._reader.size - self._at
            data = self._reader.read(self._at, size, forward=False)
            self._at += len(data)
        self._reader.processed(len(data))
        return data
