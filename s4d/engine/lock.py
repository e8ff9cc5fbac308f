"""Object lock: a bucket's lock configuration, a version's retention and legal hold.

The rules live in :mod:`s4d.features.lock`, the transaction functions in
:mod:`s4d.features.retention`; every change is one metadata transaction.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from s4d.engine.core import EngineCore
from s4d.features import retention as fr
from s4d.store.model import Bucket, DefaultRetention, ObjectVersion
from s4d.store.txn import MetaTxn


class LockFacade:
    """Object lock operations over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def put_configuration(self, bucket: str, rule: DefaultRetention | None) -> Deferred[Bucket]:
        """Enable object lock on ``bucket`` and set (None: clear) its default retention."""
        return self._core.commit(lambda t: fr.put_lock_configuration(t, bucket, rule))

    def configuration(self, bucket: str) -> Deferred[Bucket]:
        """The bucket (``ObjectLockConfigurationNotFoundError`` without object lock)."""
        return self._core.read(lambda t: fr.get_lock_configuration(t, bucket))

    def version(self, bucket: str, key: str, version_id: str | None) -> Deferred[ObjectVersion]:
        """The version whose lock is asked for (``InvalidRequest`` without object lock)."""

        def read(t: MetaTxn) -> ObjectVersion:
            return fr.locked_version(t, bucket, key, version_id)[1]

        return self._core.read(read)

    def put_retention(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        mode: str | None,
        until_ms: int | None,
        bypass_governance: bool,
    ) -> Deferred[ObjectVersion]:
        """Set (``mode`` None: remove) one version's retention, as the rules allow."""
        return self._core.commit(
            lambda t: fr.put_retention(
                t, bucket, key, version_id, mode, until_ms, bypass_governance
            )
        )

    def put_legal_hold(
        self, bucket: str, key: str, version_id: str | None, on: bool
    ) -> Deferred[ObjectVersion]:
        """Put one version under a legal hold (``on``) or lift it."""
        return self._core.commit(lambda t: fr.put_legal_hold(t, bucket, key, version_id, on))
