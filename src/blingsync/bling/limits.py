"""Client-side pacing within Bling's limits, so that Bling never has to refuse us.

Bling's rules (reference §0 item 3 and §3.4, mirrored by the simulator):

* per Bling account, all apps and both API generations together: **3 requests per second**,
  judged by a *sliding* one-second window on arrival (a request is accepted when fewer than 3 of
  that account's requests were accepted in the preceding second), and **120,000 per Brasília
  calendar day**;
* per client IP: more than 600 requests or more than 300 error answers in 10 s block the IP for
  10 minutes; more than 20 calls to ``/oauth/token`` in 60 s block it for an hour.

What lives here, and why each piece exists:

* :class:`Clock` — every wait goes through an injectable clock, so tests of pacing run on
  :class:`FakeClock` in milliseconds and deterministically.
* :class:`AccountLimiter` — the 3 req/s pacing, the daily budget and the 429 reactions of one
  account. There must be exactly one per account per process (:class:`LimiterRegistry`), because
  Bling counts the account, not the caller.
* :class:`IpGuard` — one per process (= per IP): keeps us far below the IP-ban thresholds, whose
  price (10 to 60 minutes of nothing, for every account) is out of all proportion to a short wait.

All of this is asyncio, single event loop, single thread: state is only read and written between
``await`` points, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from blingsync.bling.errors import RateLimited
from blingsync.domain import BRASILIA, brasilia_day, next_brasilia_midnight

BLING_PER_SECOND = 3
BLING_PER_DAY = 120_000

_EPSILON = 1e-9
"""Waits shorter than this are float noise, not a reason to sleep again."""

_STALE_AFTER = 120.0
"""A permit never reported done is assumed finished after this long (longer than any request
can live with :data:`blingsync.bling.retry.DEFAULT_TIMEOUT`), so forgotten permits cannot pile up."""


# --- clocks ----------------------------------------------------------------------------------


class Clock(Protocol):
    """The time source of the client side. Production uses :class:`SystemClock`; tests use
    :class:`FakeClock` so that a minute of pacing costs no real time."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards: for intervals."""
        ...

    def time(self) -> float:
        """Seconds since the epoch: for calendar questions (which Brasília day is it?)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """Real time: :func:`time.monotonic`, :func:`time.time` and :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Virtual time for tests: sleeping costs no real time, yet concurrent sleepers wake in the
    right order at the right virtual instants.

    Each :meth:`sleep` registers a deadline. A driver task lets every runnable task run (it
    yields to the event loop until nothing else is runnable), then jumps virtual time to the
    earliest deadline and wakes whoever is due ("autojump", as in trio's MockClock). This is
    exact for code whose only waiting is on this clock (no real I/O), which is what pacing
    tests are.
    :meth:`advance` moves time by hand, waking sleepers that become due.
    """

    def __init__(self, start: float | datetime = 1_795_000_000.0, *, monotonic_start: float = 1000.0,
                 settle_rounds: int = 50) -> None:
        self._wall = start.timestamp() if isinstance(start, datetime) else float(start)
        self._mono = monotonic_start
        self.settle_rounds = settle_rounds
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._mono += seconds
        self._wall += seconds
        self._wake_due()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await fut

    async def _settle(self) -> None:
        """Let every runnable task run until all of them wait (on this clock or on each other).

        On the standard event loop "nothing else is ready" is read from the loop's ready queue;
        on another loop, `settle_rounds` passes of the loop are taken to be enough."""
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        for _ in range(self.settle_rounds if not isinstance(ready, deque) else 10_000):
            await asyncio.sleep(0)
            if isinstance(ready, deque) and not ready:
                return

    async def _drive(self) -> None:
        while True:
            await self._settle()
            while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            deadline = self._sleepers[0][0]
            if deadline > self._mono:
                self._wall += deadline - self._mono
                self._mono = deadline
            self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)


# --- calendar --------------------------------------------------------------------------------


def minimum_duration(n_requests: int, per_second: int = BLING_PER_SECOND, window: float = 1.0) -> float:
    """The least time, from the first send to the last, that `n_requests` of one account can
    take under a sliding window of `per_second` per `window` seconds.

    The window lets `per_second` requests go at once; the next group may go only when the first
    of the previous group has left the window. So request *k* (0-based) can go no earlier than
    ``(k // per_second) * window`` and the last one, *n − 1*, sets the minimum:
    ``((n − 1) // per_second) * window`` — 0 s for up to 3 requests, 1 s for 4 to 6, 333 s for
    1,000. (A spacing of 1/3 s would instead give (n − 1)/3 s: 9.67 s instead of 9 s for 30.)
    """
    if per_second < 1:
        raise ValueError("per_second must be at least 1")
    if n_requests <= 0:
        return 0.0
    return ((n_requests - 1) // per_second) * window


# --- errors ----------------------------------------------------------------------------------


class DailyBudgetExhausted(RateLimited):
    """This account may not call Bling again before `resume_at` (aware, Brasília).

    A :class:`~blingsync.bling.errors.RateLimited` with ``period="day"``, so it sits in the one
    error tree. Raised by :meth:`AccountLimiter.acquire` either because our own count reached
    the daily limit minus the headroom (`by_bling` False), or because Bling answered a 429 with
    ``period: "day"`` (:meth:`AccountLimiter.stop_until`, `by_bling` True). It is not the user's
    doing and needs no action: the account resumes by itself at `resume_at`.
    """

    def __init__(self, resume_at: datetime, *, used: int | None = None, limit: int | None = None,
                 headroom: int | None = None, by_bling: bool = False,
                 retry_after: float | None = None, **kwargs: Any) -> None:
        self.used = used
        self.headroom = headroom
        self.by_bling = by_bling
        if not by_bling and "user_message" not in kwargs:
            local = resume_at.astimezone(BRASILIA)
            kwargs["user_message"] = (
                f"This Bling account has used {used or 0:,} of its {limit or BLING_PER_DAY:,} daily API "
                f"requests; blingsync keeps the last {headroom or 0:,} in reserve for the other apps "
                f"connected to it. The account is paused until {local:%H:%M} Brasília time on "
                f"{local:%Y-%m-%d} and resumes on its own."
            )
        super().__init__(period="day", resume_at=resume_at, retry_after=retry_after, limit=limit,
                         **kwargs)

    def _details(self) -> dict[str, object]:
        return {**super()._details(), "used": self.used, "headroom": self.headroom,
                "by_bling": self.by_bling}


# --- the per-account limiter -----------------------------------------------------------------


@dataclass(frozen=True)
class LimiterSettings:
    """How one account is paced. The defaults are Bling's limits with safety margins.

    * `margin`: added to the one-second window, because Bling times arrival, not our send.
    * `max_margin`, `margin_memory`: how far :meth:`AccountLimiter.pause` may widen the margin
      after a 429 that our own pacing caused, and for how long the widening is remembered.
    * `daily_headroom`: requests per day left unused, for the user's other apps and for Bling's
      count being ahead of ours.
    * `pause_jitter`: up to this much is added at random to every 429 pause, so that processes
      sharing an account do not all come back at the same instant.
    * `latency_aware`: charge a request's round trip beyond the fastest recent one to its
      assumed arrival (see :class:`AccountLimiter`). Off by default.
    """

    per_second: int = BLING_PER_SECOND
    window: float = 1.0
    margin: float = 0.030
    max_margin: float = 0.25
    margin_memory: float = 600.0
    daily_limit: int = BLING_PER_DAY
    daily_headroom: int = 2_000
    pause_jitter: float = 0.25
    latency_aware: bool = False

    def __post_init__(self) -> None:
        if self.per_second < 1 or self.window <= 0 or self.pause_jitter < 0:
            raise ValueError("per_second ≥ 1, window > 0 and pause_jitter ≥ 0")
        if not 0 <= self.margin <= self.max_margin:
            raise ValueError("margin must be in [0, max_margin]")
        if not 0 <= self.daily_headroom < self.daily_limit:
            raise ValueError("daily_headroom must be in [0, daily_limit)")


_LATENCY_SAMPLES = 32
"""Round trips remembered for the latency-aware floor (the fastest of them)."""

_LATENCY_WARMUP = 8
"""Until this many round trips are known, the floor is 0: the whole round trip is charged.
A floor guessed from the first two or three samples is too high, and every request faster
than it would arrive earlier than assumed."""

_EDGE_SLACK = 0.005
"""A grant this close to the edge of the window still counts as "paced by the window"."""


@dataclass
class _Sent:
    granted: float  # monotonic instant the permit was granted (our earliest possible send)
    paced: bool  # it waited for the window (per_second others in the window + margin before it)
    latency: float | None = None  # grant to done(), once reported
    done: bool = False


class Permit:
    """One granted request. :meth:`done` reports that its answer (or failure) arrived; the
    ``slot()`` context manager calls it for you. Give the permit of a request Bling refused
    with a ``period: "second"`` 429 to :meth:`AccountLimiter.pause`, so the limiter can tell
    whether its own pacing was to blame."""

    __slots__ = ("_entry", "_limiter")

    def __init__(self, limiter: AccountLimiter, entry: _Sent) -> None:
        self._limiter = limiter
        self._entry = entry

    @property
    def granted_at(self) -> float:
        """The limiter clock's monotonic instant of the grant."""
        return self._entry.granted

    @property
    def paced(self) -> bool:
        """Whether this request went out at the edge of the one-second window (waited for it)."""
        return self._entry.paced

    def done(self) -> None:
        """Report that the request is over (idempotent)."""
        if not self._entry.done:
            self._limiter._finished(self._entry)


class _FifoGate:
    """First come, first served: only the head of the queue may look at the clock and decide;
    everyone else waits for their turn. This is what makes waiters FIFO and keeps a newcomer
    from slipping in front of someone who has been sleeping for their slot."""

    def __init__(self) -> None:
        self._queue: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> asyncio.Future[None]:
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(ticket)
        if self._queue[0] is ticket:
            ticket.set_result(None)
        try:
            await ticket
        except BaseException:
            self.leave(ticket)
            raise
        return ticket

    def leave(self, ticket: asyncio.Future[None]) -> None:
        was_head = bool(self._queue) and self._queue[0] is ticket
        try:
            self._queue.remove(ticket)
        except ValueError:
            return
        if was_head and self._queue and not self._queue[0].done():
            self._queue[0].set_result(None)

    def __len__(self) -> int:
        return len(self._queue)


class AccountLimiter:
    """Every request of one Bling account in this process goes through here.

    ``async with limiter.slot():`` (or ``permit = await limiter.acquire()`` … ``permit.done()``)
    waits until the request may go out; the caller then sends it at once.

    **Pacing: a sliding log of the last send times, mirroring Bling's own rule.** Bling accepts a
    request when fewer than 3 were accepted in the preceding second. The greatest throughput that
    never trips that rule is to do exactly what it allows: 3 requests at once, the 4th when the
    1st is one second old, and so on — request *k* waits for request *k − 3* + 1 s. That reaches
    :func:`minimum_duration` (30 requests in 9 s). The alternatives are worse: a token bucket of
    capacity 1 at 3/s spaces requests 1/3 s apart, 9.67 s for 30 (7% over the minimum; no
    burst for concurrent callers); a token bucket of capacity 3 refilling at 3/s is *unsafe*:
    after a burst of 3 at t = 0 it allows a 4th at t = 1/3, which the sliding window refuses.

    **Safety.** Bling times arrivals; we know our grants. Request *k* goes out no earlier than
    ``window + margin`` after the 3rd-latest assumed arrival of the requests before it, which
    proves that no four arrivals share a one-second window as long as each request reaches Bling
    within `margin` (30 ms) of when it was granted, *relative to the others* (a delay every
    request shares cancels out). Within one event loop, grant-to-send takes well under a
    millisecond and network jitter on a kept-alive connection is a few ms, but a server that counts
    a request when its handler starts (after the previous, heavier answer was rendered) records
    arrivals up to a few tens of ms late relative to each other; 30 ms covers that and costs 3%
    of throughput (30 calls: 9.27 s against 9 s), within the 5% we allow. Beyond that:

    * **Self-correcting margin.** A 429 ``period: "second"`` for a request that went out at the
      edge of the window (:attr:`Permit.paced`) proves the margin was too thin on this link:
      :meth:`pause` doubles it plus 10 ms (30 → 70 → 150 → 250 ms at most), and it returns
      to `margin` after `margin_memory` (10 min) without another such 429. A 429 for a request
      that did not wait for the window (after a pause, another app using the account, an
      injected burst) says nothing about our pacing and widens nothing.
    * **Latency-aware (opt-in).** A reported round trip beyond the fastest recent one may all
      have been spent *before* Bling counted the request (a new connection, a pool wait, the
      simulator's injected latency), so the request's assumed arrival moves that much later.
      This keeps 429s away when delays before arrival vary (the simulator's ``latency=20-80ms``
      fault: zero refusals where the plain margin gets hundreds), but it also charges Bling's
      processing time, which varies far more than network delays, so against real Bling it
      costs throughput (about 25% with 0.1–0.6 s answers); hence off by default. A request
      still in flight is taken to have arrived at its grant: waiting for it would stall the
      account for a whole timeout on any hung request, while being wrong costs one 429.

    **Fairness.** Waiters are served strictly in arrival order (:class:`_FifoGate`).

    **Daily budget.** Grants are counted per Brasília day (refused requests too: we cannot know,
    and over-counting errs on the safe side). Once ``used ≥ daily_limit − daily_headroom`` every
    acquire raises :class:`DailyBudgetExhausted` until Brasília midnight. The count can be
    seeded (`used_today`, `used_on`) from a store that persists it.

    **429s.** :meth:`pause` (a ``period: "second"`` 429, or a ``Retry-After``) holds every caller
    of the account; :meth:`stop_until` (a ``period: "day"`` 429) makes every acquire raise until
    then. A caller already sleeping for its slot notices either when its current sleep ends.
    """

    def __init__(self, settings: LimiterSettings | None = None, *, clock: Clock | None = None,
                 rng: random.Random | None = None, used_today: int = 0,
                 used_on: date | None = None) -> None:
        self.settings = settings or LimiterSettings()
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._gate = _FifoGate()
        self._sent: list[_Sent] = []
        self._latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._margin = self.settings.margin
        self._widened_at = -math.inf
        self._paused_until = -math.inf
        self._stopped_until: datetime | None = None
        today = brasilia_day(self._clock.time())
        self._day = today
        self._used = used_today if used_on in (None, today) else 0

    # -- acquiring --

    async def acquire(self) -> Permit:
        """Wait for this account's next request slot; raise :class:`DailyBudgetExhausted` when
        the account may not call Bling before some later time."""
        self._refuse_if_out_of_budget()
        ticket = await self._gate.enter()
        try:
            after_pause = False
            while True:
                self._refuse_if_out_of_budget()
                wait, pause_bound = self._wait_needed(self._clock.monotonic())
                if wait <= _EPSILON:
                    break
                after_pause = pause_bound
                await self._clock.sleep(wait)
            entry = self._grant(self._clock.monotonic(), after_pause=after_pause)
            return Permit(self, entry)
        finally:
            self._gate.leave(ticket)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit]:
        """``async with limiter.slot():`` send the request inside; it is reported done on exit."""
        permit = await self.acquire()
        try:
            yield permit
        finally:
            permit.done()

    # -- reacting to Bling --

    def pause(self, seconds: float, *, refused: Permit | None = None) -> None:
        """Hold every caller of this account for `seconds` plus up to `pause_jitter` at random:
        after a ``period: "second"`` 429 (about one second) or a ``Retry-After``. Pauses never
        shorten one already running.

        `refused`: the permit of the request Bling refused with a ``period: "second"`` 429. When
        it went out at the edge of the window, our margin was too thin and is widened."""
        now = self._clock.monotonic()
        until = now + max(0.0, seconds) + self._rng.uniform(0.0, self.settings.pause_jitter)
        self._paused_until = max(self._paused_until, until)
        if refused is not None and refused.paced:
            self._margin = min(self.settings.max_margin, 2 * self._current_margin(now) + 0.010)
            self._widened_at = now

    def stop_until(self, resume_at: datetime) -> None:
        """After a ``period: "day"`` 429: every acquire raises :class:`DailyBudgetExhausted`
        until `resume_at` (an aware datetime; normally the next Brasília midnight)."""
        if resume_at.tzinfo is None:
            raise ValueError("resume_at must be timezone-aware")
        if self._stopped_until is None or resume_at > self._stopped_until:
            self._stopped_until = resume_at

    # -- reading the state --

    @property
    def used_today(self) -> int:
        """Requests granted on the current Brasília day (including a seeded count)."""
        self._roll_day()
        return self._used

    @property
    def remaining_today(self) -> int:
        """Requests still grantable today before the headroom is reached."""
        s = self.settings
        return max(0, s.daily_limit - s.daily_headroom - self.used_today)

    @property
    def paused_for(self) -> float:
        """Seconds left of the current 429 pause (0 when none)."""
        return max(0.0, self._paused_until - self._clock.monotonic())

    @property
    def margin(self) -> float:
        """The safety margin in force (wider than the setting after a 429 of our making)."""
        return self._current_margin(self._clock.monotonic())

    @property
    def waiting(self) -> int:
        """Callers queued for a slot right now."""
        return len(self._gate)

    # -- internals --

    def _current_margin(self, now: float) -> float:
        if now - self._widened_at >= self.settings.margin_memory:
            self._margin = self.settings.margin
        return self._margin

    def _roll_day(self) -> None:
        today = brasilia_day(self._clock.time())
        if today != self._day:
            self._day, self._used = today, 0

    def _refuse_if_out_of_budget(self) -> None:
        now = self._clock.time()
        if self._stopped_until is not None:
            resume = self._stopped_until.timestamp()
            if now < resume:
                raise DailyBudgetExhausted(self._stopped_until.astimezone(BRASILIA), by_bling=True,
                                           limit=self.settings.daily_limit, retry_after=resume - now)
            self._stopped_until = None
        self._roll_day()
        s = self.settings
        if self._used >= s.daily_limit - s.daily_headroom:
            midnight = next_brasilia_midnight(now)
            raise DailyBudgetExhausted(midnight, used=self._used, limit=s.daily_limit,
                                       headroom=s.daily_headroom,
                                       retry_after=midnight.timestamp() - now)

    def _floor(self) -> float:
        if len(self._latencies) < _LATENCY_WARMUP:
            return 0.0
        return min(self._latencies)

    def _latest_arrival(self, entry: _Sent, floor: float) -> float:
        """The latest instant Bling may have counted `entry`: its grant; when latency-aware and
        its round trip is known, plus whatever that took beyond the fastest recent round trip.
        Computed afresh each time, so a faster round trip seen later re-judges older requests."""
        if entry.latency is None or not self.settings.latency_aware:
            return entry.granted
        return entry.granted + max(0.0, entry.latency - floor)

    def _window_arrivals(self, now: float) -> list[float]:
        """Assumed arrivals of the requests that may still matter, pruning the rest."""
        s = self.settings
        floor = self._floor()
        horizon = now - s.window - s.max_margin
        kept: list[_Sent] = []
        for e in self._sent:
            if not e.done and e.granted < now - _STALE_AFTER:
                e.done = True  # a forgotten permit: its grant stands for its arrival
            if not e.done or self._latest_arrival(e, floor) > horizon:
                kept.append(e)
        self._sent = kept
        return [self._latest_arrival(e, floor) for e in kept]

    def _wait_needed(self, now: float) -> tuple[float, bool]:
        """Seconds to wait before the next grant, and whether the 429 pause (rather than the
        window) is what makes us wait."""
        s = self.settings
        pause = self._paused_until - now
        window = -math.inf
        arrivals = self._window_arrivals(now)
        if len(arrivals) >= s.per_second:
            nth_latest = heapq.nlargest(s.per_second, arrivals)[-1]
            window = nth_latest + s.window + self._current_margin(now) - now
        return max(pause, window), pause > window

    def _grant(self, now: float, *, after_pause: bool) -> _Sent:
        """Record a grant. It is "paced" when it goes out at the edge of the window: a full
        window just behind it, and not merely released by the end of a 429 pause."""
        s = self.settings
        edge = now - s.window - self._current_margin(now) - _EDGE_SLACK
        at_edge = sum(a >= edge for a in self._window_arrivals(now)) >= s.per_second
        entry = _Sent(granted=now, paced=at_edge and not after_pause)
        self._sent.append(entry)
        self._used += 1
        return entry

    def _finished(self, entry: _Sent) -> None:
        entry.done = True
        entry.latency = max(0.0, self._clock.monotonic() - entry.granted)
        self._latencies.append(entry.latency)


# --- the per-IP guard ------------------------------------------------------------------------


@dataclass(frozen=True)
class IpThresholds:
    """Bling's IP-block thresholds: more than `requests` requests or `errors` error answers in
    `window` seconds, or more than `token_calls` calls to the token endpoint in `token_window`."""

    requests: int = 600
    errors: int = 300
    window: float = 10.0
    token_calls: int = 20
    token_window: float = 60.0


@dataclass(frozen=True)
class IpCounts:
    """What the guard counts in its windows right now."""

    requests: int
    errors: int
    token_calls: int


def _wait_for_room(times: deque[float], budget: int, window: float, now: float) -> float:
    """Seconds until fewer than `budget` of `times` (sorted) lie in the last `window`."""
    while times and now - times[0] >= window:
        times.popleft()
    if len(times) < budget:
        return 0.0
    return times[len(times) - budget] + window - now


class IpGuard:
    """Keeps this process (one IP) at a safe fraction of Bling's IP-ban thresholds.

    An IP block stops every account of the process for 10 to 60 minutes, so the guard spends a
    short wait to avoid it: ``await guard.acquire()`` before each request waits while the request
    would make more than `fraction` (50%) of the allowed requests in 10 s, or while error answers
    in the last 10 s already reach that fraction of the error threshold; token-endpoint calls
    (``acquire(token_call=True)``) are capped at `token_cap` (10) per 60 s, never near Bling's 20.
    ``guard.record(status)`` after each answer counts errors (any status ≥ 400, and no answer at
    all: a timed-out request may well have been answered with an error we never saw).

    When Bling says the IP is blocked anyway (``RateLimited(period="ip-block")``), :meth:`block`
    holds every request of the process until the block ends.

    Call it *before* the account limiter, so that the account's grant is immediately followed by
    the send (the guard's 50% margin easily absorbs its own timestamps being early by the
    account's wait). Waiters are served in order.
    """

    def __init__(self, *, clock: Clock | None = None, thresholds: IpThresholds | None = None,
                 fraction: float = 0.5, token_cap: int = 10) -> None:
        if not 0 < fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        t = thresholds or IpThresholds()
        self.thresholds = t
        self._clock: Clock = clock or SystemClock()
        self.request_budget = max(1, math.floor(t.requests * fraction))
        self.error_budget = max(1, math.floor(t.errors * fraction))
        self.token_budget = max(1, min(token_cap, math.floor(t.token_calls * fraction), t.token_calls - 1))
        self._requests: deque[float] = deque()
        self._errors: deque[float] = deque()
        self._tokens: deque[float] = deque()
        self._blocked_until = -math.inf
        self._gate = _FifoGate()

    async def acquire(self, token_call: bool = False) -> None:
        """Wait until one more request (a token call when `token_call`) is safe, and count it."""
        ticket = await self._gate.enter()
        try:
            while True:
                wait = self._wait_needed(self._clock.monotonic(), token_call)
                if wait <= _EPSILON:
                    break
                await self._clock.sleep(wait)
            now = self._clock.monotonic()
            self._requests.append(now)
            if token_call:
                self._tokens.append(now)
        finally:
            self._gate.leave(ticket)

    async def acquire_token_call(self) -> None:
        """``acquire(token_call=True)``: makes the guard an ``auth.TokenCallBudget``."""
        await self.acquire(token_call=True)

    def block(self, seconds: float) -> None:
        """Bling says this IP is blocked (``RateLimited(period="ip-block")``): hold every request
        of the process for `seconds`, since each one sent meanwhile is refused and may extend the
        block. Never shortens a block already held."""
        self._blocked_until = max(self._blocked_until, self._clock.monotonic() + max(0.0, seconds))

    @property
    def blocked_for(self) -> float:
        """Seconds left of a block reported with :meth:`block` (0 when none)."""
        return max(0.0, self._blocked_until - self._clock.monotonic())

    def record(self, status: int | None) -> None:
        """Count the answer of one request: `status` ≥ 400, or None for no answer, is an error."""
        if status is None or status >= 400:
            self._errors.append(self._clock.monotonic())

    def counts(self) -> IpCounts:
        now = self._clock.monotonic()
        t = self.thresholds
        for q, window in ((self._requests, t.window), (self._errors, t.window),
                          (self._tokens, t.token_window)):
            while q and now - q[0] >= window:
                q.popleft()
        return IpCounts(len(self._requests), len(self._errors), len(self._tokens))

    def _wait_needed(self, now: float, token_call: bool) -> float:
        t = self.thresholds
        wait = max(self._blocked_until - now,
                   _wait_for_room(self._requests, self.request_budget, t.window, now),
                   _wait_for_room(self._errors, self.error_budget, t.window, now))
        if token_call:
            wait = max(wait, _wait_for_room(self._tokens, self.token_budget, t.token_window, now))
        return wait


# --- the registry ----------------------------------------------------------------------------


class LimiterRegistry:
    """One :class:`AccountLimiter` per account key and one :class:`IpGuard`, for a process.

    Two clients of the same account must share pacing, or together they send 6 req/s and Bling
    refuses half; so clients get their limiter from here instead of making one. Create one
    registry per process (per event loop) and hand it to every client; the key is whatever
    identifies the Bling account (not the app or the API generation: v2 and v3 share the limit).
    """

    def __init__(self, *, clock: Clock | None = None, settings: LimiterSettings | None = None,
                 ip_guard: IpGuard | None = None, rng: random.Random | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or LimiterSettings()
        self.ip_guard = ip_guard or IpGuard(clock=self.clock)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._limiters: dict[Hashable, AccountLimiter] = {}

    def for_account(self, key: Hashable, *, used_today: int = 0,
                    used_on: date | None = None) -> AccountLimiter:
        """The account's limiter, created on first use (seeded with `used_today` then only)."""
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = AccountLimiter(self.settings, clock=self.clock,
                                     rng=random.Random(self._rng.getrandbits(64)),  # noqa: S311
                                     used_today=used_today, used_on=used_on)
            self._limiters[key] = limiter
        return limiter

    def __contains__(self, key: Hashable) -> bool:
        return key in self._limiters
