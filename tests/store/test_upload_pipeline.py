"""The upload pipeline: chunks gathered from received pieces, hashed apart, stored in order."""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from s4d.engine import upload as up
from s4d.engine.core import EngineCore
from s4d.engine.upload import BodyDigests, DeclaredDigests, InflightBudget, StagedBody, Upload
from s4d.util import checksums as ck
from s4d.util.threads import InlineRunner
from tests.store.helpers import open_store


def result_of(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


class UploadPipelineTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = open_store(self, chunk_size=64 << 10)
        self.core = EngineCore(self.store, InlineRunner(), lambda f, *a: f(*a))

    def upload(self, data: bytes, rng: random.Random) -> StagedBody:
        sha = hashlib.sha256(data).hexdigest()
        digests = BodyDigests(DeclaredDigests(None, sha, {"CRC32C": None}))
        upload = Upload(self.core, digests.hashers)
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            size = rng.choice([1, 7, 100, 4000, 16 << 10, 20_000, 64 << 10, 70_000, 300_000])
            upload.write(bytes(view[offset : offset + size]))
            offset += size
        staged = result_of(upload.finish(digests, {}))
        assert isinstance(staged, StagedBody)
        return staged

    def test_digests_and_chunks_match_sequential(self) -> None:
        rng = random.Random(16)
        for size in [0, 1, 5000, 64 << 10, (64 << 10) + 1, 1_000_000, 3 * (64 << 10) - 3]:
            data = os.urandom(size)
            staged = self.upload(data, rng)
            self.assertEqual(staged.size, size)
            self.assertEqual(staged.md5_hex, hashlib.md5(data).hexdigest())
            crc = ck.new_checksum("CRC32C")
            crc.update(data)
            self.assertEqual(staged.checksums, {"CRC32C": crc.b64()})
            chunk_size = self.store.config.chunk_size
            self.assertEqual(
                [c.ref.size for c in staged.chunks],
                [min(chunk_size, size - i) for i in range(0, size, chunk_size)],
            )
            locations = [c.location for c in staged.chunks]
            self.assertNotIn(None, locations)  # random bytes: nothing to deduplicate
            stored = b"".join(self.store.read_chunk(loc) for loc in locations if loc is not None)
            self.assertEqual(stored, data)

    def test_budget_is_given_back(self) -> None:
        self.upload(os.urandom(500_000), random.Random(1))
        self.assertEqual(up.BUDGET.used, 0)


class BudgetTests(SynchronousTestCase):
    def test_waiters_resume_once_half_the_room_is_back(self) -> None:
        budget = InflightBudget(100)
        resumed: list[str] = []
        budget.used = 150
        self.assertTrue(budget.full)
        budget.wait(lambda: resumed.append("a") or True)
        budget.wait(lambda: False)  # an upload still over its own limit
        budget.landed(60)  # 90 in use: not yet half
        self.assertEqual(resumed, [])
        budget.landed(40)  # 50 in use
        self.assertEqual(resumed, ["a"])
        self.assertFalse(budget.full)
        self.assertEqual(len(budget._waiting), 1)
