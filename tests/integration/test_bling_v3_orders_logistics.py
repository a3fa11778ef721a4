"""The v3 client's sales orders, situations, logistics objects and note XML, against the
in-process simulator (httpx's ASGI transport), with pacing set out of the way (1000 req/s)
so the tests are fast; what is asserted is what reached the simulator."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from blingsync.bling.auth import MemoryTokenStore, OAuthApp, TokenManager
from blingsync.bling.base import LISTING_SPAN, periods
from blingsync.bling.client import connect_v3
from blingsync.bling.errors import BlingUnavailable, InvalidRequest, InvalidResponse
from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.bling.models import Dimensions, NoteSummary, OrderRef, TrackingSituation
from blingsync.bling.retry import RetryPolicy
from blingsync.bling.secrets import Secret
from blingsync.bling.v3 import V3Client
from blingsync.bling.writes import TrackingChange
from blingsync.domain import BRASILIA, InvoiceStatus
from blingsync.simulator.app import Simulator
from blingsync.simulator.faults import FaultSpec
from blingsync.simulator.model import Company
from tests.conftest import ANCHOR, Bling, make_sim

WINDOW = (ANCHOR - timedelta(days=120), ANCHOR + timedelta(days=1))
MAX_ATTEMPTS = 3
T = TypeVar("T")
GIVE_UP = 50


@dataclass
class Sent:
    """Every request the client's HTTP client sent (OAuth included), in order."""

    requests: list[httpx.Request] = field(default_factory=list)

    async def hook(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def since(self, mark: int) -> list[httpx.Request]:
        return self.requests[mark:]

    def __len__(self) -> int:
        return len(self.requests)


async def _client(sim: Simulator, app: Any = None) -> tuple[V3Client, Sent]:
    sent = Sent()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app or sim.app),
                             base_url="http://bling.test/Api/v3",
                             event_hooks={"request": [sent.hook]})
    bling = Bling(sim, httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                         base_url="http://bling.test"))
    oauth = bling.company().clients[0]
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000))
    tokens = TokenManager("acme", OAuthApp(oauth.client_id, Secret(oauth.client_secret),
                                           "http://bling.test/Api/v3"),
                          MemoryTokenStore(), http, budget=registry.ip_guard)
    await tokens.exchange_code(await bling.code(oauth))
    connected = connect_v3("acme", tokens, http, registry,
                           policy=RetryPolicy(max_attempts=MAX_ATTEMPTS, base_delay=0.001,
                                              max_delay=0.002))
    assert isinstance(connected, V3Client)
    return connected, sent


@pytest.fixture
def sim() -> Simulator:
    return make_sim(accounts=2, invoices=300)


def _company(sim: Simulator) -> Company:
    return sim.state.world.companies[0]


def _paths(requests: list[httpx.Request]) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in requests]


# --- sales orders ------------------------------------------------------------------------------


async def test_iter_orders_is_the_window_each_once(sim: Simulator) -> None:
    client, _ = await _client(sim)
    company = _company(sim)
    start, end = ANCHOR - timedelta(days=20), ANCHOR - timedelta(days=3)
    expected = {o.id for o in company.orders.values() if start <= o.altered_at <= end}
    assert expected and expected != set(company.orders)  # the window cuts on both sides
    assert any(o.altered_at < start for o in company.orders.values())
    assert any(o.altered_at > end for o in company.orders.values())
    got = [o async for o in client.iter_orders(changed_from=start, changed_to=end)]
    ids = [o.bling_id for o in got]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    for order in got:
        assert order.situacao.id == company.orders[order.bling_id].situacao_id  # type: ignore[index]


async def test_iter_orders_every_page(sim: Simulator) -> None:
    client, sent = await _client(sim)
    company = _company(sim)
    assert len(company.orders) > 100  # more than one page of `limite=100`
    mark = len(sent)
    start, end = ANCHOR - timedelta(days=360), ANCHOR + timedelta(days=1)
    ids = [o.bling_id async for o in client.iter_orders(changed_from=start, changed_to=end)]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(company.orders)
    # a month at a time, each month paged until its empty page
    per_period = [sum(a <= o.altered_at <= b for o in company.orders.values())
                  for a, b in periods(start, end, span=LISTING_SPAN)]
    assert max(per_period) > 100  # some month needs more than one page
    expected = [str(p) for count in per_period for p in range(1, math.ceil(count / 100) + 2)]
    assert [dict(r.url.params)["pagina"] for r in sent.since(mark)] == expected


