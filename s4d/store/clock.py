"""The clocks the store reads: injected, so tests can drive time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    """Wall clock, monotonic clock and sleep, as one value passed down from the :class:`Store`.

    :param wall: seconds since the Unix epoch (``time.time``).
    :param monotonic: seconds on a clock that never goes back (``time.monotonic``).
    :param sleep: block for a number of seconds (``time.sleep``).
    """

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


#: the real clocks
SYSTEM_CLOCK = Clock()
