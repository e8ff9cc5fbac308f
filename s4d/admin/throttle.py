"""Slowing down password guessing at login, per user name and per client address.

Each failed login counts against the user name tried and against the address
it came from. The first few failures are free (a typo costs nothing); after
them, each further failure closes that name (or address) for a delay that
doubles with every failure, up to a ceiling; a login attempted while closed is
answered at once with the seconds left, without checking the password, so a
guesser gets a handful of tries per doubling interval instead of thousands a
second. A success clears the name's count (and the address's). Counts are
forgotten after a quiet spell. Memory is bounded: the oldest entries are
dropped first. The clock is injected (``IReactorTime.seconds``).

The count lives in each server process: with ``S4_WORKERS=N`` a guesser whose
connections land on every process gets N times the tries.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Free failures per user name, and per client address, before delays begin.
FREE_PER_NAME = 5
FREE_PER_ADDRESS = 20
#: The first delay (seconds); each further failure doubles it, up to MAX_DELAY.
FIRST_DELAY = 1.0
MAX_DELAY = 900.0
#: A name or address without a failure for this long starts again from zero.
FORGET_AFTER = 3600.0
#: Most names (and addresses) remembered.
MAX_ENTRIES = 10_000


@dataclass
class _Record:
    failures: int = 0
    closed_until: float = 0.0
    last: float = 0.0


class _Counter:
    def __init__(self, free: int) -> None:
        self.free = free
        self.records: OrderedDict[str, _Record] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        record = self.records.get(key)
        if record is None:
            return 0.0
        if now - record.last > FORGET_AFTER:
            del self.records[key]
            return 0.0
        return max(0.0, record.closed_until - now)

    def fail(self, key: str, now: float) -> None:
        record = self.records.pop(key, None) or _Record()
        if now - record.last > FORGET_AFTER:
            record = _Record()
        record.failures += 1
        record.last = now
        over = record.failures - self.free
        if over > 0:
            record.closed_until = now + min(MAX_DELAY, FIRST_DELAY * 2.0 ** min(over - 1, 30))
        self.records[key] = record
        while len(self.records) > MAX_ENTRIES:
            self.records.popitem(last=False)

    def clear(self, key: str) -> None:
        self.records.pop(key, None)


class LoginThrottle:
    """Failed-login accounting for one process.

    :param now: seconds (``reactor.seconds``).
    """

    def __init__(
        self,
        now: Callable[[], float],
        free_per_name: int = FREE_PER_NAME,
        free_per_address: int = FREE_PER_ADDRESS,
    ) -> None:
        self.now = now
        self._names = _Counter(free_per_name)
        self._addresses = _Counter(free_per_address)

    def wait(self, username: str, address: str) -> float:
        """Seconds before ``username`` may try again from ``address`` (0: now)."""
        now = self.now()
        return max(self._names.wait(username, now), self._addresses.wait(address, now))

    def failed(self, username: str, address: str) -> None:
        """Count a failed login."""
        now = self.now()
        self._names.fail(username, now)
        self._addresses.fail(address, now)

    def succeeded(self, username: str, address: str) -> None:
        """Forget the failures of a name (and address) that just logged in."""
        self._names.clear(username)
        self._addresses.clear(address)
