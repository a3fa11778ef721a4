"""Client-side pacing (`blingsync.bling.limits`) on virtual time.

Every run here uses `FakeClock`, so a minute of pacing costs milliseconds and the send times are
exact. Safety is judged twice: by the sliding-window arithmetic directly, and by replaying the
arrival times through the simulator's own `RateLimiter` (the rule Bling enforces), which must
refuse nothing.
"""

from __future__ import annotations

import asyncio
import random
from datetime import date, datetime, timedelta

import pytest

from blingsync.bling.errors import RateLimited
from blingsync.bling.limits import (
    BRASILIA,
    AccountLimiter,
    DailyBudgetExhausted,
    FakeClock,
    IpGuard,
    IpThresholds,
    LimiterRegistry,
    LimiterSettings,
    SystemClock,
    brasilia_day,
    minimum_duration,
    next_brasilia_midnight,
)
from blingsync.simulator.clock import ManualClock
from blingsync.simulator.limits import LimitSettings, RateLimiter

MARGIN = LimiterSettings().margin
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=BRASILIA)


def _clock(start: datetime = NOON) -> FakeClock:
    return FakeClock(start)


def max_in_window(times: list[float], window: float) -> int:
    """The most sends inside any half-open window of `window` seconds (checks every window)."""
    ordered = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(ordered):
        while t - ordered[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


def refusals(arrivals: list[float]) -> int:
    """Replay arrival instants through the simulator's rate limiter (Bling's rule)."""
    clock = ManualClock(NOON.timestamp())
    limiter = RateLimiter(clock, LimitSettings())
    refused = 0
    for t in sorted(arrivals):  # FakeClock and ManualClock both start their monotonic at 1000
        clock.advance(max(0.0, t - clock.monotonic()))
        refused += not limiter.check(1).allowed
    return refused


# --- minimum_duration ------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [
    (0, 0.0), (1, 0.0), (3, 0.0), (4, 1.0), (6, 1.0), (7, 2.0), (15, 4.0), (30, 9.0), (1000, 333.0),
])
def test_minimum_duration_of_a_sliding_window(n: int, expected: float) -> None:
    assert minimum_duration(n) == expected


def test_minimum_duration_other_rates() -> None:
    assert minimum_duration(10, per_second=1) == 9.0
    assert minimum_duration(11, per_second=5, window=2.0) == 4.0
    with pytest.raises(ValueError, match="per_second"):
        minimum_duration(3, per_second=0)


# --- the fake clock --------------------------------------------------------------------------


