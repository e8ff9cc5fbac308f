"""The ``tokens`` sub-database: client tokens of idempotent requests."""

from __future__ import annotations

from typing import Any

from s4d.store import codec
from s4d.store.schema import U64, u64
from s4d.store.views.base import View


class TokensView(View):
    """Used client tokens (``b"K" + token``) and their expiry index (``b"T" + time + token``)."""

    def get(self, token: bytes) -> dict[str, Any] | None:
        """The record kept for an idempotency token, or None."""
        raw = self.txn.get(b"K" + token, db=self.db)
        return codec.decode(raw) if raw is not None else None

    def put(self, token: bytes, record: dict[str, Any], now_ns: int) -> None:
        """Remember ``token`` (with ``record``) as used at ``now_ns``."""
        old = self.get(token)
        if old is not None:
            self.txn.delete(b"T" + u64(old["t"]) + token, db=self.db)
        self.txn.put(b"K" + token, codec.encode({**record, "t": now_ns}), db=self.db)
        self.txn.put(b"T" + u64(now_ns) + token, b"", db=self.db)

    def expire(self, before_ns: int, limit: int) -> int:
        """Forget up to ``limit`` tokens used before ``before_ns``; return how many went."""
        cursor = self.cursor()
        doomed: list[bytes] = []
        if cursor.set_range(b"T"):
            for k in cursor.iternext(values=False):
                if not k.startswith(b"T") or len(doomed) >= limit:
                    break
                if U64.unpack_from(k, 1)[0] >= before_ns:
                    break
                doomed.append(bytes(k))
        for k in doomed:
            self.txn.delete(k, db=self.db)
            self.txn.delete(b"K" + k[9:], db=self.db)
        return len(doomed)
