"""Bucket configuration documents (CORS rules, lifecycle rules) cached in each process.

Requests read a bucket's CORS rules (every request that carries ``Origin``)
and lifecycle rules (the ``x-amz-expiration`` of PUT, GET and HEAD) far more
often than anyone changes them, so each process keeps the stored documents in
a :class:`ConfigCache` instead of reading LMDB on the reactor's behalf every
time.

Freshness: an entry is used for :data:`TTL` seconds after it was read, then
read again (in a worker thread; concurrent requests share the one read). A
change made through this process drops its entry at once
(:meth:`ConfigCache.forget`), so the process that took a PutBucketCors sees it
on the next request; the other worker processes (``S4_WORKERS``) see it
within :data:`TTL` seconds. A generation counter in LMDB would make every
worker see changes at once, but checking it costs an LMDB read per request,
which is what the cache is there to avoid; AWS itself documents bucket
configuration changes as eventually consistent. A bucket that does not exist
caches as "no document", like one without it; the cache holds at most
:data:`MAX_ENTRIES` entries (anonymous preflight requests may name any
bucket), dropping the oldest.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from s4d.engine.core import EngineCore
from s4d.store.txn import MetaTxn

#: Seconds an entry is trusted before it is read again.
TTL = 1.0
#: The most entries one cache holds.
MAX_ENTRIES = 4096

_Key = tuple[str, bytes]


def _stored(t: MetaTxn, bucket: str, kind: bytes) -> bytes | None:
    record = t.buckets.get(bucket)
    return t.bucket_config.get(record, kind) if record is not None else None


class ConfigCache:
    """Stored bucket configuration documents, by (bucket, kind), trusted for ``ttl`` seconds.

    :param monotonic: the clock entries age by.
    """

    def __init__(
        self,
        core: EngineCore,
        ttl: float = TTL,
        monotonic: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._core = core
        self.ttl = ttl
        self.monotonic = monotonic
        self.max_entries = max_entries
        self._entries: OrderedDict[_Key, tuple[float, bytes | None]] = OrderedDict()
        self._waiting: dict[_Key, list[Deferred[bytes | None]]] = {}

    def get(self, bucket: str, kind: bytes) -> bytes | None | Deferred[bytes | None]:
        """The document now if a fresh copy is cached, else a Deferred that reads it."""
        key = (bucket, kind)
        entry = self._entries.get(key)
        if entry is not None and self.monotonic() - entry[0] < self.ttl:
            return entry[1]
        return self._read(key)

    def fetch(self, bucket: str, kind: bytes) -> Deferred[bytes | None]:
        """The document, always as a Deferred."""
        found = self.get(bucket, kind)
        return found if isinstance(found, Deferred) else succeed(found)

    def peek(self, bucket: str, kind: bytes) -> bytes | None:
        """The cached document however old (None if none is cached); never reads."""
        entry = self._entries.get((bucket, kind))
        return entry[1] if entry is not None else None

    def forget(self, bucket: str, kind: bytes | None = None) -> None:
        """Drop the cached ``kind`` of ``bucket`` (every kind when None)."""
        for key in [k for k in self._entries if k[0] == bucket and kind in (None, k[1])]:
            del self._entries[key]

    def _read(self, key: _Key) -> Deferred[bytes | None]:
        mine: Deferred[bytes | None] = Deferred()
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.append(mine)  # one read serves every request that missed meanwhile
            return mine
        self._waiting[key] = [mine]
        started = self.monotonic()
        bucket, kind = key

        def done(result: bytes | None | Failure) -> None:
            waiters = self._waiting.pop(key, [])
            if not isinstance(result, Failure):
                self._entries[key] = (started, result)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            for waiter in waiters:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)

        self._core.read(lambda t: _stored(t, bucket, kind)).addBoth(done)
        return mine