async def test_fake_clock_wakes_concurrent_sleepers_at_their_virtual_times() -> None:
    clock = _clock()
    t0 = clock.monotonic()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic() - t0))

    await asyncio.gather(sleeper("c", 3.0), sleeper("a", 1.0), sleeper("b", 2.0), sleeper("a2", 1.0))
    assert woke == [("a", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]
    assert clock.time() == NOON.timestamp() + 3.0


async def test_fake_clock_advance_by_hand() -> None:
    clock = _clock()
    clock.advance(5)
    assert clock.time() == NOON.timestamp() + 5
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


async def test_system_clock_is_real_time() -> None:
    clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() - before >= 0.009
    assert abs(clock.time() - datetime.now().timestamp()) < 1


# --- pacing ----------------------------------------------------------------------------------


async def test_thirty_sequential_acquires_take_the_minimum_plus_margins() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    sends: list[float] = []
    for _ in range(30):
        async with limiter.slot():
            sends.append(clock.monotonic())
    total = sends[-1] - sends[0]
    minimum = minimum_duration(30)
    assert total == pytest.approx(minimum * (1 + MARGIN))  # 9 windows of 1.030 s = 9.27 s
    assert total <= 1.05 * minimum
    assert max_in_window(sends, 1.0) == 3
    assert refusals(sends) == 0
    assert sends[:3] == [sends[0]] * 3  # the first three go at once


async def test_sequential_with_steady_latency_costs_no_extra_spacing() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    sends: list[float] = []
    for _ in range(30):
        async with limiter.slot():
            sends.append(clock.monotonic())
            await clock.sleep(0.040)  # every round trip 40 ms
    total = sends[-1] - sends[0]
    # 9 windows of 1 s + margin, then the last two of the group follow the 10th after one round trip each
    assert total == pytest.approx(9 * (1 + MARGIN) + 2 * 0.040)
    assert total <= 1.05 * minimum_duration(30)
    assert refusals(sends) == 0


async def test_ten_concurrent_tasks_never_put_four_sends_in_a_second() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    rng = random.Random(3)
    sends: list[float] = []
    arrivals: list[float] = []

    async def worker(calls: int) -> None:
        for _ in range(calls):
            async with limiter.slot():
                now = clock.monotonic()
                sends.append(now)
                before = rng.uniform(0.0, 0.010)  # scheduling jitter before Bling counts it
                arrivals.append(now + before)
                await clock.sleep(before + rng.uniform(0.001, 0.005))

    t0 = clock.monotonic()
    await asyncio.gather(*(worker(3) for _ in range(10)))
    assert len(sends) == 30
    assert max_in_window(sends, 1.0) <= 3
    assert refusals(arrivals) == 0
    total = max(sends) - t0
    assert total <= 1.05 * minimum_duration(30), total


class VirtualBling:
    """Bling's per-second rule (the simulator's `RateLimiter`) judging arrivals on the same
    virtual time as the client, in the order they happen."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.manual = ManualClock(clock.time())
        self.limiter = RateLimiter(self.manual, LimitSettings())
        self.refused: list[float] = []

    def arrive(self) -> bool:
        self.manual.advance(max(0.0, self.clock.monotonic() - self.manual.monotonic()))
        ok = self.limiter.check(1).allowed
        if not ok:
            self.refused.append(self.clock.monotonic())
        return ok


async def _injected_latency_run(settings: LimiterSettings, seed: int, calls: int = 40,
                                workers: int = 5) -> tuple[AccountLimiter, VirtualBling, float]:
    """`workers` tasks making `calls` calls each; every request is delayed 20–80 ms *before*
    Bling counts it (the simulator's `latency=20-80ms` fault), answered 3 ms later; a refused
    request pauses the account (handing over its permit) and is retried."""
    clock = _clock()
    limiter = AccountLimiter(settings, clock=clock, rng=random.Random(seed))
    bling = VirtualBling(clock)
    rng = random.Random(seed)
    t0 = clock.monotonic()

    async def worker() -> None:
        for _ in range(calls):
            while True:
                async with limiter.slot() as permit:
                    await clock.sleep(rng.uniform(0.020, 0.080))
                    accepted = bling.arrive()
                    await clock.sleep(0.003)
                if accepted:
                    break
                limiter.pause(1.0, refused=permit)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return limiter, bling, clock.monotonic() - t0


async def test_margin_widens_itself_after_a_429_of_its_own_making() -> None:
    """Injected latency spread (60 ms) beyond the 30 ms margin: a couple of 429s, then none."""
    limiter, bling, total = await _injected_latency_run(LimiterSettings(), seed=5)
    assert 1 <= len(bling.refused) <= 3
    assert max(bling.refused) - 1000.0 < 10.0  # all in the first seconds, then never again
    assert limiter.margin == pytest.approx(0.07)  # 30 → 70 ms
    assert total <= 1.15 * minimum_duration(200)


async def test_latency_aware_pacing_absorbs_injected_latency_without_any_429() -> None:
    for seed in range(5):
        limiter, bling, total = await _injected_latency_run(LimiterSettings(latency_aware=True), seed)
        assert bling.refused == [], seed
        assert limiter.margin == LimiterSettings().margin
        assert total <= 1.06 * minimum_duration(200), (seed, total)


async def test_a_429_after_a_pause_or_off_the_edge_does_not_widen_the_margin() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock, rng=random.Random(0))
    first = await limiter.acquire()
    assert not first.paced  # nothing in the window: Bling refusing it is not our pacing
    limiter.pause(1.0, refused=first)
    assert limiter.margin == MARGIN
    after_pause = [await limiter.acquire() for _ in range(3)]
    assert not any(p.paced for p in after_pause)
    edge = await limiter.acquire()
    assert edge.paced
    limiter.pause(1.0, refused=edge)
    assert limiter.margin == pytest.approx(2 * MARGIN + 0.010)
    clock.advance(600.1)  # margin_memory
    assert limiter.margin == MARGIN
    for _ in range(5):
        limiter.pause(1.0, refused=edge)
    assert limiter.margin == 0.25  # max_margin


async def test_waiters_are_served_first_come_first_served() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    order: list[int] = []

    async def caller(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    tasks = []
    for i in range(12):
        tasks.append(asyncio.create_task(caller(i)))
        await asyncio.sleep(0)  # enqueue in this order
    await asyncio.gather(*tasks)
    assert order == list(range(12))


async def test_a_newcomer_does_not_overtake_a_sleeping_waiter() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    for _ in range(3):
        await limiter.acquire()
    order: list[str] = []

    async def caller(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    first = asyncio.create_task(caller("first"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert limiter.waiting == 1  # sleeping for its slot
    second = asyncio.create_task(caller("second"))
    await asyncio.gather(first, second)
    assert order == ["first", "second"]


async def test_a_cancelled_waiter_does_not_block_the_queue() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    for _ in range(3):
        await limiter.acquire()
    head = asyncio.create_task(limiter.acquire())
    middle = asyncio.create_task(limiter.acquire())
    tail = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    middle.cancel()
    head.cancel()
    permit = await tail
    assert permit.granted_at == pytest.approx(clock.monotonic())
    assert limiter.waiting == 0
    with pytest.raises(asyncio.CancelledError):
        await middle


async def test_permits_never_reported_done_are_forgotten_after_a_while() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    for _ in range(6):
        await limiter.acquire()  # no done()
    clock.advance(300)
    await limiter.acquire()
    assert len(limiter._sent) == 1


# --- 429 reactions ---------------------------------------------------------------------------


async def test_pause_holds_every_caller_for_the_pause_plus_jitter() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock, rng=random.Random(1))
    await limiter.acquire()
    t0 = clock.monotonic()
    limiter.pause(1.0)
    assert 1.0 <= limiter.paused_for <= 1.25
    resumed_at = t0 + limiter.paused_for
    limiter.pause(0.1)  # a shorter pause does not shorten the running one
    assert limiter.paused_for == pytest.approx(resumed_at - t0)
    grants = await asyncio.gather(*(limiter.acquire() for _ in range(4)))
    times = [p.granted_at for p in grants]
    assert min(times) == pytest.approx(resumed_at)
    assert all(t >= resumed_at for t in times)


async def test_pause_applied_while_a_waiter_sleeps_is_honoured() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock, rng=random.Random(2))
    for _ in range(3):
        await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.pause(5.0)  # Retry-After: 5
    permit = await waiter
    assert permit.granted_at >= 1000.0 + 5.0


async def test_stop_until_refuses_every_caller_until_then() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock)
    for _ in range(3):
        await limiter.acquire()
    queued = [asyncio.create_task(limiter.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    midnight = next_brasilia_midnight(clock.time())
    limiter.stop_until(midnight)
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert all(isinstance(r, DailyBudgetExhausted) for r in results)
    with pytest.raises(DailyBudgetExhausted) as caught:
        await limiter.acquire()
    error = caught.value
    assert error.resume_at == midnight
    assert error.by_bling
    assert isinstance(error, RateLimited)
    assert error.period == "day"
    assert error.retry_after == pytest.approx(midnight.timestamp() - clock.time())
    assert "resumes on its own" in str(error)
    clock.advance(midnight.timestamp() - clock.time())
    await limiter.acquire()


def test_stop_until_needs_an_aware_time() -> None:
    limiter = AccountLimiter(clock=_clock())
    with pytest.raises(ValueError, match="aware"):
        limiter.stop_until(datetime(2026, 11, 21))  # naive on purpose


# --- the daily budget ------------------------------------------------------------------------


def test_brasilia_day_and_midnight() -> None:
    utc_0230 = datetime.fromisoformat("2026-11-21T02:30:00+00:00").timestamp()
    assert brasilia_day(utc_0230) == date(2026, 11, 20)  # still 23:30 of the 20th in Brasília
    assert next_brasilia_midnight(utc_0230) == datetime(2026, 11, 21, tzinfo=BRASILIA)
    assert next_brasilia_midnight(utc_0230).timestamp() == utc_0230 + 30 * 60


async def test_daily_budget_keeps_headroom_and_resets_at_brasilia_midnight() -> None:
    clock = _clock(datetime(2026, 11, 20, 23, 59, 50, tzinfo=BRASILIA))
    limiter = AccountLimiter(LimiterSettings(daily_limit=10, daily_headroom=3), clock=clock)
    for _ in range(7):
        await limiter.acquire()
    assert limiter.used_today == 7
    assert limiter.remaining_today == 0
    with pytest.raises(DailyBudgetExhausted) as caught:
        await limiter.acquire()
    error = caught.value
    assert error.resume_at == datetime(2026, 11, 21, tzinfo=BRASILIA)
    assert (error.used, error.limit, error.headroom, error.by_bling) == (7, 10, 3, False)
    assert clock.time() == pytest.approx(error.resume_at.timestamp() - 10 + 2 * (1 + MARGIN))  # paced
    assert error.retry_after == pytest.approx(error.resume_at.timestamp() - clock.time())
    assert "7 of its 10 daily" in error.user_message
    assert "00:00 Brasília time on 2026-11-21" in error.user_message
    clock.advance(error.retry_after)  # Brasília midnight
    await limiter.acquire()
    assert limiter.used_today == 1


async def test_default_budget_is_120000_minus_2000_and_can_be_seeded() -> None:
    clock = _clock()
    limiter = AccountLimiter(clock=clock, used_today=117_999, used_on=date(2026, 11, 20))
    assert limiter.remaining_today == 1
    await limiter.acquire()
    with pytest.raises(DailyBudgetExhausted):
        await limiter.acquire()
    stale = AccountLimiter(clock=clock, used_today=117_999, used_on=date(2026, 11, 19))
    assert stale.used_today == 0  # yesterday's count does not carry over


async def test_queued_callers_are_refused_once_the_budget_runs_out() -> None:
    clock = _clock()
    limiter = AccountLimiter(LimiterSettings(daily_limit=6, daily_headroom=1), clock=clock)
    results = await asyncio.gather(*(limiter.acquire() for _ in range(8)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert sum(isinstance(r, DailyBudgetExhausted) for r in results) == 3


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="headroom"):
        LimiterSettings(daily_limit=10, daily_headroom=10)
    with pytest.raises(ValueError, match="per_second"):
        LimiterSettings(per_second=0)


# --- the IP guard ----------------------------------------------------------------------------


async def test_ip_guard_spreads_a_burst_of_400_requests() -> None:
    clock = _clock()
    guard = IpGuard(clock=clock)
    t0 = clock.monotonic()
    sends: list[float] = []

    async def request() -> None:
        await guard.acquire()
        sends.append(clock.monotonic() - t0)
        guard.record(200)

    await asyncio.gather(*(request() for _ in range(400)))  # all wanted within the same second
    assert guard.request_budget == 300
    assert sends.count(0.0) == 300
    assert sends[300:] == [10.0] * 100
    assert max_in_window(sends, 10.0) == 300  # half of Bling's 600, never near the ban


async def test_ip_guard_waits_when_errors_reach_half_the_threshold() -> None:
    clock = _clock()
    guard = IpGuard(clock=clock)
    t0 = clock.monotonic()
    for i in range(150):
        await guard.acquire()
        guard.record(500 if i % 2 else None)  # 5xx, and timeouts with no answer
        clock.advance(0.01)
    assert guard.counts().errors == 150
    await guard.acquire()
    assert clock.monotonic() - t0 == pytest.approx(10.0)  # the first error has left the window
    assert guard.counts().errors == 149
    guard.record(200)
    guard.record(404)  # a 4xx is an error answer too
    assert guard.counts().errors == 150


async def test_ip_guard_caps_token_calls_far_below_twenty_per_minute() -> None:
    clock = _clock()
    guard = IpGuard(clock=clock)
    t0 = clock.monotonic()
    times = []
    for _ in range(25):
        await guard.acquire(token_call=True)
        times.append(clock.monotonic() - t0)
    assert guard.token_budget == 10
    assert times[:10] == [0.0] * 10
    assert times[10:20] == [60.0] * 10
    assert max_in_window(times, 60.0) == 10
    await guard.acquire()  # ordinary requests do not wait for the token budget
    assert clock.monotonic() - t0 == 120.0
    for _ in range(5):  # the auth layer's TokenCallBudget protocol; calls 21–25 went at 120 s
        await guard.acquire_token_call()
    assert clock.monotonic() - t0 == 120.0
    await guard.acquire_token_call()  # the 11th within the minute waits for 180 s
    assert clock.monotonic() - t0 == 180.0
    relaxed = IpGuard(clock=clock, fraction=1.0, token_cap=50)
    assert relaxed.token_budget == 19  # never 20, whatever the settings


async def test_ip_guard_block_holds_every_request() -> None:
    clock = _clock()
    guard = IpGuard(clock=clock)
    guard.block(600)
    assert guard.blocked_for == 600
    t0 = clock.monotonic()
    await asyncio.gather(guard.acquire(), guard.acquire(token_call=True))
    assert clock.monotonic() - t0 == 600
    assert guard.blocked_for == 0


def test_ip_guard_thresholds_follow_the_fraction() -> None:
    guard = IpGuard(thresholds=IpThresholds(requests=100, errors=40), fraction=0.25)
    assert (guard.request_budget, guard.error_budget) == (25, 10)
    with pytest.raises(ValueError, match="fraction"):
        IpGuard(fraction=0)


# --- the registry ----------------------------------------------------------------------------


async def test_registry_shares_one_limiter_per_account_and_one_ip_guard() -> None:
    clock = _clock()
    registry = LimiterRegistry(clock=clock)
    a1 = registry.for_account("cnpj-a", used_today=10, used_on=date(2026, 11, 20))
    a2 = registry.for_account("cnpj-a", used_today=999)  # seeded on first use only
    b = registry.for_account("cnpj-b")
    assert a1 is a2
    assert a1 is not b
    assert a1.used_today == 10
    assert "cnpj-a" in registry
    assert registry.ip_guard is registry.ip_guard

    sends: dict[str, list[float]] = {"a": [], "b": []}

    async def client(account: str, key: str) -> None:  # two clients of account a, one of b
        for _ in range(6):
            async with registry.for_account(key).slot():
                sends[account].append(clock.monotonic())

    t0 = clock.monotonic()
    await asyncio.gather(client("a", "cnpj-a"), client("a", "cnpj-a"), client("b", "cnpj-b"))
    assert max_in_window(sends["a"], 1.0) == 3  # the two clients of a shared 3 req/s
    assert max(sends["a"]) - t0 == pytest.approx(3 * (1 + MARGIN))  # 12 calls: minimum 3 s
    assert max(sends["b"]) - t0 == pytest.approx(1 + MARGIN)  # b kept its own 3 req/s


def test_registry_accepts_its_parts() -> None:
    clock = _clock()
    guard = IpGuard(clock=clock)
    registry = LimiterRegistry(clock=clock, ip_guard=guard, settings=LimiterSettings(margin=0.03))
    assert registry.ip_guard is guard
    assert registry.for_account(1).settings.margin == 0.03


def test_daily_budget_error_pickles_and_reads_well() -> None:
    import pickle

    resume = datetime(2026, 11, 21, tzinfo=BRASILIA)
    error = DailyBudgetExhausted(resume, used=118_000, limit=120_000, headroom=2_000,
                                 retry_after=60.0, account="acme")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert again.resume_at == resume
    assert again.used == 118_000
    assert "118,000 of its 120,000" in str(error)
    assert "acme" in repr(error)
    assert resume - timedelta(days=1) < error.resume_at