async def test_iter_orders_by_situation(sim: Simulator) -> None:
    client, sent = await _client(sim)
    company = _company(sim)
    counts: dict[int, int] = {}
    for o in company.orders.values():
        counts[o.situacao_id] = counts.get(o.situacao_id, 0) + 1
    wanted = sorted(counts, key=lambda s: counts[s])[:2]
    assert len(counts) > 2  # some situations are left out
    start, end = ANCHOR - timedelta(days=300), ANCHOR + timedelta(days=1)
    mark = len(sent)
    got = [o async for o in client.iter_orders(situation_ids=wanted, changed_from=start,
                                                changed_to=end)]
    assert {o.bling_id for o in got} == {
        o.id for o in company.orders.values() if o.situacao_id in wanted}
    assert {o.situacao.id for o in got} == set(wanted)
    assert sorted(map(int, sent.since(mark)[0].url.params.get_list("idsSituacoes[]"))) == sorted(wanted)


async def test_get_order(sim: Simulator) -> None:
    client, _ = await _client(sim)
    company = _company(sim)
    listed = [o async for o in client.iter_orders(changed_from=ANCHOR - timedelta(days=10),
                                                  changed_to=ANCHOR + timedelta(days=1))]
    summary = next(o for o in listed if company.orders[o.bling_id].note_id)  # type: ignore[index]
    order = company.orders[summary.bling_id]  # type: ignore[index]
    detail = await client.get_order(summary.ref)
    assert detail.summary.bling_id == order.id
    assert detail.summary.numero == order.numero
    assert detail.summary.situacao.id == order.situacao_id
    assert detail.summary.contact.bling_id == order.contato.id
    assert detail.note_id == order.note_id
    assert detail.summary.total == summary.total
    assert detail.summary.data == summary.data == order.data


async def test_change_order_situation(sim: Simulator) -> None:
    client, sent = await _client(sim)
    company = _company(sim)
    order = next(o for o in company.orders.values()
                 if o.situacao_id != company.order_situations[1].id)
    target = company.order_situations[1].id
    mark = len(sent)
    await client.change_order_situation(OrderRef(bling_id=order.id), target)
    assert company.orders[order.id].situacao_id == target
    assert _paths(sent.since(mark)) == [f"PATCH /Api/v3/pedidos/vendas/{order.id}/situacoes/{target}"]
    assert (await client.get_order(OrderRef(bling_id=order.id))).summary.situacao.id == target
    # setting it again is harmless
    await client.change_order_situation(OrderRef(bling_id=order.id, numero=order.numero), target)
    assert company.orders[order.id].situacao_id == target


async def test_change_order_situation_to_an_unknown_one_is_refused(sim: Simulator) -> None:
    client, sent = await _client(sim)
    company = _company(sim)
    order = next(iter(company.orders.values()))
    before = order.situacao_id
    unknown = max(s.id for s in company.order_situations) + 1000
    mark = len(sent)
    with pytest.raises(InvalidRequest):
        await client.change_order_situation(OrderRef(bling_id=order.id), unknown)
    assert company.orders[order.id].situacao_id == before
    assert len(sent.since(mark)) == 1  # a 400 is not retried
    # another account's situation id is unknown to this one too
    other = sim.state.world.companies[1].order_situations[0].id
    assert all(s.id != other for s in company.order_situations)
    with pytest.raises(InvalidRequest):
        await client.change_order_situation(OrderRef(bling_id=order.id), other)
    assert company.orders[order.id].situacao_id == before


async def test_orders_need_a_bling_id(sim: Simulator) -> None:
    client, sent = await _client(sim)
    mark = len(sent)
    numero = next(iter(_company(sim).orders.values())).numero
    with pytest.raises(ValueError, match="Bling id"):
        await client.get_order(OrderRef(numero=numero))
    with pytest.raises(ValueError, match="Bling id"):
        await client.change_order_situation(OrderRef(numero=numero), 1)
    assert len(sent.since(mark)) == 0


