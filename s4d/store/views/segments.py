"""The ``segments`` sub-database: each segment file's committed size, dead bytes and state."""

from __future__ import annotations

from typing import cast

import lmdb

from s4d.errors import S3Error
from s4d.store import codec
from s4d.store.schema import u64
from s4d.store.views.base import View


class SegmentsView(View):
    """Per-segment records: ``size``, ``dead`` and the ``retiring``/``retired`` marks."""

    def __init__(self, txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
        super().__init__(txn, db)
        self._retiring: dict[int, bool] = {}

    def info(self, segment_id: int) -> dict[str, int]:
        """A segment's recorded committed size and dead bytes."""
        raw = self.txn.get(u64(segment_id), db=self.db)
        if raw is None:
            return {"size": 0, "dead": 0}
        return cast(dict[str, int], codec.decode(raw))

    def put_info(self, segment_id: int, info: dict[str, int]) -> None:
        """Store a segment's statistics."""
        self.txn.put(u64(segment_id), codec.encode(info), db=self.db)

    def check_open(self, segment: int) -> None:
        """``InternalError`` if compaction is retiring ``segment`` (its file is going)."""
        retiring = self._retiring.get(segment)
        if retiring is None:
            retiring = bool(self.info(segment).get("retiring"))
            self._retiring[segment] = retiring
        if retiring:
            raise S3Error(
                "InternalError", "The data was written to a segment being compacted; retry."
            )
