"""Bling's limits: 3 requests/s and 120,000/day per Bling account (all apps and both API
generations together), and the optional IP blocks (600 requests or 300 errors in 10 s block the
IP for 10 minutes; 20 calls to /oauth/token in 60 s block it for 60 minutes).

The per-second limit is a sliding window: a request is accepted when fewer than `per_second`
requests of that account were accepted in the preceding second. Refused requests do not count.
The day is Brasília's calendar day.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from blingsync.simulator.clock import Clock
from blingsync.simulator.model import BRT


@dataclass
class LimitSettings:
    enabled: bool = True
    per_second: int = 3
    per_day: int = 120_000
    ip_block: bool = False
    ip_requests: int = 600
    ip_errors: int = 300
    ip_window: float = 10.0
    ip_block_seconds: float = 600.0
    token_calls: int = 20
    token_window: float = 60.0
    token_block_seconds: float = 3600.0


@dataclass
class Verdict:
    allowed: bool
    period: str = ""  # "second" or "day" when refused
    limit: int = 0


@dataclass
class _AccountWindow:
    accepted: deque[float] = field(default_factory=deque)
    day: str = ""
    day_count: int = 0
    burst_left: int = 0  # injected 429s still to answer (faults)


class RateLimiter:
    def __init__(self, clock: Clock, settings: LimitSettings) -> None:
        self.clock = clock
        self.settings = settings
        self._accounts: dict[int, _AccountWindow] = {}

    def _window(self, account: int) -> _AccountWindow:
        return self._accounts.setdefault(account, _AccountWindow())

    def inject_burst(self, account: int, count: int) -> None:
        self._window(account).burst_left += count

    def check(self, account: int) -> Verdict:
        """Decide on one request of `account` and record it when accepted."""
        s = self.settings
        w = self._window(account)
        if w.burst_left > 0:
            w.burst_left -= 1
            return Verdict(False, "second", s.per_second)
        now = self.clock.monotonic()
        today = datetime.fromtimestamp(self.clock.time(), BRT).date().isoformat()
        if w.day != today:
            w.day, w.day_count = today, 0
        if s.enabled:
            if w.day_count >= s.per_day:
                return Verdict(False, "day", s.per_day)
            while w.accepted and now - w.accepted[0] >= 1.0:
                w.accepted.popleft()
            if len(w.accepted) >= s.per_second:
                return Verdict(False, "second", s.per_second)
            w.accepted.append(now)
        w.day_count += 1  # counted even when not enforced: the admin API reports it
        return Verdict(True)

    def used_today(self, account: int) -> int:
        return self._window(account).day_count

    def reset(self) -> None:
        self._accounts.clear()


@dataclass
class _IpWindow:
    requests: deque[float] = field(default_factory=deque)
    errors: deque[float] = field(default_factory=deque)
    token_calls: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    reason: str = ""


class IpGuard:
    """The IP-block rules. Off unless `LimitSettings.ip_block` is set."""

    def __init__(self, clock: Clock, settings: LimitSettings) -> None:
        self.clock = clock
        self.settings = settings
        self._ips: dict[str, _IpWindow] = {}

    @staticmethod
    def _trim(q: deque[float], now: float, window: float) -> None:
        while q and now - q[0] >= window:
            q.popleft()

    def admit(self, ip: str, *, token_call: bool) -> float:
        """Record one request from `ip`; return the seconds of block left (0 = go ahead).

        The request that crosses a threshold is itself refused, and so is everything after it
        until the block ends."""
        s = self.settings
        if not s.ip_block:
            return 0.0
        now = self.clock.monotonic()
        w = self._ips.setdefault(ip, _IpWindow())
        if w.blocked_until > now:
            return w.blocked_until - now
        w.requests.append(now)
        self._trim(w.requests, now, s.ip_window)
        if token_call:
            w.token_calls.append(now)
            self._trim(w.token_calls, now, s.token_window)
        if len(w.requests) > s.ip_requests:
            self._block(w, now, s.ip_block_seconds, "requests")
        elif len(w.token_calls) > s.token_calls:
            self._block(w, now, s.token_block_seconds, "token")
        return max(0.0, w.blocked_until - now)

    def record_error(self, ip: str) -> None:
        """Count an answered error (status >= 400) of `ip`; blocks once over the limit."""
        s = self.settings
        if not s.ip_block:
            return
        now = self.clock.monotonic()
        w = self._ips.setdefault(ip, _IpWindow())
        w.errors.append(now)
        self._trim(w.errors, now, s.ip_window)
        if len(w.errors) > s.ip_errors:
            self._block(w, now, s.ip_block_seconds, "errors")

    @staticmethod
    def _block(w: _IpWindow, now: float, seconds: float, reason: str) -> None:
        w.blocked_until = max(w.blocked_until, now + seconds)
        w.reason = reason
        w.requests.clear()
        w.errors.clear()
        w.token_calls.clear()

    def reset(self) -> None:
        self._ips.clear()