async def test_order_situations_cache_the_module_id(sim: Simulator) -> None:
    client, sent = await _client(sim)
    company = _company(sim)
    before = client.stats.requests
    first = await client.order_situations()
    assert client.stats.requests - before == 2
    assert [(s.id, s.nome) for s in first] == [(s.id, s.nome) for s in company.order_situations]
    mark = len(sent)
    second = await client.order_situations()
    assert client.stats.requests - before == 3
    assert second == first
    assert len(sent.since(mark)) == 1
    assert sent.since(mark)[0].url.path.startswith("/Api/v3/situacoes/modulos/")
    # the cache is per client: each account has its own module id and situations
    other, _ = await _client(sim)
    assert await other.order_situations() == first


# --- logistics objects -------------------------------------------------------------------------


async def test_logistics_object_create_read_update(sim: Simulator) -> None:
    client, sent = await _client(sim)
    company = _company(sim)
    order = next(o for o in company.orders.values() if o.note_id)
    url = "https://rastreamento.correios.com.br/AB123456789BR"
    object_id = await client.create_logistics_object(
        TrackingChange(code="AB123456789BR", situation=TrackingSituation.POSTADO, url=url),
        sales_order_id=order.id)
    assert isinstance(object_id, int)
    stored = company.logistic_objects[object_id]
    assert stored.pedido_venda_id == order.id
    assert object_id in company.orders[order.id].volume_ids
    assert (stored.tracking_code, stored.tracking_situacao, stored.tracking_url) == (
        "AB123456789BR", 0, url)

    read = await client.get_logistics_object(object_id)
    assert read.id == object_id
    assert read.sales_order_id == order.id
    assert read.tracking is not None
    assert read.tracking.code == "AB123456789BR"
    assert read.tracking.situation is TrackingSituation.POSTADO
    assert read.tracking.url == url

    before = client.stats.requests
    mark = len(sent)
    await client.update_logistics_object(object_id, TrackingChange(situation=TrackingSituation.ENTREGUE))
    assert client.stats.requests - before == 2
    assert _paths(sent.since(mark)) == [f"GET /Api/v3/logisticas/objetos/{object_id}",
                                        f"PUT /Api/v3/logisticas/objetos/{object_id}"]
    after = await client.get_logistics_object(object_id)
    assert after.tracking is not None
    assert after.tracking.situation is TrackingSituation.ENTREGUE
    assert after.tracking.code == "AB123456789BR"
    assert after.tracking.url == url
    assert after.sales_order_id == order.id
    assert after.data_saida == read.data_saida
    assert stored.tracking_situacao == 3


async def test_update_writes_the_object_back_whole(sim: Simulator) -> None:
    """What the PUT carries is the object as read (the GET's `dimensao` sent as `dimensoes`,
    Bling's `embalagem {id: 0}` meaning none, so not sent) with only the change applied."""
    client, sent = await _client(sim)
    company = _company(sim)
    order = next(iter(company.orders.values()))
    object_id = await client.create_logistics_object(
        TrackingChange(code="AB123456789BR", situation=TrackingSituation.POSTADO,
                       description="Postado", origin="Campinas, SP", destination="Natal, RN",
                       dimensions=Dimensions(weight=Decimal("1.25"), height=Decimal("10"),
                                             width=Decimal("20"), length=Decimal("30.5")),
                       expected_days=4, expected_freight=Decimal("59.90"),
                       declared_value=Decimal("150"), notice_of_receipt=True),
        sales_order_id=order.id)
    posted = json.loads(sent.requests[-1].content)
    assert posted["fretePrevisto"] == 59.9 and posted["dimensoes"]["comprimento"] == 30.5
    assert "embalagem" not in posted
    stored = company.logistic_objects[object_id]
    assert (stored.peso, stored.comprimento, stored.frete_previsto) == (
        Decimal("1.25"), Decimal("30.5"), Decimal("59.9"))
    await client.update_logistics_object(
        object_id, TrackingChange(situation=TrackingSituation.EM_ANDAMENTO, expected_days=6))
    put = sent.requests[-1]
    assert put.method == "PUT"
    body = json.loads(put.content)
    # the situation changed: stamped with the time of the change, in Bling's format
    stamped = datetime.strptime(body["rastreamento"].pop("ultimaAlteracao"), "%Y-%m-%d %H:%M:%S")
    assert abs(stamped.replace(tzinfo=BRASILIA) - datetime.now(BRASILIA)) < timedelta(minutes=5)
    assert body["rastreamento"] == {
        "codigo": "AB123456789BR", "descricao": "Postado", "situacao": 1,
        "origem": "Campinas, SP", "destino": "Natal, RN", "url": "",
    }
    assert body["dimensoes"] == {"peso": 1.25, "altura": 10, "largura": 20, "comprimento": 30.5,
                                 "diametro": 0}
    assert "embalagem" not in body
    assert body["prazoEntregaPrevisto"] == 6
    assert (body["fretePrevisto"], body["valorDeclarado"]) == (59.9, 150)
    assert (body["avisoRecebimento"], body["maoPropria"]) == (True, False)
    assert body["dataSaida"] == stored.data_saida
    assert (stored.tracking_situacao, stored.prazo_entrega_previsto, stored.peso,
            stored.valor_declarado, stored.aviso_recebimento, stored.embalagem_id) == (
        1, 6, Decimal("1.25"), Decimal("150"), True, None)


