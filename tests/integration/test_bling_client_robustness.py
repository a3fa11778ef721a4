"""The client where integrations usually break, against the simulator: a caller that changes
what it is iterating, two token managers racing for one account, a note known only by id,
scopes that cover NFC-e but not NF-e, an unreadable record in a page, a filter Bling refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from blingsync.bling.auth import MemoryTokenStore, OAuthApp, TokenManager, with_expiry
from blingsync.bling.client import BlingClient, connect_v2, connect_v3
from blingsync.bling.errors import PermissionMissing
from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.bling.models import NoteKind, NoteRef, UnreadableRecord
from blingsync.bling.retry import RetryPolicy
from blingsync.bling.secrets import Secret
from blingsync.domain import InvoiceStatus
from blingsync.simulator.app import Simulator
from blingsync.simulator.model import Company, Modelo, NfeSituacao, Scope
from tests.conftest import ANCHOR, Bling, make_sim

WINDOW = (ANCHOR - timedelta(days=200), ANCHOR + timedelta(days=1))
FAST = LimiterSettings(per_second=1000)
QUICK = RetryPolicy(max_attempts=3, base_delay=0, max_delay=0)


def _company(sim: Simulator) -> Company:
    return sim.state.world.companies[0]


def _bling(sim: Simulator) -> Bling:
    return Bling(sim, httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                        base_url="http://bling.test"))


def _api(app: Any, path: str = "/Api/v3") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url=f"http://bling.test{path}")


async def _v3(sim: Simulator, *, client_index: int = 0, app: Any = None,
              store: MemoryTokenStore | None = None) -> BlingClient:
    bling = _bling(sim)
    oauth = _company(sim).clients[client_index]
    http = _api(app or sim.app)
    tokens = TokenManager("acme", OAuthApp(oauth.client_id, Secret(oauth.client_secret),
                                           "http://bling.test/Api/v3"),
                          store or MemoryTokenStore(), http)
    await tokens.exchange_code(await bling.code(oauth))
    return connect_v3("acme", tokens, http, LimiterRegistry(settings=FAST), policy=QUICK)


def _v2(sim: Simulator, app: Any = None) -> BlingClient:
    key = Secret(_company(sim).api_users[0].apikey)
    return connect_v2("acme", key, _api(app or sim.app, "/Api/v2"),
                      LimiterRegistry(settings=FAST), policy=QUICK)


@pytest.fixture
def sim() -> Simulator:
    return make_sim(accounts=1, invoices=600)


@pytest.mark.parametrize("generation", ["v3", "v2"])
async def test_changing_each_order_handed_out_loses_none(sim: Simulator, generation: str) -> None:
    """The write-back's loop: list orders in a situation, move each one out of it. With lazy
    page-number paging every other page would slip past; each period is read whole first."""
    company = _company(sim)
    counts: dict[int, int] = {}
    for order in company.orders.values():
        counts[order.situacao_id] = counts.get(order.situacao_id, 0) + 1
    crowded = max(counts, key=lambda s: counts[s])
    target = next(s.id for s in company.order_situations if s.id != crowded)
    wanted = {o.numero for o in company.orders.values() if o.situacao_id == crowded}
    assert len(wanted) > 100  # more than a page: the loss would show
    client = await _v3(sim) if generation == "v3" else _v2(sim)
    handed: list[int] = []
    async for order in client.iter_orders(situation_ids=[crowded]):
        handed.append(order.numero)
        assert order.situacao.id == crowded
        await client.change_order_situation(order.ref, target)
    assert sorted(handed) == sorted(wanted)
    assert all(o.situacao_id == target for o in company.orders.values() if o.numero in wanted)


async def test_two_token_managers_of_one_account_refresh_once(sim: Simulator) -> None:
    """Two parts of one process (the importer, a webhook handler) each built a manager for the
    same account on the same store: the process-wide lock makes them one refresh."""
    bling = _bling(sim)
    oauth = _company(sim).clients[0]
    calls: list[str] = []

    async def slow_token(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        await asyncio.sleep(0.05)  # widen the window a race needs
        return await httpx.ASGITransport(app=sim.app).handle_async_request(request)

    class Slow(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/oauth/token"):
                return await slow_token(request)
            return await httpx.ASGITransport(app=sim.app).handle_async_request(request)

    store = MemoryTokenStore()
    app = OAuthApp(oauth.client_id, Secret(oauth.client_secret), "http://bling.test/Api/v3")
    http = httpx.AsyncClient(transport=Slow(), base_url="http://bling.test/Api/v3")
    first = TokenManager("acme", app, store, http)
    second = TokenManager("acme", app, store, http)
    await first.exchange_code(await bling.code(oauth))
    current = await store.load("acme")
    assert current is not None
    await store.save("acme", with_expiry(current, 0))  # both see an expired token
    calls.clear()
    a, b = await asyncio.gather(first.access_token(), second.access_token())
    assert a == b
    assert calls == ["/Api/v3/oauth/token"]


async def test_a_refresh_that_lost_the_race_takes_the_winners_tokens(sim: Simulator) -> None:
    """Two managers with separate locks (a misconfigured cross-process lock) on one store: the
    one that gets invalid_grant finds the rotated tokens in the store instead of failing."""
    from blingsync.bling.auth import LocalRefreshLock

    bling = _bling(sim)
    oauth = _company(sim).clients[0]
    store = MemoryTokenStore()
    app = OAuthApp(oauth.client_id, Secret(oauth.client_secret), "http://bling.test/Api/v3")
    http = _api(sim.app)
    first = TokenManager("acme", app, store, http, lock=LocalRefreshLock())
    second = TokenManager("acme", app, store, http, lock=LocalRefreshLock())
    await first.exchange_code(await bling.code(oauth))
    stale = await store.load("acme")
    assert stale is not None
    winner = await first.refresh(stale=stale.access_token)
    await store.save("acme", winner)

    class Behind(MemoryTokenStore):
        """The loser read the store before the winner saved."""

        reads = 0

        async def load(self, account: str) -> Any:
            self.reads += 1
            return stale if self.reads == 1 else winner

    second.store = Behind()
    got = await second.refresh(stale=stale.access_token)
    assert got == winner


async def test_xml_of_a_note_known_only_by_id(sim: Simulator) -> None:
    """A webhook names a note by id; its summary has no chave. The XML still comes."""
    note = next(n for n in _company(sim).notes.values()
                if n.modelo == Modelo.NFE and n.situacao == NfeSituacao.EMITIDA_DANFE)
    client = await _v3(sim)
    xml = await client.get_note_xml(NoteRef(bling_id=note.id))
    assert note.chave.encode() in xml
    with pytest.raises(ValueError, match="neither"):
        await client.get_note_xml(NoteRef())


async def test_nfce_xml_through_documento_needs_and_names_the_nfe_scope(sim: Simulator) -> None:
    company = _company(sim)
    index = len(company.clients)
    bling = _bling(sim)
    scopes = [s.value for s in Scope if s is not Scope.NFE]
    created = await bling.http.post(f"/_sim/accounts/{company.id}/clients",
                                    json={"scopes": scopes})
    assert created.status_code in (200, 201), created.text
    client = await _v3(sim, client_index=index)
    nfce = next(n for n in company.notes.values()
                if n.modelo == Modelo.NFCE and n.situacao == NfeSituacao.EMITIDA_DANFE)
    with pytest.raises(PermissionMissing) as caught:
        await client.get_note_xml(NoteRef(kind=NoteKind.NFCE, bling_id=nfce.id, chave=nfce.chave))
    assert caught.value.label == "Notas Fiscais"


def _spoiling_first_note(app: Any, spoil: Callable[[dict[str, Any]], None]) -> Any:
    """The simulator, with the first note of every v3 list page made unreadable."""
    import json

    async def proxy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/Api/v3/nfe":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        start: dict[str, Any] = {}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await app(scope, receive, capture)
        body = json.loads(b"".join(chunks))
        if body.get("data"):
            spoil(body["data"][0])
        raw = json.dumps(body).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})

    return proxy


async def test_an_unreadable_note_is_reported_and_the_others_come(sim: Simulator) -> None:
    def spoil(item: dict[str, Any]) -> None:
        item["dataEmissao"] = "ontem à tarde"

    client = await _v3(sim, app=_spoiling_first_note(sim.app, spoil))
    reported: list[UnreadableRecord] = []
    notes = [n async for n in client.iter_notes(InvoiceStatus.DANFE_PRINTED,
                                                issued_from=WINDOW[0], issued_to=WINDOW[1],
                                                skip=reported.append)]
    expected = {n.id for n in _company(sim).notes.values()
                if n.modelo == Modelo.NFE and n.tipo == 1
                and n.situacao == NfeSituacao.EMITIDA_DANFE}
    assert reported and all(r.bling_id in expected for r in reported)
    assert {n.bling_id for n in notes} | {r.bling_id for r in reported} == expected
    assert all("dataEmissao" in r.reason for r in reported)
    # without `skip` the listing stops at the first one, naming it
    from blingsync.bling.errors import InvalidResponse

    with pytest.raises(InvalidResponse, match="dataEmissao"):
        async for _ in client.iter_notes(InvoiceStatus.DANFE_PRINTED, issued_from=WINDOW[0],
                                         issued_to=WINDOW[1]):
            pass


async def test_contingency_is_refused_for_nfe_before_any_request(sim: Simulator) -> None:
    client = await _v3(sim)
    before = client.stats.requests
    with pytest.raises(ValueError, match="NFC-e"):
        async for _ in client.iter_notes(InvoiceStatus.CONTINGENCY, issued_from=WINDOW[0],
                                         issued_to=WINDOW[1]):
            pass
    assert client.stats.requests == before
