"""One read transaction shared by the small reads of one thread (the reactor's).

A small GET or HEAD reads a few records on the reactor thread (the caller's
key generations, the bucket, the namespace entry, the version, the chunk
locations). Opening a read transaction for each and building its views costs
more than the reads themselves, so :class:`ReadSnapshot` keeps one open and
hands the same :class:`~s4d.store.txn.MetaTxn` (views built once) to every read
until something newer is committed.

Freshness is exactly that of a new transaction: before each use it compares the
snapshot's transaction id with the last one committed to the environment (by
this process or any other, read from LMDB's meta page: no lock, no syscall) and
starts a new transaction when they differ. So a read sees every commit
acknowledged before it began, across worker processes too.

A snapshot left open pins the pages of its version (LMDB cannot reuse pages
freed after it: a run of writes with no read in between would grow the file), so
it is off until whoever owns the thread turns it on (:meth:`ReadSnapshot.enable`)
and calls :meth:`ReadSnapshot.release` now and then (the service does, a few
times a second; the next read opens a fresh one). Off, every read opens a short
transaction of its own, as before. Only the owning thread (the one that made
it) uses the snapshot: LMDB transactions are not shared between threads, so any
other thread gets None and opens a short transaction of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import lmdb

from s4d.store.txn import MetaTxn


class ReadSnapshot:
    """The shared read transaction of one thread (see the module docstring).

    :param env: the LMDB environment.
    :param meta: wraps a transaction in its views (``Store.meta``).
    """

    def __init__(
        self, env: lmdb.Environment, meta: Callable[[lmdb.Transaction[bytes]], MetaTxn]
    ) -> None:
        self._env = env
        self._meta = meta
        self._owner = threading.get_ident()
        self._txn: lmdb.Transaction[bytes] | None = None
        self._views: MetaTxn | None = None
        self._id = -1
        #: transactions opened so far (a snapshot reused by n reads opens one)
        self.opened = 0
        #: off until :meth:`enable`: nobody would release it
        self.enabled = False

    def enable(self, enabled: bool = True) -> None:
        """Share a snapshot from now on (the caller releases it regularly), or stop."""
        self.enabled = enabled
        if not enabled:
            self.release()

    def current(self) -> MetaTxn | None:
        """The views of a read transaction as fresh as a new one; None when not enabled
        or off the owning thread.

        Valid until the caller returns to the event loop: never keep it across a
        yield or an ``await``.
        """
        if not self.enabled or threading.get_ident() != self._owner:
            return None
        last = self._env.info()["last_txnid"]
        if self._views is None or last != self._id:
            self.release()
            txn = self._env.begin()
            self._txn = txn
            self._id = txn.id()
            self._views = self._meta(txn)
            self.opened += 1
        return self._views

    def release(self) -> None:
        """End the shared transaction (the next :meth:`current` opens a new one).

        Call it from the owning thread only.
        """
        txn, self._txn, self._views = self._txn, None, None
        if txn is not None:
            txn.abort()
