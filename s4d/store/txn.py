"""One LMDB transaction, seen through one typed view per named sub-database.

:class:`MetaTxn` is the store interface that :mod:`s4d.features` rules are written
against. It owns the transaction and the changes gathered while it runs (dead
bytes per segment, statistics deltas) and exposes the views as attributes:

================ ============================================ ===============
attribute        view                                         sub-database
================ ============================================ ===============
``buckets``      :class:`~.views.buckets.BucketsView`         buckets
``bucket_config``:class:`~.views.buckets.BucketConfigView`    bconf
``ns``           :class:`~.views.namespace.NamespaceView`     ns
``versions``     :class:`~.views.versions.VersionsView`       versions
``chunks``       :class:`~.views.chunks.ChunksView`           chunks
``damaged``      :class:`~.views.damaged.DamagedView`         damaged
``segments``     :class:`~.views.segments.SegmentsView`       segments
``counters``     :class:`~.views.counters.CountersView`       counters
``multipart``    :class:`~.views.multipart.MultipartView`     multipart
``tokens``       :class:`~.views.tokens.TokensView`           tokens
``config``       :class:`~.views.settings.SettingsView`       config
``iam``          :class:`~.views.iam.IamView`                 iam
================ ============================================ ===============

It never commits or aborts; whoever opened the transaction does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import lmdb

from s4d.store.clock import Clock
from s4d.store.schema import Databases
from s4d.store.stats import apply_deltas
from s4d.store.views.base import Tally
from s4d.store.views.buckets import BucketConfigView, BucketsView
from s4d.store.views.chunks import ChunksView
from s4d.store.views.counters import CountersView
from s4d.store.views.damaged import DamagedView
from s4d.store.views.iam import IamView
from s4d.store.views.multipart import MultipartView
from s4d.store.views.namespace import NamespaceView
from s4d.store.views.segments import SegmentsView
from s4d.store.views.settings import SettingsView
from s4d.store.views.tokens import TokensView
from s4d.store.views.versions import VersionsView

V = TypeVar("V")


class _built_once(Generic[V]):  # noqa: N801 - used as a decorator, like property
    """Like ``functools.cached_property`` without its lock (transactions are one-thread).

    The first read builds the value and keeps it in the instance's ``__dict__``,
    where later reads find it without calling the descriptor again.
    """

    def __init__(self, build: Callable[[Any], V]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _built_once[V]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any]) -> V: ...

    def __get__(self, instance: object | None, owner: type[Any]) -> V | _built_once[V]:
        if instance is None:
            return self
        value = self.build(instance)
        instance.__dict__[self.name] = value
        return value


class MetaTxn:
    """The views of one open LMDB transaction.

    :param dbs: the environment's sub-database handles.
    :param txn: the open transaction (read-only or write).
    :param clock: the store's clocks (the wall clock stamps released chunks).
    """

    def __init__(self, dbs: Databases, txn: lmdb.Transaction[bytes], clock: Clock) -> None:
        self.dbs = dbs
        self.txn = txn
        self.clock = clock
        self.tally = Tally()
        #: where :meth:`flush` adds the statistics instead of writing them (or None)
        self.stats_sink: defaultdict[bytes, int] | None = None

    # The views are built on first use: most transactions touch two or three of them.

    @_built_once
    def counters(self) -> CountersView:
        """Sequence numbers and statistics counters."""
        return CountersView(self.txn, self.dbs.counters)

    @_built_once
    def buckets(self) -> BucketsView:
        """Bucket records."""
        return BucketsView(self.txn, self.dbs.buckets)

    @_built_once
    def bucket_config(self) -> BucketConfigView:
        """Bucket configuration documents."""
        return BucketConfigView(self.txn, self.dbs.bconf)

    @_built_once
    def ns(self) -> NamespaceView:
        """The namespace tree."""
        return NamespaceView(self.txn, self.dbs.ns, self.counters)

    @_built_once
    def segments(self) -> SegmentsView:
        """Segment records."""
        return SegmentsView(self.txn, self.dbs.segments)

    @_built_once
    def damaged(self) -> DamagedView:
        """Chunks found damaged."""
        return DamagedView(self.txn, self.dbs.damaged)

    @_built_once
    def chunks(self) -> ChunksView:
        """Chunk locations and reference counts."""
        return ChunksView(
            self.txn, self.dbs.chunks, self.damaged, self.segments, self.tally, self.clock.wall
        )

    @_built_once
    def versions(self) -> VersionsView:
        """Object versions."""
        return VersionsView(self.txn, self.dbs.versions, self.chunks, self.counters, self.tally)

    @_built_once
    def multipart(self) -> MultipartView:
        """Multipart uploads and their parts."""
        return MultipartView(self.txn, self.dbs.multipart)

    @_built_once
    def tokens(self) -> TokensView:
        """Idempotency tokens (RenameObject client tokens)."""
        return TokensView(self.txn, self.dbs.tokens)

    @_built_once
    def config(self) -> SettingsView:
        """Store-wide settings (the schema version...)."""
        return SettingsView(self.txn, self.dbs.config)

    @_built_once
    def iam(self) -> IamView:
        """Users and their access keys."""
        return IamView(self.txn, self.dbs.iam)

    @property
    def dead(self) -> defaultdict[int, int]:
        """Dead bytes per segment released in this transaction, flushed by :meth:`flush`."""
        return self.tally.dead

    @property
    def stats(self) -> defaultdict[bytes, int]:
        """Changes to the statistics (s4d.store.stats) made here, flushed by :meth:`flush`."""
        return self.tally.stats

    def flush(self, durable_sizes: dict[int, int] | None = None) -> None:
        """Write the dead-byte tallies, statistics and durable sizes gathered here.

        With a :attr:`stats_sink` (the committer's, for one batch) the statistics
        go there instead, to be written once for the whole batch.
        """
        dead = self.tally.dead
        touched = set(dead) | set(durable_sizes or {})
        for sid in touched:
            info = self.segments.info(sid)
            info["dead"] = info.get("dead", 0) + dead.get(sid, 0)
            if durable_sizes and sid in durable_sizes:
                info["size"] = max(info.get("size", 0), durable_sizes[sid])
            self.segments.put_info(sid, info)
        dead.clear()
        stats = self.tally.stats
        if stats:
            if self.stats_sink is not None:
                for name, delta in stats.items():
                    self.stats_sink[name] += delta
            else:
                apply_deltas(self.txn, self.dbs, stats)
            stats.clear()
