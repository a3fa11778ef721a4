"""Bling's limits (3 req/s, daily quota, IP blocks) and injected faults."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import httpx
import pytest

from blingsync.simulator.app import Simulator
from blingsync.simulator.clock import ManualClock
from blingsync.simulator.faults import FaultSpec
from blingsync.simulator.limits import LimitSettings
from blingsync.simulator.model import BRT
from tests.conftest import ANCHOR, Bling, basic, make_sim

EMPRESA = "/Api/v3/empresas/me/dados-basicos"


async def _client(sim: Simulator) -> Bling:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://b.test")
    return Bling(sim, http)


async def test_burst_of_twenty_gets_429_after_the_third() -> None:
    sim = make_sim(limits=LimitSettings())
    bling = await _client(sim)
    auth = await bling.bearer()
    statuses = [(await bling.get(EMPRESA, auth)).status_code for _ in range(20)]
    assert statuses == [200] * 3 + [429] * 17
    r = await bling.get(EMPRESA, auth)
    assert r.json() == {"error": {
        "type": "TOO_MANY_REQUESTS", "message": "Limite de requisições atingido.",
        "description": "O limite de requisições por segundo foi atingido, tente novamente mais "
                       "tarde.",
        "limit": 3, "period": "second"}}
    bling.clock.advance(1.0)
    assert (await bling.get(EMPRESA, auth)).status_code == 200
    counters = sim.state.counters[bling.company().id]
    assert counters.rate_limited == 18


async def test_window_slides() -> None:
    sim = make_sim(limits=LimitSettings())
    b = await _client(sim)
    auth = await b.bearer()
    for _ in range(3):
        assert (await b.get(EMPRESA, auth)).status_code == 200
        b.clock.advance(0.4)
    # requests at 0.0, 0.4, 0.8; now 1.2: the first has left the window
    assert (await b.get(EMPRESA, auth)).status_code == 200
    assert (await b.get(EMPRESA, auth)).status_code == 429


async def test_accounts_have_separate_budgets() -> None:
    sim = make_sim(limits=LimitSettings())
    b = await _client(sim)
    first, second = await b.bearer(0), await b.bearer(1)
    for _ in range(3):
        assert (await b.get(EMPRESA, first)).status_code == 200
    assert (await b.get(EMPRESA, first)).status_code == 429
    assert (await b.get(EMPRESA, second)).status_code == 200


async def test_daily_quota_and_reset_at_midnight_brasilia() -> None:
    clock = ManualClock(ANCHOR.timestamp() + 23 * 3600)  # 23:00 BRT
    sim = make_sim(clock=clock, limits=LimitSettings(per_day=5))
    b = await _client(sim)
    auth = await b.bearer()
    for _ in range(5):
        assert (await b.get(EMPRESA, auth)).status_code == 200
        clock.advance(1)
    r = await b.get(EMPRESA, auth)
    assert r.status_code == 429
    assert r.json()["error"]["period"] == "day"
    assert r.json()["error"]["limit"] == 5
    assert "amanhã" in r.json()["error"]["description"]
    next_midnight = datetime(2026, 11, 21, tzinfo=BRT).timestamp()
    clock.advance(next_midnight - clock.time() + 1)
    assert (await b.get(EMPRESA, auth)).status_code == 200


async def test_token_endpoint_ip_block() -> None:
    sim = make_sim(limits=LimitSettings(ip_block=True))
    b = await _client(sim)
    client = b.company().clients[0]
    statuses = []
    for _ in range(21):
        r = await b.http.post("/Api/v3/oauth/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": "x"},
                              headers={"authorization": basic(client)})
        statuses.append(r.status_code)
    assert statuses[:20] == [400] * 20
    assert statuses[20] == 403
    blocked = await b.http.get("/Api/v3/nfe")
    assert blocked.status_code == 403
    assert blocked.json()["error"]["message"] == "IP bloqueado"
    b.clock.advance(3601)
    assert (await b.http.get("/Api/v3/nfe")).status_code == 401


async def test_error_ip_block() -> None:
    sim = make_sim(limits=LimitSettings(ip_block=True))
    b = await _client(sim)
    statuses = [(await b.http.get("/Api/v3/nfe")).status_code for _ in range(302)]
    assert statuses[:300] == [401] * 300
    assert statuses[301] == 403
    b.clock.advance(601)
    assert (await b.http.get("/Api/v3/nfe")).status_code == 401


async def test_ip_block_is_off_by_default(bling: Bling) -> None:
    statuses = {(await bling.http.get("/Api/v3/nfe")).status_code for _ in range(320)}
    assert statuses == {401}


async def test_faults_5xx_are_seeded_and_reproducible() -> None:
    async def run() -> list[int]:
        sim = make_sim(faults=FaultSpec.parse("5xx=0.3,seed=11"))
        b = await _client(sim)
        return [(await b.http.get("/Api/v3/nfe")).status_code for _ in range(60)]

    first, second = await run(), await run()
    assert first == second
    assert {500, 502, 503} & set(first)
    assert 401 in first


async def test_fault_bodies() -> None:
    sim = make_sim(faults=FaultSpec.parse("5xx=1"))
    b = await _client(sim)
    seen = {}
    for _ in range(30):
        r = await b.http.get("/Api/v3/nfe")
        seen[r.status_code] = r
    assert seen[500].json()["error"]["type"] == "SERVER_ERROR"
    assert seen[502].headers["content-type"].startswith("text/html")


async def test_truncated_body_is_invalid_json() -> None:
    sim = make_sim()
    b = await _client(sim)
    auth = await b.bearer()
    sim.state.faults.configure(FaultSpec.parse("truncate=1"))
    r = await b.get("/Api/v3/nfe", auth)
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(r.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


async def test_timeout_hangs_then_504() -> None:
    sim = make_sim(faults=FaultSpec.parse("timeout=1,hang=0.2s"))
    b = await _client(sim)
    started = time.monotonic()
    r = await b.http.get("/Api/v3/nfe")
    assert time.monotonic() - started >= 0.2
    assert r.status_code == 504  # a client with a shorter timeout: see test_sim_server


async def test_429_burst_fault() -> None:
    sim = make_sim()
    b = await _client(sim)
    auth = await b.bearer()
    sim.state.faults.configure(FaultSpec.parse("429=1,burst=3"))
    r = await b.get(EMPRESA, auth)
    assert r.status_code == 429
    sim.state.faults.configure(FaultSpec())
    statuses = [(await b.get(EMPRESA, auth)).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    assert sim.state.faults.injected == {}  # configure() resets the tally


async def test_latency() -> None:
    sim = make_sim(faults=FaultSpec.parse("latency=100-120ms"))
    b = await _client(sim)
    started = time.monotonic()
    await b.http.get("/Api/v3/nfe")
    assert time.monotonic() - started >= 0.1


def test_fault_spec_timedelta_roundtrip() -> None:
    spec = FaultSpec.parse("5xx=0.1,timeout=0.05,hang=2s,latency=20-80ms,truncate=0.02,"
                           "429=0.03,burst=4,seed=7")
    assert FaultSpec.parse(spec.describe()) == spec
    assert timedelta(seconds=spec.hang) == timedelta(seconds=2)


async def test_signed_xml_downloads_count_against_the_account() -> None:
    sim = make_sim(limits=LimitSettings())
    b = await _client(sim)
    auth = await b.bearer()
    note = next(n for n in b.company().notes.values() if n.situacao == 6 and n.modelo == 55)
    detail = (await b.get(f"/Api/v3/nfe/{note.id}", auth)).json()["data"]
    path = detail["xml"].removeprefix("http://b.test")
    statuses = [(await b.http.get(path)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # the detail call took the first slot of the second
    counters = sim.state.counters[b.company().id].as_json()
    assert counters["by_endpoint"]["GET /relatorios/nfe.xml.php"] == 3
