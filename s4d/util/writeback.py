"""Starting the writeback of freshly written file ranges (``sync_file_range``).

A large object's bytes sit in the page cache until the commit's ``fdatasync``
writes them all at once, which then takes as long as the disk needs for the
whole object. Asking the kernel to start writing each range as soon as it is
written keeps the disk busy while the rest of the body is still arriving, so
the final ``fdatasync`` waits only for the tail. This is a hint: durability
still comes from ``fdatasync`` alone.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

#: ``SYNC_FILE_RANGE_WRITE``: start writeback of dirty pages in the range, without waiting.
SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # glibc's soname directly: find_library would run /sbin/ldconfig in a child process
        function = ctypes.CDLL("libc.so.6", use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load()


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Start writing ``length`` bytes of ``fd`` at ``offset`` to disk; False if unsupported.

    Errors are ignored: the ``fdatasync`` that makes the bytes durable reports them.
    """
    if _sync_file_range is None:
        return False
    return _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) == 0
