"""The asynchronous facade over the store: the only package that hands work to threads.

:class:`Engine` is one store's set of facades, each for one area: buckets,
objects, multipart uploads, renames, object lock and maintenance. Handlers depend on one
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

from s4d.engine.admin import AdminFacade, StoreOverview
from s4d.engine.buckets import BucketsFacade
from s4d.engine.configs import ConfigCache
from s4d.engine.core import EngineCore
from s4d.engine.directory import ACCESS_DOCUMENTS, BucketEntry, Directory, KeyEntry, UserEntry
from s4d.engine.lifecycle import LifecycleFacade, LifecycleReport
from s4d.engine.lock import LockFacade
from s4d.engine.maintenance import (
    EngineFigures,
    MaintenanceBusy,
    MaintenanceFacade,
    MaintenanceTotals,
)
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
from s4d.features.bucket_contents import BucketUsage
from s4d.features.bucket_names import check_bucket_name
from s4d.features.iam import ROLES, IdentityError
from s4d.features.lifecycle import DAY_NS, DayClock
from s4d.features.lifecycle_sweep import Limits as LifecycleLimits
from s4d.store.compaction import CompactionReport
from s4d.store.scrub import ScrubReport
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
    :param now_ns: the clock for modification times (and lifecycle verdicts).
    :param lifecycle_day_ns: how long a lifecycle day is (shorter only for tests).
    :param password_cost: scrypt's work factors for new password hashes (tests lower them).
    """

    def __init__(
        self,
        store: Store,
        runner: Runner,
        call_from_thread: Callable[..., Any],
        now_ns: Callable[[], int] = time.time_ns,
        lifecycle_day_ns: int = DAY_NS,
        password_cost: ScryptCost = DEFAULT_COST,
    ) -> None:
        self.core = EngineCore(store, runner, call_from_thread, now_ns)
        #: bucket configuration documents (CORS, lifecycle) cached in this process
        self.configs = ConfigCache(self.core)
        self.buckets = BucketsFacade(self.core, self.configs)
        self.lifecycle = LifecycleFacade(self.core, self.configs, DayClock(lifecycle_day_ns))
        self.objects = ObjectsFacade(self.core)
        self.multipart = MultipartFacade(self.core)
        self.renames = RenameFacade(self.core)
        self.locks = LockFacade(self.core)
        self.maintenance = MaintenanceFacade(self.core)
        self.admin = AdminFacade(self.core)
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
    "AdminFacade",
    "BucketUsage",
    "CompactionReport",
    "ScrubReport",
    "EngineFigures",
    "MaintenanceTotals",
    "StoreOverview",
    "check_bucket_name",
    "CopySourceConditions",
    "MAX_INFLIGHT",
    "BodyDigests",
    "BucketsFacade",
    "ConfigCache",
    "DeclaredDigests",
    "ACCESS_DOCUMENTS",
    "BucketEntry",
    "Directory",
    "Engine",
    "EngineCore",
    "Hasher",
    "DAY_NS",
    "LifecycleFacade",
    "LifecycleLimits",
    "LifecycleReport",
    "LockFacade",
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
