"""The ``damaged`` sub-database: chunks whose records were found corrupt."""

from __future__ import annotations

from typing import Any

from s4d.store import codec
from s4d.store.views.base import View


class DamagedView(View):
    """Damaged chunks, keyed by digest, with where and why they failed."""

    def contains(self, digest: bytes) -> bool:
        """True when a chunk's record was found corrupt (by a read, the scrubber, compaction)."""
        return self.txn.get(digest, db=self.db) is not None

    def info(self, digest: bytes) -> dict[str, Any] | None:
        """Where and why a damaged chunk failed, or None."""
        raw = self.txn.get(digest, db=self.db)
        return codec.decode(raw) if raw is not None else None

    def mark(self, digest: bytes, info: dict[str, Any]) -> bool:
        """Record a chunk as damaged; False if it already was."""
        return bool(self.txn.put(digest, codec.encode(info), db=self.db, overwrite=False))

    def clear(self, digest: bytes) -> None:
        """Forget that a chunk was damaged (a good copy replaced it)."""
        self.txn.delete(digest, db=self.db)
