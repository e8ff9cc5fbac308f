"""What every view shares: the transaction, its database, and the pending tallies."""

from __future__ import annotations

from collections import defaultdict

import lmdb


class Tally:
    """Changes gathered by one transaction's views, written by ``MetaTxn.flush``."""

    __slots__ = ("dead", "stats")

    def __init__(self) -> None:
        #: dead bytes per segment released in this transaction
        self.dead: defaultdict[int, int] = defaultdict(int)
        #: changes to the statistics (s4d.store.stats) made here
        self.stats: defaultdict[bytes, int] = defaultdict(int)


class View:
    """One sub-database seen through one open transaction.

    :param txn: the LMDB transaction (read-only or write).
    :param db: the handle of the sub-database this view reads and writes.
    """

    def __init__(self, txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
        self.txn = txn
        self.db = db

    def cursor(self) -> lmdb.Cursor[bytes]:
        """A fresh cursor over this view's sub-database."""
        return self.txn.cursor(db=self.db)

    def record_count(self) -> int:
        """How many records this view's sub-database holds (LMDB keeps the number: O(1))."""
        return int(self.txn.stat(self.db)["entries"])
