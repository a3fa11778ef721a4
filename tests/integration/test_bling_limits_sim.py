"""The account limiter against the simulator's real limits, in real time.

The one timed test of the pacing: the simulator judges arrivals with its own sliding window on
the system clock, exactly as Bling does, and must refuse nothing, while the run takes no more
than 5% over the minimum that 3 requests/s allows (plus a small allowance for the event loop).
"""

from __future__ import annotations

import asyncio
import time

import httpx

from blingsync.bling.limits import AccountLimiter, IpGuard, minimum_duration
from blingsync.simulator.clock import SystemClock
from blingsync.simulator.limits import LimitSettings
from tests.conftest import Bling, make_sim

EMPRESA = "/Api/v3/empresas/me/dados-basicos"
EVENT_LOOP_ALLOWANCE = 0.15  # seconds: the last answer's round trip and scheduling noise


async def test_fifteen_requests_from_five_tasks_make_no_429_at_full_speed() -> None:
    sim = make_sim(clock=SystemClock(), limits=LimitSettings())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://bling.test") as http:
        bling = Bling(sim, http)
        auth = await bling.bearer()
        limiter = AccountLimiter()  # real clock
        guard = IpGuard()
        statuses: list[int] = []
        sends: list[float] = []

        async def task() -> None:
            for _ in range(3):
                await guard.acquire()
                async with limiter.slot():
                    sends.append(time.monotonic())
                    r = await http.get(EMPRESA, headers=auth)
                guard.record(r.status_code)
                statuses.append(r.status_code)

        start = time.monotonic()
        await asyncio.gather(*(task() for _ in range(5)))
        total = time.monotonic() - start

    assert statuses == [200] * 15
    minimum = minimum_duration(15)  # 4 s: groups of 3 at 0, 1, 2, 3 and 4 s
    assert total >= minimum
    assert total <= 1.05 * minimum + EVENT_LOOP_ALLOWANCE, total
    ordered = sorted(sends)
    assert all(b - a >= 1.0 for a, b in zip(ordered, ordered[3:], strict=False))
    print(f"15 requests, 5 tasks: {total:.3f} s for a minimum of {minimum:.0f} s "
          f"(ratio {total / minimum:.4f}), statuses {set(statuses)}")
