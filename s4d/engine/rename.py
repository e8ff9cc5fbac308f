"""RenameObject: a key or a whole prefix in one metadata transaction.

The rules live in :mod:`s4d.features.rename`.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from s4d.engine.core import EngineCore
from s4d.features import rename as fr


class RenameFacade:
    """Renames over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def rename(self, request: fr.Rename) -> Deferred[fr.RenameOutcome]:
        """Rename a key or a prefix; fires once the new names are durable."""
        now = self._core.now_ns()
        return self._core.commit(lambda t: fr.rename(t, request, now))