async def test_logistics_object_for_a_note(sim: Simulator) -> None:
    client, _ = await _client(sim)
    company = _company(sim)
    note_id = next(iter(company.notes))
    object_id = await client.create_logistics_object(TrackingChange(code="X1"), note_id=note_id)
    read = await client.get_logistics_object(object_id)
    assert read.note_id == note_id
    assert read.tracking is not None and read.tracking.situation is TrackingSituation.NAO_POSTADO


async def test_create_without_order_or_note_sends_nothing(sim: Simulator) -> None:
    client, sent = await _client(sim)
    mark = len(sent)
    with pytest.raises(ValueError, match="sales order or a note"):
        await client.create_logistics_object(TrackingChange(code="X"))
    assert len(sent.since(mark)) == 0


async def test_create_is_not_retried_after_a_5xx(sim: Simulator) -> None:
    client, sent = await _client(sim)
    company = _company(sim)
    order = next(iter(company.orders.values()))
    objects = set(company.logistic_objects)
    sim.state.faults.configure(FaultSpec.parse("5xx=1,seed=1"))  # first answer: a 500
    mark = len(sent)
    with pytest.raises(BlingUnavailable) as raised:
        await client.create_logistics_object(TrackingChange(code="AB123456789BR"),
                                             sales_order_id=order.id)
    assert raised.value.status == 500
    assert _paths(sent.since(mark)) == ["POST /Api/v3/logisticas/objetos"]
    assert sim.state.faults.injected == {"5xx": 1}
    assert client.stats.retries == 0
    assert set(company.logistic_objects) == objects


async def test_reads_are_retried_after_a_5xx(sim: Simulator) -> None:
    """The contrast to the create: the same fault on an idempotent call is retried."""
    client, sent = await _client(sim)
    company = _company(sim)
    order = next(iter(company.orders.values()))
    object_id = await client.create_logistics_object(TrackingChange(code="A"), sales_order_id=order.id)
    sim.state.faults.configure(FaultSpec.parse("5xx=1,seed=1"))
    mark = len(sent)
    with pytest.raises(BlingUnavailable):
        await client.get_logistics_object(object_id)
    assert len(sent.since(mark)) == MAX_ATTEMPTS
    sim.state.faults.configure(FaultSpec())
    assert (await client.get_logistics_object(object_id)).id == object_id


# --- note XML -----------------------------------------------------------------------------------


async def _first_note(client: V3Client) -> NoteSummary:
    async for note in client.iter_notes(InvoiceStatus.DANFE_PRINTED, issued_from=WINDOW[0],
                                        issued_to=WINDOW[1]):
        if note.chave:
            return note
    raise AssertionError("no authorised note in the window")


def _expected_xml(sim: Simulator, summary: NoteSummary) -> bytes:
    company = _company(sim)
    return sim.state.note_xml(company, company.notes[summary.bling_id])


def _tampered(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, ("0" * len(v) if k == "signature" else v)) for k, v in
             parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_xml_through_the_signed_link(sim: Simulator) -> None:
    client, sent = await _client(sim)
    summary = await _first_note(client)
    detail = await client.get_note(summary.ref)
    assert detail.xml_url is not None
    mark = len(sent)
    xml = await client.get_note_xml(detail)
    fetched = sent.since(mark)
    assert len(fetched) == 1
    assert fetched[0].url.path == "/relatorios/nfe.xml.php"
    assert str(fetched[0].url) == detail.xml_url.reveal()
    assert "authorization" not in fetched[0].headers
    assert xml.startswith(b"<?xml")
    assert b"<nfeProc" in xml
    assert summary.chave is not None and summary.chave.encode() in xml
    assert xml == _expected_xml(sim, summary)


