"""Process memory tuning: keep large transient buffers from inflating the RSS.

Uploads and downloads move data in 4 MiB buffers from several threads. glibc
raises its mmap threshold after such a buffer is freed, so later ones come
from per-thread heaps that never give memory back, and the resident size grows
with the number of threads. Capping the number of arenas bounds that growth.
"""

from __future__ import annotations

import ctypes
import gc

M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_threshold: int | None = None, arena_max: int = 2) -> bool:
    """Apply the settings through ``mallopt``; False where that is not glibc.

    By default only the number of arenas is capped: freed 4 MiB buffers are
    then reused from a bounded heap (fresh mmaps would cost page faults on every
    buffer, halving download speed here).
    """
    try:
        # glibc's soname directly: find_library would run /sbin/ldconfig in a child process
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = True
    if mmap_threshold is not None:
        ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))
    return bool(mallopt(M_ARENA_MAX, arena_max)) and ok


#: allocations between young-generation collections (CPython's default: 700)
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect cyclic garbage less often, and never rescan what start-up built.

    A small request allocates a few hundred objects (Deferreds, headers, the
    request), so with CPython's default the collector runs every couple of
    requests, and its full collections walk every object the server holds (the
    modules, Twisted, the caches). Objects alive once the server has started are
    moved out of the collector's sight (``gc.freeze``): they live as long as the
    process. Cycles are still collected, in larger and fewer passes.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def release_free_memory() -> bool:
    """Give the heap's free memory back to the system (``malloc_trim``); False if not glibc.

    After a query its buffers are free but kept by malloc; this returns the
    server's resident size near its idle size between queries.
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
