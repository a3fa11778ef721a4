"""Injectable clocks. The simulator never reads the system time directly, so tests can move
time (token expiry, daily quota, rate windows) without sleeping."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from blingsync.simulator.model import BRT


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (wall clock, may be shifted)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards."""


class SystemClock:
    """Real time plus an adjustable offset (the admin API can move a running simulator forward)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.offset += seconds


class ManualClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        self._mono += seconds


def now_brt(clock: Clock) -> datetime:
    """The clock's current time in Brasília."""
    return datetime.fromtimestamp(clock.time(), BRT)