async def test_xml_falls_back_to_the_document_route_when_the_link_is_refused(
        sim: Simulator) -> None:
    client, sent = await _client(sim)
    summary = await _first_note(client)
    detail = await client.get_note(summary.ref)
    assert detail.xml_url is not None
    bad = _tampered(detail.xml_url.reveal())
    assert bad != detail.xml_url.reveal()
    tampered = detail.model_copy(update={"xml_url": Secret(bad)})
    mark = len(sent)
    xml = await client.get_note_xml(tampered)
    assert _paths(sent.since(mark)) == ["GET /relatorios/nfe.xml.php",
                                        f"GET /Api/v3/nfe/documento/{summary.chave}"]
    assert xml == _expected_xml(sim, summary)
    assert client.stats.by_status.get(403) == 1


async def test_xml_of_a_summary_uses_the_document_route(sim: Simulator) -> None:
    client, sent = await _client(sim)
    summary = await _first_note(client)
    mark = len(sent)
    xml = await client.get_note_xml(summary)
    requests = sent.since(mark)
    assert _paths(requests) == [f"GET /Api/v3/nfe/documento/{summary.chave}"]
    assert requests[0].url.params["formato"] == "xml"
    assert requests[0].headers["authorization"].startswith("Bearer ")
    assert xml == _expected_xml(sim, summary)
    assert await client.get_note_xml(summary.ref) == xml


# --- paging guard ------------------------------------------------------------------------------


async def _collect(items: AsyncIterator[T], into: list[T]) -> None:
    async for item in items:
        into.append(item)


def _ignoring_pagina(app: Callable[[Scope, Receive, Send], Any]) -> Callable[..., Any]:
    """The simulator behind a proxy that drops `pagina`: every page is the first. (Up to page
    `GIVE_UP`, so that a client without the guard ends, and its test fails, instead of hanging.)"""

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
            if all(int(v) <= GIVE_UP for k, v in query if k == "pagina"):
                query = [(k, v) for k, v in query if k != "pagina"]
            scope = {**scope, "query_string": urlencode(query).encode()}
        await app(scope, receive, send)

    return proxy


async def test_a_server_that_ignores_pagina_does_not_loop_forever(sim: Simulator) -> None:
    client, sent = await _client(sim, app=_ignoring_pagina(sim.app))
    mark = len(sent)
    notes: list[NoteSummary] = []
    with pytest.raises(InvalidResponse, match="pagina"):
        await _collect(client.iter_notes(InvoiceStatus.DANFE_PRINTED, issued_from=WINDOW[0],
                                         issued_to=WINDOW[1]), notes)
    pages = [r.url.params["pagina"] for r in sent.since(mark)]
    # months without notes end at their first (empty) page; the first month with notes gets
    # its page 1 twice, and that is where the client stops
    assert pages[-2:] == ["1", "2"] and set(pages[:-2]) <= {"1"}
    assert notes == []  # nothing of a period that could not be read to its end is handed out
    orders: list[Any] = []
    with pytest.raises(InvalidResponse, match="pagina"):
        await _collect(client.iter_orders(changed_from=WINDOW[0], changed_to=WINDOW[1]), orders)
    assert orders == []


async def test_a_constant_page_from_a_mock_transport_is_refused() -> None:
    """Independent of the simulator: a server answering the same one-note page for every
    `pagina` (and whatever the filters)."""
    sim = make_sim(accounts=1, invoices=30)
    client, _ = await _client(sim)
    page = (await client.transport.request_json(
        "GET", "/nfe", resource="nfe", params={"situacao": 6, "limite": 1, "pagina": 1}))
    assert len(page["data"]) == 1
    calls: list[httpx.Request] = []

    def same_page(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if int(request.url.params["pagina"]) > GIVE_UP:
            return httpx.Response(200, json={"data": []})
        return httpx.Response(200, json=page)

    client.transport.http = httpx.AsyncClient(transport=httpx.MockTransport(same_page),
                                              base_url="http://bling.test/Api/v3")
    seen: list[NoteSummary] = []
    notes = client.iter_notes(InvoiceStatus.DANFE_PRINTED, issued_from=WINDOW[0],
                              issued_to=WINDOW[1])
    with pytest.raises(InvalidResponse, match="pagina"):
        await _collect(notes, seen)
    assert seen == []
    assert [r.url.params["pagina"] for r in calls] == ["1", "2"]
