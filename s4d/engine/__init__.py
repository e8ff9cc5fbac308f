"""The asynchronous facade over the store: the only package that hands work to threads.

:class:`Engine` is one store's set of facades, each for one area: buckets,
objects, multipart uploads, renames and maintenance. Handlers depend on one
facade at a time and get Deferreds back. Blocking work (LMDB reads, segment
reads and appends, hashing) runs through an injected
:class:`~s4d.util.threads.Runner`; metadata changes go to the store's group
committer and come back through ``call_from_thread``.

What this package exports is the engine's public surface: the layers above
(:mod:`s4d.s3`, the admin API) import from here and from nowhere below.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from s4d.engine.buckets import BucketsFacade
from s4d.engine.core import EngineCore
from s4d.engine.directory import Directory, KeyEntry, UserEntry
from s4d.engine.maintenance import MaintenanceBusy, MaintenanceFacade
from s4d.engine.multipart import MultipartFacade
from s4d.engine.objects import CopySourceConditions, ObjectsFacade, OpenObject
from s4d.engine.rename import RenameFacade
from s4d.engine.types import *  # noqa: F403 - the record types are part of the surface
from s4d.engine.types import __all__ as _types
from s4d.engine.upload import (
    MAX_INFLIGHT,
    BodyDigests,
    DeclaredDigests,
    Hasher,
    StagedBody,
    Upload,
    UploadedBody,
    WholeBody,
)
from s4d.engine.users import KeyInfo, LoginUser, NewKey, UserInfo, UsersFacade
from s4d.features.iam import ROLES, IdentityError
from s4d.store.store import Store
from s4d.util.passwords import DEFAULT_COST, ScryptCost
from s4d.util.sealing import SecretBox
from s4d.util.threads import Runner

#: The server key that seals secret keys, in the data directory.
SERVER_KEY_FILE = "server.key"


class Engine:
    """Asynchronous access to one :class:`~s4d.store.store.Store`, area by area.

    :param runner: runs blocking calls (a thread pool in the service).
    :param call_from_thread: ``reactor.callFromThread`` (or a direct call in tests).
    :param now_ns: the clock for modification times.
    :param password_cost: scrypt's work factors for new password hashes (tests lower them).
    """

    def __init__(
        self,
        store: Store,
        runner: Runner,
        call_from_thread: Callable[..., Any],
        now_ns: Callable[[], int] = time.time_ns,
        password_cost: ScryptCost = DEFAULT_COST,
    ) -> None:
        self.core = EngineCore(store, runner, call_from_thread, now_ns)
        self.buckets = BucketsFacade(self.core)
        self.objects = ObjectsFacade(self.core)
        self.multipart = MultipartFacade(self.core)
        self.renames = RenameFacade(self.core)
        self.maintenance = MaintenanceFacade(self.core)
        box = SecretBox(os.path.join(store.config.data_dir, SERVER_KEY_FILE))
        #: synchronous, cached look-ups of keys, users and bucket owners (the request path)
        self.directory = Directory(store, box)
        self.users = UsersFacade(
            self.core, box, password_cost, lambda: self.directory.configured_keys
        )

    @property
    def store(self) -> Store:
        """The store underneath (for the composition root and tests)."""
        return self.core.store

    def stop(self) -> None:
        """Tell background passes in flight to end early (the service is stopping)."""
        self.core.stopping.set()


__all__ = [
    "CopySourceConditions",
    "MAX_INFLIGHT",
    "BodyDigests",
    "BucketsFacade",
    "DeclaredDigests",
    "Directory",
    "Engine",
    "EngineCore",
    "Hasher",
    "IdentityError",
    "KeyEntry",
    "KeyInfo",
    "LoginUser",
    "MaintenanceBusy",
    "MaintenanceFacade",
    "MultipartFacade",
    "NewKey",
    "ROLES",
    "ObjectsFacade",
    "OpenObject",
    "RenameFacade",
    "StagedBody",
    "Upload",
    "UploadedBody",
    "UserEntry",
    "UserInfo",
    "UsersFacade",
    "WholeBody",
    *_types,
]
