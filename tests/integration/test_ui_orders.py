"""Pedidos and Entregas end to end: `create_app(service)` over `httpx.ASGITransport`, an operator
signed in through the real `/entrar` form, orders written through the store (so the tests choose
every name, number and SKU, markup included), on SQLite and on PostgreSQL when reachable. One
test imports from the simulator instead, and finds a real imported order by its chave.

Every page every test sees is checked for unescaped markup and leaked secrets at the end."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape

from blingsync.config import Settings
from blingsync.domain import BRASILIA, Carrier, ExpeditionOrder, OrderLinks, Recipient
from blingsync.service import Service
from blingsync.store import Store
from blingsync.store.dashboard import DeliveryFilter, EventState, OrderSearch, fold, like_escape
from blingsync.store.records import Account, EventType
from blingsync.store.shipments import ShipmentReport, ShipmentStatus
from blingsync.web import ui
from blingsync.web.app import create_app
from blingsync.web.deps import Wakeups
from blingsync.web.ui import pages_orders
from blingsync.web.ui.pages_orders import format_chave
from tests.conftest import make_sim
from tests.integration.store_fixtures import (
    V3_SECRET,
    Clock,
    access_key,
    make_item,
    make_note,
    make_order,
    new_account,
)
from tests.integration.test_import import open_world
from tests.ui_support import BASE_URL, XSS_PAYLOADS, assert_escaped, csrf_of, signed_in_client

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 12:00 in Brasília


def ui_app(service: Service, wakeups: Wakeups) -> FastAPI:
    """The app as `blingsync serve` builds it; the order pages included even before the
    dashboard package includes them itself."""
    app = create_app(service, wakeups=wakeups)
    if not any(getattr(route, "path", None) == "/pedidos" for route in app.routes):
        app.include_router(pages_orders.router)
    ui.install(app)
    return app


@dataclass
class Ui:
    service: Service
    app: FastAPI
    http: httpx.AsyncClient
    clock: Clock
    pokes: list[None]
    pages: list[str] = field(default_factory=list)
    counter: int = 0

    @property
    def store(self) -> Store:
        return self.service.store

    async def get(self, path: str, **params: Any) -> httpx.Response:
        r = await self.http.get(path, params=params or None)  # an empty dict would drop path's query
        assert r.status_code == 200, (path, r.status_code, r.text[:1000])
        return r

    async def account(self, name: str | None = None) -> Account:
        return await self.store.add_account(new_account(name))

    async def order(self, account: Account, *, number: int | None = None, name: str | None = "Maria da Silva",
                    document: str | None = "12345678909", skus: Sequence[str] = ("SKU-1",),
                    issued_at: datetime | None = None, description: str | None = None,
                    links: OrderLinks | None = None, carrier: str = "Transportadora Rápida",
                    city: str = "São Paulo", series: int = 1, phone: str | None = None) -> int:
        """Store one order (a new chave each time) and return its id."""
        self.counter += 1
        number = number if number is not None else 5000 + self.counter
        items = tuple(replace(make_item(line, sku=sku), description=description or f"Produto {sku}")
                      for line, sku in enumerate(skus, start=1))
        base = make_order(number=number, items=items,
                          key=access_key(self.counter, cnpj=f"{account.id:08d}000195"))
        order: ExpeditionOrder = replace(
            base, series=series,
            recipient=Recipient(name=name, document=document, email="cliente@example.com", phone=phone),
            carrier=Carrier(name=carrier, document="11222333000181", state="SP"),
            delivery_address=replace(base.delivery_address, city=city),  # type: ignore[type-var]
            issued_at=issued_at or base.issued_at)
        note = make_note(order, bling_id=self.counter, links=links)
        outcome = await self.store.save_order(account.id, note)
        assert outcome.order_id is not None
        return outcome.order_id

    async def first_event(self, order_id: int) -> int:
        [event, *_] = await self.store.order_events(order_id)
        return event.id


@contextlib.asynccontextmanager
async def open_ui(tmp_path: Path, db_url: str) -> AsyncIterator[Ui]:
    clock = Clock(T0)
    settings = Settings(data_dir=tmp_path, database_url=db_url, secret_key=None,
                        bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2")
    async with Service.open(settings, warn=lambda _: None, now=clock) as service:
        pokes: list[None] = []
        app = ui_app(service, Wakeups(outbox=lambda: pokes.append(None)))
        http = await signed_in_client(app, service.store)
        opened = Ui(service, app, http, clock, pokes)

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            if response.headers.get("content-type", "").startswith("text/html"):
                opened.pages.append(response.text)

        http.event_hooks = {"request": [], "response": [keep]}
        try:
            yield opened
        finally:
            await http.aclose()
        for page in opened.pages:
            assert_escaped(page)
            assert V3_SECRET not in page


@pytest.fixture
async def ui_world(tmp_path: Path, db_url: str) -> AsyncIterator[Ui]:
    async with open_ui(tmp_path, db_url) as opened:
        yield opened


def result_ids(page: str) -> list[int]:
    """The orders a result table lists, in order."""
    table = page.split('<table class="table table--stack table--orders">', 1)
    if len(table) < 2:
        return []
    return [int(i) for i in re.findall(r'href="/pedidos/(\d+)"', table[1].split("</table>", 1)[0])]


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a [^>]*href="([^"]+)" rel="{rel}"', page)
    return None if found is None else html.unescape(found.group(1))


def text_of(page: str) -> str:
    """The page's visible text, tags removed and entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# --- Pedidos: search ---------------------------------------------------------------------------


