"""The login throttle: free failures, doubling delays, forgetting, bounds.

Strategy: the throttle reads a clock that is a plain variable; each test
drives failures and successes and reads :meth:`LoginThrottle.wait`.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from s4d.admin import throttle
from s4d.admin.throttle import LoginThrottle


class ThrottleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.now = 1000.0
        self.throttle = LoginThrottle(lambda: self.now, free_per_name=3, free_per_address=10)

    def fail(self, n: int, name: str = "root", address: str = "10.0.0.1") -> None:
        for _ in range(n):
            self.throttle.failed(name, address)

    def test_free_failures_then_doubling_delays(self) -> None:
        self.fail(3)
        self.assertEqual(self.throttle.wait("root", "10.0.0.1"), 0)
        delays = []
        for _ in range(4):
            self.fail(1)
            delays.append(self.throttle.wait("root", "10.0.0.1"))
        self.assertEqual(delays, [1.0, 2.0, 4.0, 8.0])
        self.now += 7.5
        self.assertEqual(self.throttle.wait("root", "10.0.0.1"), 0.5)
        # the name is closed from every address
        self.assertEqual(self.throttle.wait("root", "10.9.9.9"), 0.5)
        self.assertEqual(self.throttle.wait("alice", "10.0.0.2"), 0)

    def test_delay_has_a_ceiling(self) -> None:
        self.fail(40)
        self.assertEqual(self.throttle.wait("root", "x"), throttle.MAX_DELAY)

    def test_per_address_across_names(self) -> None:
        for i in range(11):
            self.throttle.failed(f"user{i}", "10.0.0.7")
        self.assertEqual(self.throttle.wait("fresh", "10.0.0.7"), 1.0)
        self.assertEqual(self.throttle.wait("fresh", "10.0.0.8"), 0)

    def test_success_clears(self) -> None:
        self.fail(5)
        self.throttle.succeeded("root", "10.0.0.1")
        self.assertEqual(self.throttle.wait("root", "10.0.0.1"), 0)
        self.fail(3)
        self.assertEqual(self.throttle.wait("root", "10.0.0.1"), 0)

    def test_forgotten_after_a_quiet_spell(self) -> None:
        self.fail(5)
        self.now += throttle.FORGET_AFTER + 1
        self.assertEqual(self.throttle.wait("root", "10.0.0.1"), 0)
        self.fail(3)
        self.assertEqual(self.throttle.wait("root", "10.0.0.1"), 0)

    def test_memory_is_bounded(self) -> None:
        for i in range(throttle.MAX_ENTRIES + 50):
            self.throttle.failed(f"u{i}", "a")
        self.assertEqual(len(self.throttle._names.records), throttle.MAX_ENTRIES)
