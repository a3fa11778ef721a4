"""The v3 client against the simulator with Bling's real limits: every page, no 429, refresh
on 401 and replay, retries through injected 5xx and truncated bodies."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta

import httpx
import pytest

from blingsync.bling.auth import MemoryTokenStore, OAuthApp, TokenManager
from blingsync.bling.client import connect_v3
from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.bling.models import NoteKind
from blingsync.bling.retry import RetryPolicy
from blingsync.bling.secrets import Secret
from blingsync.bling.v3 import V3Client, periods
from blingsync.domain import BRASILIA, InvoiceStatus
from blingsync.simulator.app import Simulator
from blingsync.simulator.clock import SystemClock
from blingsync.simulator.faults import FaultSpec
from blingsync.simulator.limits import LimitSettings
from blingsync.simulator.model import Modelo, NfeSituacao
from tests.conftest import ANCHOR, Bling, make_sim

WINDOW = (ANCHOR - timedelta(days=120), ANCHOR + timedelta(days=1))


async def _client(sim: Simulator) -> tuple[V3Client, Bling]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                             base_url="http://bling.test/Api/v3")
    bling = Bling(sim, httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                         base_url="http://bling.test"))
    client = bling.company().clients[0]
    app = OAuthApp(client.client_id, Secret(client.client_secret), "http://bling.test/Api/v3")
    # A wider margin than production's 30 ms: the simulator shares this test's event loop, so a
    # busy CI machine can delay one arrival by more than that (production widens its margin
    # itself after such a 429; this test asserts none at all).
    registry = LimiterRegistry(settings=LimiterSettings(margin=0.05))
    tokens = TokenManager("acme", app, MemoryTokenStore(), http,
                          budget=registry.ip_guard)
    await tokens.exchange_code(await bling.code(client))
    connected = connect_v3("acme", tokens, http, registry,
                           policy=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05))
    assert isinstance(connected, V3Client)
    return connected, bling


def _expected(sim: Simulator) -> set[int]:
    company = sim.state.world.companies[0]
    return {n.id for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1
            and n.situacao == NfeSituacao.EMITIDA_DANFE}


@pytest.fixture
def real_time_sim() -> Simulator:
    return make_sim(clock=SystemClock(), limits=LimitSettings(), invoices=400, accounts=1)


async def test_lists_every_note_once_at_the_limit_without_429(real_time_sim: Simulator) -> None:
    client, _ = await _client(real_time_sim)
    started = time.monotonic()
    notes = [n async for n in client.iter_notes(InvoiceStatus.DANFE_PRINTED,
                                                issued_from=WINDOW[0], issued_to=WINDOW[1])]
    ids = [n.bling_id for n in notes]
    assert len(ids) == len(set(ids))
    assert set(ids) == _expected(real_time_sim)
    assert all(n.status is InvoiceStatus.DANFE_PRINTED for n in notes)
    details = [await client.get_note(n.ref) for n in notes[:4]]
    xml = await client.get_note_xml(notes[0])
    assert xml.startswith(b"<?xml") and (details[0].summary.chave or "").encode() in xml
    company = await client.company()
    assert company.cnpj == real_time_sim.state.world.companies[0].cnpj
    stats = client.stats
    assert stats.rate_limited == 0
    assert stats.by_status == {200: stats.requests}
    # the pacing cost: at most ~1.05 x what 3 requests/s allows for the calls made
    minimum = ((stats.requests - 1) // 3) * 1.0
    assert time.monotonic() - started <= minimum * 1.05 + 0.5


async def test_401_refreshes_once_and_replays() -> None:
    sim = make_sim(clock=SystemClock(), accounts=1, invoices=60)
    client, _ = await _client(sim)
    await client.company()
    clock = sim.state.clock
    assert isinstance(clock, SystemClock)
    clock.advance(21601)  # Bling's side: the access token expired early (revoked, clock skew)
    await client.company()
    assert client.transport.stats.refreshes == 1
    assert client.transport.stats.by_status.get(401) == 1


async def test_every_note_exactly_once_through_5xx_and_truncated_bodies() -> None:
    sim = make_sim(accounts=1, invoices=400)
    client, _ = await _client(sim)
    sim.state.faults.configure(FaultSpec.parse("5xx=0.25,truncate=0.1,seed=4"))
    notes = [n.bling_id async for n in client.iter_notes(
        InvoiceStatus.DANFE_PRINTED, issued_from=WINDOW[0], issued_to=WINDOW[1], )]
    assert sorted(notes) == sorted(_expected(sim))
    assert client.transport.stats.retries > 0
    assert sim.state.faults.injected.get("5xx", 0) > 0


async def test_nfce_listing() -> None:
    sim = make_sim(accounts=1, invoices=200)
    client, _ = await _client(sim)
    notes = [n async for n in client.iter_notes(InvoiceStatus.DANFE_PRINTED, kind=NoteKind.NFCE,
                                                issued_from=WINDOW[0], issued_to=WINDOW[1])]
    company = sim.state.world.companies[0]
    assert {n.bling_id for n in notes} == {
        n.id for n in company.notes.values()
        if n.modelo == Modelo.NFCE and n.situacao == NfeSituacao.EMITIDA_DANFE}


def test_periods_are_contiguous_and_at_most_a_year() -> None:
    start = datetime(2024, 2, 29, 10, tzinfo=BRASILIA)
    end = datetime(2026, 11, 20, tzinfo=BRASILIA)
    cut = periods(start, end)
    assert cut[0][0] == start and cut[-1][1] == end
    for (_, b), (c, _) in itertools.pairwise(cut):
        assert c - b == timedelta(seconds=1)
    for a, b in cut:
        assert b - a < timedelta(days=366)
    assert len(cut) == 3
    with pytest.raises(ValueError, match="ends before"):
        periods(end, start)


async def test_check_permissions_names_the_missing_scope() -> None:
    from blingsync.simulator.model import Scope

    sim = make_sim(accounts=1, invoices=30)
    client, bling = await _client(sim)
    assert all(check.granted for check in await client.check_permissions())
    company = bling.company()
    company.clients[0].scopes = frozenset(set(Scope) - {Scope.NFCE, Scope.LOGISTICAS})
    checks = {c.resource: c for c in await client.check_permissions()}
    assert {r for r, c in checks.items() if not c.granted} == {"nfce", "logisticas"}
    assert checks["nfce"].label == "Notas Fiscais de Consumidor"
    assert checks["nfe"].granted and checks["empresas"].granted
