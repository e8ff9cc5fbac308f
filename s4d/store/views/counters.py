"""The ``counters`` sub-database: named id allocators."""

from __future__ import annotations

from s4d.store.schema import U64, u64
from s4d.store.views.base import View


class CountersView(View):
    """Named counters (``bucket``, ``dir``, ``object``, ``seq``, ``segment``, ``upload``)."""

    def next_id(self, counter: bytes) -> int:
        """Allocate the next value of a named counter (starting at 1)."""
        raw = self.txn.get(counter, db=self.db)
        value = (U64.unpack(raw)[0] if raw else 0) + 1
        self.txn.put(counter, u64(value), db=self.db)
        return int(value)
