r"""Shared durability: one ``fdatasync`` of the metadata serves every process's commits.

The metadata environment is opened with ``MDB_NOMETASYNC``
(:func:`s4d.store.schema.open_environment`): a commit writes its pages,
``fdatasync``\ s them, then writes the meta page that makes the transaction
current *without* syncing it. LMDB documents that this keeps the database
intact across a system crash (the pages a meta page points at are on disk
before the meta page is written); only the last transactions may be undone.
A transaction ``T`` becomes durable when its meta page reaches the disk:

* at the next ``fdatasync`` of the data file after ``T`` committed: any later
  commit's own page sync (by any process: they share one file), so committing
  ``T + 1`` makes every transaction up to ``T`` durable; or
* at an explicit :meth:`lmdb.Environment.sync`.

So a process knows ``T`` durable without any system call once the newest
committed id (read from the meta pages, ``env.info()["last_txnid"]``) is
above ``T``.

Every process with the environment open shares one small file,
``durable.lock`` next to the environment, holding the highest transaction id
known durable. It is read and written only under an exclusive ``flock`` of that
file. A committer that needs ``T`` durable (:meth:`SharedDurability.wait`)
takes the lock; if the recorded id already covers ``T`` it is done, otherwise it
syncs the environment *while holding the lock*, records ``T`` and lets go.
Processes that queued on the lock meanwhile find their own transactions
covered (each committed before the sync began) and answer without another
sync: one ``fdatasync`` serves every worker's transactions committed before it,
and the syncs run outside LMDB's write lock, so the next batch's transaction
(from any process) is not kept waiting behind them.

Each process counts how its waits were answered (the metrics show them,
``docs/operations.rst``): by a sync it ran itself (:attr:`SharedDurability.syncs`),
by what it already knew from its own commits and syncs
(:attr:`~SharedDurability.covered_here`), or by another process's commit or
sync (:attr:`~SharedDurability.covered_elsewhere`): the last is the sharing
across processes at work.

The id recorded is only ever one the recorder knows durable: its own
transaction after its own sync. What a commit's page sync covers (``T - 1``
after a commit of ``T``) is not recorded: every process reads it from the meta
pages (``last_committed``) without a system call, so a commit costs no file
lock. A stale id would release waiters early, so the record is
reset to 0 whenever a process opens the environment while no other process has
it open (a second file, ``durable.users``, is share-locked by every process
for as long as it has the store open): after a crash and restart, after a
restore, the first process starts from nothing. A reset is always safe: it only
costs a sync.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
from collections.abc import Callable

#: the recorded id: a little-endian u64 at offset 0 of ``durable.lock``
_TXNID = struct.Struct("<Q")
LOCK_NAME = "durable.lock"
USERS_NAME = "durable.users"


class SharedDurability:
    """The cross-process record of which LMDB transactions are on disk.

    :param directory: where the two small files live (the environment's directory).
    :param sync: makes every committed transaction durable (``env.sync(True)``).
    :param last_committed: the id of the newest committed transaction
        (``env.info()["last_txnid"]``, read from the meta pages): every id below
        it is durable, since its commit synced its pages after the meta page
        before it was written.
    """

    def __init__(
        self,
        directory: str,
        sync: Callable[[], None],
        last_committed: Callable[[], int] = lambda: 0,
    ) -> None:
        self._sync = sync
        self._last_committed = last_committed
        self._users = os.open(os.path.join(directory, USERS_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        except BaseException:
            os.close(self._users)
            raise
        #: one thread at a time per process goes through the file lock (flock is per open file)
        self._local = threading.Lock()
        #: highest id this process knows durable (read without the lock by its own threads)
        self.known = 0
        #: highest id this process made durable itself (a commit of its own, or a sync)
        self._own = 0
        #: explicit syncs this process ran; waits answered without one, by this process's
        #: own commits and syncs, and by another process's commit or sync
        self.syncs = 0
        self.covered_here = 0
        self.covered_elsewhere = 0
        try:
            fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # others have it open: their record is current
        else:
            with self._locked():
                os.pwrite(self._fd, _TXNID.pack(0), 0)
        fcntl.flock(self._users, fcntl.LOCK_SH)

    @property
    def shared(self) -> int:
        """Waits answered without a sync of their own."""
        return self.covered_here + self.covered_elsewhere

    def _count_covered(self, txnid: int) -> None:
        if self._own >= txnid:
            self.covered_here += 1
        else:
            self.covered_elsewhere += 1

    def close(self) -> None:
        """Let go of both files (and of this process's share of the users lock)."""
        os.close(self._fd)
        os.close(self._users)

    def _locked(self) -> _FileLock:
        return _FileLock(self._fd)

    def _read(self) -> int:
        raw = os.pread(self._fd, _TXNID.size, 0)
        return _TXNID.unpack(raw)[0] if len(raw) == _TXNID.size else 0

    def covered(self, txnid: int) -> bool:
        """Whether this process already knows ``txnid`` durable (no system call)."""
        return self.known >= txnid

    def _committed_after(self, txnid: int) -> bool:
        """Whether a later commit (by any process) has already made ``txnid`` durable."""
        below = self._last_committed() - 1
        if below > self.known:
            self.known = below
        return self.known >= txnid

    def wait(self, txnid: int) -> bool:
        """Return once transaction ``txnid`` (committed by this process) is durable.

        Returns whether this call ran the sync itself.
        """
        if self.known >= txnid or self._committed_after(txnid):
            self._count_covered(txnid)
            return False
        with self._local, self._locked():
            recorded = self._read()
            if recorded > self.known:
                self.known = recorded
            if self.known >= txnid or self._committed_after(txnid):
                self._count_covered(txnid)
                return False
            self._sync()
            os.pwrite(self._fd, _TXNID.pack(txnid), 0)
            self.known = max(self.known, txnid)
            self._own = max(self._own, txnid)
            self.syncs += 1
            return True

    def committed(self, txnid: int) -> None:
        """Note that this process committed ``txnid``: every id below it is durable.

        Nothing is written for the other processes: they read the newest
        committed id from the meta pages (``last_committed``), which says as
        much, without a lock or a system call.
        """
        below = txnid - 1
        if below > self._own:
            self._own = below
        if below > self.known:
            self.known = below


class _FileLock:
    """An exclusive ``flock`` of one file, as a context manager."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
