"""How many connections each server process holds, shared through a small mapped file.

Several processes accept from one listening socket; the one the kernel wakes
first would otherwise take every connection of a burst, and keep-alive clients
would stay piled on it. Each process writes its pid and open-connection count
into its own slot of ``DATA_DIR/run/connections`` (one 16-byte slot per process
index, the main process's being 0) and, before accepting, looks whether it
already holds clearly more than the least loaded live process
(:meth:`ConnectionBoard.should_wait`). Slots are single machine words written
by one process each: a reader may see a count a moment old, never a torn one
that matters (a wrong guess costs one connection placed less evenly).
"""

from __future__ import annotations

import mmap
import os
import struct

#: slots in the board (processes per server at most; beyond, a process does not balance)
SLOTS = 1024
_SLOT = struct.Struct("=qq")  # pid, open connections
#: a process waits while it holds more than this many connections above the least loaded
SLACK = 1


def board_path(data_dir: str) -> str:
    """The connection board of ``data_dir``."""
    return os.path.join(data_dir, "run", "connections")


class ConnectionBoard:
    """One process's view of the board: its own slot to write, the others' to read."""

    def __init__(self, path: str, index: int, processes: int) -> None:
        self.index = index
        #: how many slots are in use (the configured processes)
        self.processes = min(SLOTS, processes)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.fstat(fd).st_size < SLOTS * _SLOT.size:
                os.ftruncate(fd, SLOTS * _SLOT.size)
            self._map = mmap.mmap(fd, SLOTS * _SLOT.size)
        finally:
            os.close(fd)
        self.pid = os.getpid()

    @classmethod
    def reset(cls, path: str) -> None:
        """Empty the board (the main process, before any worker starts)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(bytes(SLOTS * _SLOT.size))

    def _valid(self, index: int) -> bool:
        return 0 <= index < SLOTS

    def set(self, connections: int) -> None:
        """Publish this process's open connections."""
        if self._valid(self.index):
            _SLOT.pack_into(self._map, self.index * _SLOT.size, self.pid, connections)

    def clear(self, index: int) -> None:
        """Forget the process of slot ``index`` (it ended)."""
        if self._valid(index):
            _SLOT.pack_into(self._map, index * _SLOT.size, 0, 0)

    def least(self) -> int | None:
        """The fewest open connections any other live process holds (None: no other)."""
        fewest: int | None = None
        for index in range(self.processes):
            if index == self.index:
                continue
            pid, count = _SLOT.unpack_from(self._map, index * _SLOT.size)
            if pid and (fewest is None or count < fewest):
                fewest = count
        return fewest

    def should_wait(self, connections: int) -> bool:
        """This process, holding ``connections``, should leave the next one to another."""
        self.set(connections)
        fewest = self.least()
        return fewest is not None and connections > fewest + SLACK

    def close(self) -> None:
        """Clear this process's slot and unmap the board."""
        self.clear(self.index)
        self._map.close()