async def test_search_finds_an_order_by_each_key(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account("Marca Azul")
    jose = await ui.order(brand, number=1001, name="José da Silva", document="12345678909",
                          skus=("CAM-AZUL-M",))
    empresa = await ui.order(brand, number=1002, name="Comércio Ávila LTDA", document="11222333000181",
                             skus=("CAM-AZUL-M", "MEIA-01"))
    other = await ui.order(brand, number=2002, name="Ana Paula", document="98765432100", skus=("BONE-9",))
    chave = (await ui.store.order(jose)).order.access_key

    async def found(q: str) -> list[int]:
        return result_ids((await ui.get("/pedidos", q=q)).text)

    assert await found("1001") == [jose]
    assert await found(format_chave(chave)) == [jose]  # as printed on the DANFE, with spaces
    assert await found(chave) == [jose]
    assert await found(f"  {chave[:20]} {chave[20:]} ") == [jose]
    assert await found("silva") == [jose]  # part of the name, any case
    assert await found("JOSE DA") == [jose]  # without the accent
    assert await found("avila") == [empresa]
    assert await found("Comércio Ávila") == [empresa]
    assert await found("123.456.789-09") == [jose]  # CPF with punctuation
    assert await found("12345678909") == [jose]
    assert await found("11.222.333/0001-81") == [empresa]  # CNPJ with punctuation
    assert await found("CAM-AZUL-M") == [empresa, jose]  # SKU, newest first
    assert await found("cam-azul-m") == [empresa, jose]
    assert await found("MEIA-01") == [empresa]
    assert await found("BONE-9") == [other]
    assert await found("nobody at all") == []
    assert await found("") == [other, empresa, jose]
    empty = await ui.get("/pedidos", q="nobody at all")
    assert "Nenhum pedido encontrado" in empty.text


async def test_like_wildcards_in_the_search_are_literal(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account()
    percent = await ui.order(brand, name="100% Algodão Modas")
    underscore = await ui.order(brand, name="Loja_Azul")
    look_alike = await ui.order(brand, name="LojaXAzul")
    await ui.order(brand, name="Ana")
    backslash = await ui.order(brand, name="Barra \\ Invertida")

    async def found(q: str) -> set[int]:
        return set(result_ids((await ui.get("/pedidos", q=q)).text))

    assert await found("%") == {percent}
    assert await found("0% a") == {percent}
    assert await found("_") == {underscore}
    assert await found("Loja_Azul") == {underscore}
    assert await found("Loja%Azul") == set()
    assert await found("LojaXAzul") == {look_alike}
    assert await found("\\") == {backslash}
    assert like_escape("a%b_c\\") == "a\\%b\\_c\\\\"
    assert fold("ÁGUA Çãô é") == "agua cao e"


async def test_filters_by_brand_status_issue_date_and_delivery(ui_world: Ui) -> None:
    ui = ui_world
    azul, verde = await ui.account("Azul"), await ui.account("Verde")
    day = datetime(2026, 11, 10, 12, 0, tzinfo=BRASILIA)
    a1 = await ui.order(azul, issued_at=day)
    # 23:30 in Brasília on the 11th is already the 12th in UTC: still the 11th for the filter.
    a2 = await ui.order(azul, issued_at=datetime(2026, 11, 11, 23, 30, tzinfo=BRASILIA))
    a3 = await ui.order(azul, issued_at=day + timedelta(days=5))
    v1 = await ui.order(verde, issued_at=day)
    canceled_bling_id = ui.counter
    await ui.store.cancel_order(verde.id, canceled_bling_id)

    async def found(**params: str) -> list[int]:
        return result_ids((await ui.get("/pedidos", **params)).text)

    assert await found(marca=str(azul.id)) == [a3, a2, a1]
    assert await found(marca=str(verde.id)) == [v1]
    assert await found(status="canceled") == [v1]
    assert await found(status="ready") == [a3, a2, a1]
    assert await found(de="2026-11-11", ate="2026-11-11") == [a2]
    assert await found(de="2026-11-10", ate="2026-11-11") == [a2, v1, a1]  # newest issued first
    assert await found(de="2026-11-12") == [a3]
    assert await found(ate="2026-11-10") == [v1, a1]
    # Delivery: a1 delivered, a2 dead, the rest pending.
    await ui.store.mark_delivered(await ui.first_event(a1), attempt_duration=timedelta(milliseconds=80))
    await ui.store.mark_dead(await ui.first_event(a2), "HTTP 503")
    assert await found(entrega="delivered") == [a1]
    assert await found(entrega="dead") == [a2]
    assert set(await found(entrega="pending")) == {a3, v1}  # v1: created and cancel events pending
    assert await found(entrega="dead", marca=str(verde.id)) == []
    page = (await ui.get("/pedidos", marca=str(azul.id))).text
    badges = re.findall(r'<span class="badge badge--(\w+)">([^<]+)</span>', page.split("<tbody>", 1)[1])
    assert ("ok", "Entregue") in badges and ("error", "Falhou") in badges and ("warn", "Pendente") in badges
    # Bad filters are named and ignored, never a 422.
    bad = await ui.get("/pedidos", de="31/02/2026", status="talvez", entrega="x", marca="abc")
    assert result_ids(bad.text) == [a3, a2, v1, a1]
    assert "não é válida" in text_of(bad.text) and "Situação desconhecida" in text_of(bad.text)
    reversed_range = await ui.get("/pedidos", de="2026-11-12", ate="2026-11-10")
    assert "posterior à final" in text_of(reversed_range.text)
    assert len(result_ids(reversed_range.text)) == 4


def result_rows(page: str) -> list[list[str]]:
    """The result table's rows, each a list of its cells' text."""
    body = page.split('<table class="table table--stack table--orders">', 1)[1].split("</tbody>", 1)[0]
    return [[text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)]


async def test_a_result_is_one_line_without_a_series_column(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account("Marca Com Um Nome Muito Comprido Mesmo")
    city = "São José do Vale do Rio Preto"
    first = await ui.order(brand, number=700, city=city, name="Maria Aparecida dos Santos Oliveira")
    page = (await ui.get("/pedidos")).text
    headers = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', page.split("table--orders", 1)[1])
    assert headers == ["Número", "Marca", "Destinatário", "Cidade/UF", "Valor", "Emitida em", "Situação",
                       "Entrega"]
    [row] = result_rows(page)
    assert row[0] == "700"  # one series on the page: the number alone
    assert row[1] == brand.name and row[3] == f"{city}/SP"
    assert row[2] == "Maria Aparecida dos Santos Oliveira"  # the CPF in its title, and on the order's page
    assert 'title="Maria Aparecida dos Santos Oliveira · 123.456.789-09"' in page
    # Long brand and city names are cut on screen, whole in their title (and to a screen reader).
    assert f'<span class="clip" title="{brand.name}">' in page
    assert f'<span class="clip" title="{city}/SP">' in page
    assert re.search(r'<td data-label="Destinatário" class="fill" title=', page)
    # Two series on one page: the series tells the numbers apart.
    second = await ui.order(brand, number=700, series=2)
    rows = result_rows((await ui.get("/pedidos")).text)
    assert [r[0] for r in rows] == ["700 · série 2", "700 · série 1"]
    assert result_ids((await ui.get("/pedidos")).text) == [second, first]
    queue = text_of((await ui.get("/entregas")).text)  # the queue too
    assert "NF-e 700 · série 1" in queue and "NF-e 700 · série 2" in queue


async def test_both_filter_forms_keep_what_was_chosen(ui_world: Ui) -> None:
    ui = ui_world
    azul = await ui.account("Azul")
    await ui.account("Verde")
    orders_page = (await ui.get("/pedidos", marca=str(azul.id), status="canceled", entrega="dead",
                                de="2026-11-01", ate="2026-11-02")).text
    deliveries_page = (await ui.get("/entregas", marca=str(azul.id), estado="dead")).text

    def chosen(page: str, name: str) -> list[str]:
        opening = f'<select class="select" id="{name}" name="{name}">'
        select = page.split(opening, 1)[1].split("</select>", 1)[0]
        return re.findall(r'<option value="([^"]*)" selected>', select)

    for page, state in ((orders_page, "entrega"), (deliveries_page, "estado")):
        assert chosen(page, "marca") == [str(azul.id)]
        assert chosen(page, state) == ["dead"]
        assert '<label class="field__label" for="marca">Marca</label>' in page
        assert ">Limpar filtros</a>" in page
    assert chosen(orders_page, "status") == ["canceled"]
    assert 'id="de" name="de" value="2026-11-01"' in orders_page
    assert 'id="ate" name="ate" value="2026-11-02"' in orders_page
    for path in ("/pedidos", "/entregas"):
        plain = (await ui.get(path)).text
        assert chosen(plain, "marca") == [] and ">Limpar filtros</a>" not in plain


async def test_pages_follow_the_keyset_without_duplicates_or_gaps(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account()
    ids = [await ui.order(brand, name=f"Cliente {n}") for n in range(pages_orders.PAGE_SIZE * 2 + 7)]
    seen: list[int] = []
    page = (await ui.get("/pedidos")).text
    assert link(page, "prev") is None
    late: list[int] = []
    while True:
        seen += result_ids(page)
        older = link(page, "next")
        if older is None:
            break
        if not late:  # orders arriving while someone pages: they are newer, never in the pages ahead
            late = [await ui.order(brand, name="Chegou depois") for _ in range(3)]
        page = (await ui.get(older)).text
    assert seen == sorted(ids, reverse=True)
    assert len(set(seen)) == len(seen)
    # And back, page by page, to the newest, which now includes the late arrivals.
    back: list[int] = result_ids(page)
    while (newer := link(page, "prev")) is not None:
        page = (await ui.get(newer)).text
        back = result_ids(page) + back
    assert back == sorted(ids + late, reverse=True)
    # Filters travel with the page links.
    filtered = (await ui.get("/pedidos", q="Cliente", marca=str(brand.id))).text
    older = link(filtered, "next")
    assert older is not None and "q=Cliente" in older and f"marca={brand.id}" in older


# --- Pedido: one order -------------------------------------------------------------------------


async def test_the_order_page_shows_what_the_warehouse_needs(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account("Marca Exemplo")
    order_id = await ui.order(brand, number=4321, name="Maria da Silva", document="12345678909",
                              skus=("CAM-AZUL-M", "MEIA-01"), phone="11987654321")
    stored = await ui.store.order(order_id)
    page = (await ui.get(f"/pedidos/{order_id}")).text
    text = text_of(page)
    assert "NF-e 4321 · série 1" in text
    assert "Marca Exemplo" in text
    assert "Maria da Silva" in text and "123.456.789-09" in text
    assert "(11) 98765-4321" in text and "11987654321" not in text  # the phone as people write it
    assert "Rua das Flores, 100 · Apto 5" in text and "São Paulo/SP" in text and "CEP 01001-000" in text
    for item in stored.order.items:
        assert item.sku in text and item.description in text
    assert "2 UN" in text and "R$ 10,00" in text and "R$ 20,00" in text  # quantity, unit value, total
    assert "CAIXA" in text and "1,500 kg" in text and "1,250 kg" in text  # volume, gross and net weight
    assert "Transportadora Rápida" in text and "11.222.333/0001-81" in text
    assert "Remetente (CIF)" in text
    assert format_chave(stored.order.access_key) in text
    assert f'href="/pedidos/{order_id}/xml"' in page
    assert 'href="https://bling.test/danfe/' in page and 'rel="noopener noreferrer"' in page
    assert "Importado do Bling" in text
    assert "Pedido novo" in text and "Pendente" in text  # the delivery attempt, not tried yet


async def test_the_xml_is_downloaded_as_stored(ui_world: Ui) -> None:
    ui = ui_world
    order_id = await ui.order(await ui.account())
    stored = await ui.store.order(order_id)
    r = await ui.http.get(f"/pedidos/{order_id}/xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert r.headers["content-disposition"] == f'attachment; filename="{stored.order.access_key}.xml"'
    assert r.content == await ui.store.document(order_id)
    assert (await ui.http.get("/pedidos/999999/xml")).status_code == 404
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ui.app), base_url=BASE_URL) as anonymous:
        refused = await anonymous.get(f"/pedidos/{order_id}/xml")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/entrar?next=")
        assert (await anonymous.get("/pedidos")).status_code == 303
        assert (await anonymous.get(f"/pedidos/{order_id}")).status_code == 303
        assert (await anonymous.get("/entregas")).status_code == 303


async def test_an_unknown_order_is_a_404_page(ui_world: Ui) -> None:
    ui = ui_world
    r = await ui.http.get("/pedidos/424242")
    assert r.status_code == 404
    assert "não existe" in text_of(r.text)
    # Numbers past what the id columns hold are misses too, never a database error.
    huge = str(2**70)
    for path in (f"/pedidos/{huge}", f"/pedidos/{huge}/xml"):
        assert (await ui.http.get(path)).status_code == 404
    for params in ({"antes": huge}, {"depois": huge}, {"marca": huge}, {"q": huge}):
        assert (await ui.http.get("/pedidos", params=params)).status_code == 200
    for params in ({"apos": huge}, {"marca": huge}):
        assert (await ui.http.get("/entregas", params=params)).status_code == 200
    page = (await ui.get("/entregas")).text
    r = await ui.http.post(f"/entregas/{huge}/reenviar", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == "/entregas"


async def test_the_timeline_tells_the_order_s_life_in_order(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account()
    order_id = await ui.order(brand, number=777)
    bling_id = ui.counter
    created = await ui.first_event(order_id)
    ui.clock.advance(minutes=5)
    await ui.store.mark_delivered(created, attempt_duration=timedelta(milliseconds=240))
    ui.clock.advance(hours=1)
    stored = await ui.store.order(order_id)
    changed = replace(stored.order, total_value=Decimal("99.90"), products_value=Decimal("99.90"))
    await ui.store.save_order(brand.id, make_note(changed, bling_id=bling_id))
    ui.clock.advance(hours=1)
    await ui.store.record_shipment(order_id, ShipmentReport(
        status=ShipmentStatus.SHIPPED, tracking_code="BR123456789", carrier="Correios",
        shipped_at=ui.clock.now))
    ui.clock.advance(hours=1)
    await ui.store.cancel_order(brand.id, bling_id)
    events = await ui.store.order_events(order_id)
    assert [e.type for e in events] == [EventType.CREATED, EventType.UPDATED, EventType.CANCELED]
    ui.clock.advance(minutes=10)
    await ui.store.mark_dead(events[1].id, "HTTP 500: o armazém recusou",
                             attempt_duration=timedelta(seconds=1.25))

    page = (await ui.get(f"/pedidos/{order_id}")).text
    timeline = text_of(page.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0])
    expected = ["Importado do Bling", "Entregue ao armazém: Pedido novo", "Nota alterada no Bling (versão 2)",
                "Expedido: postado · Correios · rastreio BR123456789", "Cancelado no Bling",
                "Entrega falhou e parou de ser tentada: Alteração (versão 2)"]
    positions = [timeline.find(entry) for entry in expected]
    assert all(p >= 0 for p in positions), (timeline, positions)
    assert positions == sorted(positions)
    assert "20/11/2026 12:00" in timeline  # imported at 15:00 UTC: noon in São Paulo
    attempts = text_of(page.split('id="attempts-heading"', 1)[1])
    assert "HTTP 500: o armazém recusou" in attempts and "1,3 s" in attempts and "240 ms" in attempts
    assert page.count('action="/entregas/') == 1  # a replay button for the dead one only
    assert f'action="/entregas/{events[1].id}/reenviar"' in page


# --- Entregas ----------------------------------------------------------------------------------


async def test_a_dead_delivery_is_replayed_from_the_page(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account("Marca Fila")
    order_id = await ui.order(brand, number=31)
    event = await ui.first_event(order_id)
    await ui.store.mark_dead(event, "HTTP 410 Gone", attempt_duration=timedelta(milliseconds=30))
    page = (await ui.get("/entregas")).text
    assert f'action="/entregas/{event}/reenviar"' in page
    assert "HTTP 410 Gone" in page and "NF-e 31 Maria da Silva" in text_of(page)  # one series: no "série"
    assert "série" not in text_of(page.split("table--deliveries", 1)[1])
    assert "HTTP 410 Gone 1 tentativa · levou 30 ms" in text_of(page)  # the attempts under the error
    r = await ui.http.post(f"/entregas/{event}/reenviar",
                           data={"csrf_token": csrf_of(page), "voltar": f"/pedidos/{order_id}"})
    assert r.status_code == 303 and r.headers["location"] == f"/pedidos/{order_id}"
    replayed = await ui.store.event(event)
    assert replayed.dead_at is None and replayed.replayed_at is not None
    assert replayed.next_attempt_at is not None
    assert len(ui.pokes) == 1  # the relay is woken at once
    after = (await ui.get(f"/pedidos/{order_id}")).text
    assert f"Entrega {event} reenviada" in text_of(after)  # the one-shot message, once
    assert f"Entrega {event} reenviada" not in text_of((await ui.get(f"/pedidos/{order_id}")).text)
    # Replaying a delivered event says so and changes nothing; a foreign return address is not followed.
    await ui.store.mark_delivered(event, attempt_duration=timedelta(milliseconds=5))
    r = await ui.http.post(f"/entregas/{event}/reenviar",
                           data={"csrf_token": csrf_of(page), "voltar": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/entregas"
    assert "já foi entregue" in text_of((await ui.get("/entregas")).text)
    assert len(ui.pokes) == 1
    r = await ui.http.post("/entregas/987654/reenviar",
                           data={"csrf_token": csrf_of(page), "voltar": "//evil"})
    assert r.status_code == 303 and r.headers["location"] == "/entregas"


async def test_replay_without_the_csrf_token_is_refused_and_changes_nothing(ui_world: Ui) -> None:
    ui = ui_world
    order_id = await ui.order(await ui.account())
    event = await ui.first_event(order_id)
    await ui.store.mark_dead(event, "HTTP 500")
    before = await ui.store.event(event)
    page = (await ui.get("/entregas")).text
    assert (await ui.http.post(f"/entregas/{event}/reenviar", data={})).status_code == 403
    wrong = {"csrf_token": "x" * 43}
    assert (await ui.http.post(f"/entregas/{event}/reenviar", data=wrong)).status_code == 403
    assert (await ui.http.post(f"/entregas/{event}/reenviar",
                               headers={"X-CSRF-Token": csrf_of(page) + "x"})).status_code == 403
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ui.app), base_url=BASE_URL) as anonymous:
        r = await anonymous.post(f"/entregas/{event}/reenviar", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 401
    assert await ui.store.event(event) == before
    assert ui.pokes == []
    # The same token in the HTMX header is accepted.
    ok = await ui.http.post(f"/entregas/{event}/reenviar", headers={"X-CSRF-Token": csrf_of(page)})
    assert ok.status_code == 303
    assert (await ui.store.event(event)).dead_at is None


async def test_the_queue_filters_and_pages_and_the_counts_refresh(ui_world: Ui) -> None:
    ui = ui_world
    azul, verde = await ui.account("Azul"), await ui.account("Verde")
    azul_orders = [await ui.order(azul) for _ in range(pages_orders.PAGE_SIZE + 5)]
    verde_order = await ui.order(verde)
    dead = await ui.first_event(azul_orders[0])
    await ui.store.mark_dead(dead, "HTTP 502")
    await ui.store.mark_delivered(await ui.first_event(azul_orders[1]), attempt_duration=timedelta(0))

    def events_listed(page: str) -> list[int]:
        body = page.split('<table class="table table--stack table--deliveries">', 1)
        if len(body) < 2:
            return []
        return [int(i) for i in re.findall(r'href="/pedidos/(\d+)"', body[1].split("</table>", 1)[0])]

    first = (await ui.get("/entregas")).text
    nxt = link(first, "next")
    assert nxt is not None
    second = (await ui.get(nxt)).text
    listed = events_listed(first) + events_listed(second)
    expected = [o for o in azul_orders if o != azul_orders[1]] + [verde_order]
    assert listed == expected and link(second, "next") is None
    assert events_listed((await ui.get("/entregas", estado="dead")).text) == [azul_orders[0]]
    assert events_listed((await ui.get("/entregas", marca=str(verde.id))).text) == [verde_order]
    assert events_listed((await ui.get("/entregas", estado="dead", marca=str(verde.id))).text) == []

    # The counts: on the page in a polite live region polled every 10 s, and as a fragment.
    assert 'aria-live="polite"' in first and 'hx-trigger="every 10s"' in first
    assert 'hx-get="/entregas/contagens"' in first
    fragment = (await ui.get("/entregas/contagens")).text
    assert "<html" not in fragment and "<body" not in fragment
    counts = dict(re.findall(r'data-count="(\w+)">([^<]+)<', fragment))
    assert counts == {"dead": "1", "pending": str(len(expected) - 1), "imported": str(len(azul_orders) + 1)}
    only_verde = dict(re.findall(r'data-count="(\w+)">([^<]+)<', (await ui.get(
        "/entregas/contagens", marca=str(verde.id))).text))
    assert only_verde == {"dead": "0", "pending": "1", "imported": "1"}
    filtered = (await ui.get("/entregas", marca=str(verde.id))).text
    assert f'hx-get="/entregas/contagens?marca={verde.id}"' in filtered
    await ui.store.mark_delivered(await ui.first_event(verde_order), attempt_duration=timedelta(0))
    after = dict(re.findall(r'data-count="(\w+)">([^<]+)<', (await ui.get("/entregas/contagens")).text))
    assert after["pending"] == str(len(expected) - 2)
    # A tomorrow in Brasília starts a new "imported today" (the session kept alive on the way).
    ui.clock.now = datetime(2026, 11, 21, 2, 59, tzinfo=UTC)
    assert dict(re.findall(r'data-count="(\w+)">([^<]+)<', (await ui.get(
        "/entregas/contagens")).text))["imported"] == str(len(azul_orders) + 1)
    ui.clock.now = datetime(2026, 11, 21, 3, 1, tzinfo=UTC)
    assert dict(re.findall(r'data-count="(\w+)">([^<]+)<', (await ui.get(
        "/entregas/contagens")).text))["imported"] == "0"


async def test_counts_stop_at_their_cap(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account()
    for _ in range(4):
        await ui.order(brand)
    counts = await ui.store.delivery_counts(cap=3)
    assert (counts.pending.value, counts.pending.capped) == (3, True)
    assert (counts.imported_today.value, counts.imported_today.capped) == (3, True)
    assert (counts.dead.value, counts.dead.capped) == (0, False)
    exact = await ui.store.delivery_counts(cap=4)
    assert (exact.pending.value, exact.pending.capped) == (4, False)


async def test_the_chart_counts_orders_per_brasilia_day_and_brand(ui_world: Ui) -> None:
    ui = ui_world
    brands = [await ui.account(f"Marca {chr(65 + i)}") for i in range(7)]
    # Brand i imports 7 - i orders today (20/11 in Brasília) ...
    for i, brand in enumerate(brands):
        for _ in range(7 - i):
            await ui.order(brand)
    # ... Marca A one more at 01:30 UTC on the 20th, which is the 19th in Brasília ...
    ui.clock.now = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    await ui.order(brands[0])
    # ... and one 40 days ago, outside the window.
    ui.clock.now = T0 - timedelta(days=40)
    await ui.order(brands[0])
    ui.clock.now = T0
    data = await ui.store.orders_per_day(days=30, top=5)
    assert len(data.days) == 30 and data.days[-1].isoformat() == "2026-11-20"
    assert [s.name for s in data.series] == ["Marca A", "Marca B", "Marca C", "Marca D", "Marca E", None]
    assert [s.total for s in data.series] == [8, 6, 5, 4, 3, 2 + 1]
    assert data.series[0].counts[-1] == 7 and data.series[0].counts[-2] == 1
    assert data.totals[-1] == sum(range(1, 8)) and sum(data.totals) == sum(range(1, 8)) + 1
    only_b = await ui.store.orders_per_day(days=30, top=5, account_id=brands[1].id)
    assert [(s.name, s.total) for s in only_b.series] == [("Marca B", 6)]

    page = (await ui.get("/entregas")).text
    svg = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert 'role="img"' in svg and 'aria-labelledby="orders-per-day-title orders-per-day-desc"' in svg
    assert "Pedidos importados por dia nos últimos 30 dias" in svg
    legend = text_of(page.split('<ul class="chart__legend">', 1)[1].split("</ul>", 1)[0])
    assert legend == "Marca A 8 Marca B 6 Marca C 5 Marca D 4 Marca E 3 Outras 3"
    assert "<caption>" in page  # the table of numbers


async def test_the_chart_says_when_there_is_nothing_to_draw(ui_world: Ui) -> None:
    page = (await ui_world.get("/entregas")).text
    assert "Nenhum pedido importado nos últimos 30 dias" in page
    assert "Tudo entregue" in page


# --- XSS ----------------------------------------------------------------------------------------


async def test_markup_in_order_data_and_in_every_field_is_shown_as_text(ui_world: Ui) -> None:
    ui = ui_world
    payload = XSS_PAYLOADS[0]
    brand = await ui.account(payload)  # the brand's name too: it labels the chart
    other = await ui.account(XSS_PAYLOADS[1])
    order_id = await ui.order(brand, name=payload, description=XSS_PAYLOADS[1], skus=(XSS_PAYLOADS[2],),
                              carrier=XSS_PAYLOADS[1], city=XSS_PAYLOADS[2],
                              links=OrderLinks(danfe="javascript:alert(1)", xml=None))
    named = await ui.order(other, name=XSS_PAYLOADS[2])
    await ui.store.mark_dead(await ui.first_event(order_id), XSS_PAYLOADS[0] + " HTTP 500")

    detail = (await ui.get(f"/pedidos/{order_id}")).text
    assert str(escape(payload)) in detail
    assert "javascript:" not in detail.split("</header>", 2)[1]  # the DANFE "link" is not a link
    listing = (await ui.get("/pedidos")).text
    assert str(escape(payload)) in listing
    deliveries = (await ui.get("/entregas")).text
    chart = deliveries.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "&lt;script&gt;" in chart  # the brand's name, as a label in the SVG, escaped
    for candidate in XSS_PAYLOADS:
        for field_name in ("q", "marca", "status", "de", "ate", "entrega", "antes", "depois"):
            r = await ui.http.get("/pedidos", params={field_name: candidate})
            assert r.status_code == 200
        found = await ui.http.get("/pedidos", params={"q": candidate})
        assert found.status_code == 200
        for field_name in ("marca", "estado", "apos"):
            assert (await ui.http.get("/entregas", params={field_name: candidate})).status_code == 200
            counts = await ui.http.get("/entregas/contagens", params={field_name: candidate})
            assert counts.status_code == 200
    # Markup is still searchable (here a SKU and a name), and shown as text in the search box.
    searched = (await ui.get("/pedidos", q=XSS_PAYLOADS[2])).text
    assert sorted(result_ids(searched)) == sorted([named, order_id])
    assert f'value="{escape(XSS_PAYLOADS[2])}"' in searched
    # A replay whose return address is markup goes to /entregas, and its flash is plain text.
    page = (await ui.get("/entregas")).text
    r = await ui.http.post(f"/entregas/{await ui.first_event(order_id)}/reenviar",
                           data={"csrf_token": csrf_of(page), "voltar": XSS_PAYLOADS[1]})
    assert r.headers["location"] == "/entregas"
    # Every page seen is checked for raw markup when the fixture closes (assert_escaped).


# --- store-level reads ------------------------------------------------------------------------


async def test_search_reads_of_the_store_directly(ui_world: Ui) -> None:
    ui = ui_world
    brand = await ui.account()
    ids = [await ui.order(brand, name=f"Pessoa {n}") for n in range(5)]
    page = await ui.store.search_orders(OrderSearch(), limit=2)
    assert [r.summary.id for r in page.rows] == ids[:-3:-1] and page.newer is None and page.older == ids[3]
    last = await ui.store.search_orders(OrderSearch(), before_id=ids[1], limit=2)
    assert [r.summary.id for r in last.rows] == [ids[0]] and last.older is None and last.newer == ids[0]
    back = await ui.store.search_orders(OrderSearch(), after_id=ids[0], limit=2)
    assert [r.summary.id for r in back.rows] == [ids[2], ids[1]] and back.newer == ids[2]
    assert back.rows[0].city == "São Paulo" and back.rows[0].state == "SP"
    assert (await ui.store.search_orders(OrderSearch(delivery=DeliveryFilter.DELIVERED))).rows == []
    queue = await ui.store.delivery_queue(state=EventState.PENDING, limit=3)
    assert [r.event.order_id for r in queue.rows] == ids[:3] and queue.older == queue.rows[-1].event.id


# --- an order imported from the simulator ------------------------------------------------------


async def test_an_imported_order_is_found_by_its_chave_and_opened(tmp_path: Path, db_url: str) -> None:
    sim = make_sim(accounts=1, invoices=40)
    async with open_world(sim, httpx.ASGITransport(app=sim.app), tmp_path, db_url) as world:
        await world.add_v3()
        [outcome] = await world.service.sync()
        assert outcome.report is not None and outcome.report.ok
        [stored, *_] = await world.service.store.orders(limit=1)
        app = ui_app(world.service, Wakeups())
        http = await signed_in_client(app, world.service.store)
        try:
            r = await http.get("/pedidos", params={"q": format_chave(stored.order.access_key)})
            assert r.status_code == 200 and result_ids(r.text) == [stored.id]
            page = await http.get(f"/pedidos/{stored.id}")
            assert page.status_code == 200
            text = text_of(page.text)
            assert format_chave(stored.order.access_key) in text
            for item in stored.order.items:
                assert item.sku in text
            xml = await http.get(f"/pedidos/{stored.id}/xml")
            assert xml.status_code == 200 and xml.content == await world.service.store.document(stored.id)
            assert_escaped(r.text)
            assert_escaped(page.text)
        finally:
            await http.aclose()
