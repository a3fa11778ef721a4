"""The SmartGo sink through the real Relay and StoreSinks, against the fake gateway
(`blingsync.simulator.smartgo`) over httpx.ASGITransport, on SQLite and PostgreSQL (`db_url`).
Time is the store's and relay's fake clock; the fake's rate window reads the same clock."""
# ruff: noqa: F811  (fixtures imported from store_fixtures are "redefined" as parameters)

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from blingsync.bling.secrets import Secret
from blingsync.delivery import Relay, StoreSinks
from blingsync.delivery.sinks import smartgo_sink_config
from blingsync.simulator.smartgo import SmartGoFake
from blingsync.store import Store
from blingsync.store.records import SinkConfig, SinkKind
from tests.integration.store_fixtures import (  # noqa: F401  (fixtures are used by name)
    Clock,
    box,
    clock,
    db_url,
    make_note,
    make_order,
    new_account,
    pg_url,
    store,
    with_total,
)

API_KEY = "sg-key-" + "A1b2C3d4" * 12
DOC = "44555666000199"
BASE = "http://smartgo.test"


@pytest.fixture
def fake(clock: Clock) -> SmartGoFake:
    return SmartGoFake(api_keys={API_KEY: DOC}, products={"SKU-1"}, clock=lambda: clock().timestamp())


@pytest.fixture
async def http(fake: SmartGoFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app())) as client:
        yield client


async def setup(store: Store, key: str = API_KEY, **kw: str) -> int:
    account = await store.add_account(new_account())
    await store.set_sink(account.id, smartgo_sink_config(key, doc_depositante=DOC, base_url=BASE, **kw))
    return account.id


def relay_for(store: Store, http: httpx.AsyncClient, clock: Clock) -> Relay:
    return Relay(store, StoreSinks(store, http, clock=clock), clock, rng=random.Random(5))


async def test_create_then_cancel_reaches_the_gateway(store: Store, clock: Clock, fake: SmartGoFake,
                                                      http: httpx.AsyncClient) -> None:
    account = await setup(store)
    order = make_order(number=7)
    await store.save_order(account, make_note(order, bling_id=7))
    await store.cancel_order(account, 7)
    relay = relay_for(store, http, clock)
    assert (await relay.run_once()).delivered == 1  # the cancel waits behind its create
    assert (await relay.run_once()).delivered == 1
    assert all(e.delivered_at is not None for e in await store.outbox(account_id=account))

    create, cancel = fake.received
    assert (create.method, create.path, cancel.method, cancel.path) == (
        "POST", "/expedicao/produto", "PATCH", "/expedicao/pedido/cancelar")
    assert create.headers["api_key"] == API_KEY and create.headers["doc_depositante"] == "44.555.666/0001-99"
    assert create.body == {"cabecalho": {"codigoExterno": order.access_key, "observacao": "NF-e 1-7",
                                         "origemPedido": "INTEGRACAO_API"},
                           "pedidoItens": [{"numeroDoItem": 1, "codigoProduto": "SKU-1", "quantidade": 2}]}
    assert cancel.body["codigoExterno"] == order.access_key
    assert fake.order(order.access_key).status == "CANCELADO"


@pytest.mark.parametrize("mode", ["return", "error"])
async def test_an_update_of_an_existing_expedicao_counts_as_delivered(
        mode: str, store: Store, clock: Clock, fake: SmartGoFake, http: httpx.AsyncClient) -> None:
    fake.duplicate = mode
    account = await setup(store)
    order = make_order(number=8)
    await store.save_order(account, make_note(order, bling_id=8))
    await store.save_order(account, make_note(with_total(order, "31.00"), bling_id=8))
    relay = relay_for(store, http, clock)
    await relay.run_once()
    await relay.run_once()
    assert all(e.delivered_at is not None for e in await store.outbox(account_id=account))
    assert [r.status for r in fake.received] == [200, 200 if mode == "return" else 400]
    assert len(fake.orders) == 1


async def test_a_refused_key_disables_the_sink_with_a_reason(store: Store, clock: Clock, fake: SmartGoFake,
                                                            http: httpx.AsyncClient) -> None:
    wrong = "wrong-" + API_KEY
    account = await setup(store, key=wrong)
    await store.save_order(account, make_note(make_order(number=9), bling_id=9))
    stats = await relay_for(store, http, clock).run_once()
    assert stats.disabled == 1 and stats.delivered == 0
    sink = await store.sink(account)
    assert sink is not None and not sink.enabled
    assert sink.disabled_reason is not None and "HTTP 401" in sink.disabled_reason
    assert wrong not in sink.disabled_reason
    [event] = await store.outbox(account_id=account)
    assert event.pending and event.attempts == 0


@pytest.mark.parametrize("errors_as_200", [False, True])
async def test_a_refused_payload_stays_visible_and_retries(
        errors_as_200: bool, store: Store, clock: Clock, fake: SmartGoFake, http: httpx.AsyncClient) -> None:
    fake.errors_as_200 = errors_as_200
    fake.products = {"OTHER"}
    account = await setup(store)
    await store.save_order(account, make_note(make_order(number=10), bling_id=10))
    relay = relay_for(store, http, clock)
    assert (await relay.run_once()).retried == 1
    [event] = await store.outbox(account_id=account)
    assert event.pending and event.attempts == 1 and event.last_error is not None
    assert "Produto não encontrado para o depositante" in event.last_error
    assert API_KEY not in event.last_error
    fake.products = {"SKU-1"}  # the product is registered in the WMS: the next try goes through
    assert event.next_attempt_at is not None
    clock.now = event.next_attempt_at
    assert (await relay.run_once()).delivered == 1


async def test_429_honours_retry_after_and_5xx_retries(store: Store, clock: Clock, fake: SmartGoFake,
                                                       http: httpx.AsyncClient) -> None:
    fake.rate_limit = 1
    account = await setup(store)
    for n in (11, 12):
        await store.save_order(account, make_note(make_order(number=n), bling_id=n))
    relay = relay_for(store, http, clock)
    stats = await relay.run_once()
    assert stats.delivered == 1 and stats.retried == 1
    limited = [e for e in await store.outbox(account_id=account) if e.pending]
    assert limited[0].last_error is not None and "HTTP 429" in limited[0].last_error
    assert limited[0].next_attempt_at is not None
    assert limited[0].next_attempt_at >= clock() + timedelta(seconds=60)  # the window's Retry-After

    clock.advance(seconds=61)
    fake.fail_next = [503]
    assert (await relay.run_once()).retried == 1
    [again] = [e for e in await store.outbox(account_id=account) if e.pending]
    assert again.last_error is not None and "HTTP 503" in again.last_error
    clock.advance(minutes=2)
    assert (await relay.run_once()).delivered == 1


async def test_a_cancel_refused_once_picking_started_stays_pending(
        store: Store, clock: Clock, fake: SmartGoFake, http: httpx.AsyncClient) -> None:
    account = await setup(store)
    order = make_order(number=13)
    await store.save_order(account, make_note(order, bling_id=13))
    relay = relay_for(store, http, clock)
    await relay.run_once()
    fake.set_status(order.access_key, "PEDIDO_EM_ATENDIMENTO")
    await store.cancel_order(account, 13)
    assert (await relay.run_once()).retried == 1
    cancel = (await store.outbox(account_id=account))[-1]
    assert cancel.pending and cancel.last_error is not None
    assert "não pode ser cancelado no status PEDIDO_EM_ATENDIMENTO" in cancel.last_error


async def test_a_cancel_already_done_in_the_wms_counts_as_delivered(
        store: Store, clock: Clock, fake: SmartGoFake, http: httpx.AsyncClient) -> None:
    account = await setup(store)
    order = make_order(number=14)
    await store.save_order(account, make_note(order, bling_id=14))
    relay = relay_for(store, http, clock)
    await relay.run_once()
    fake.set_status(order.access_key, "CANCELADO")
    await store.cancel_order(account, 14)
    assert (await relay.run_once()).delivered == 1


async def test_a_bad_doc_depositante_disables_with_words(store: Store, clock: Clock,
                                                         http: httpx.AsyncClient) -> None:
    account = (await store.add_account(new_account())).id
    await store.set_sink(account, SinkConfig(SinkKind.SMARTGO, url=BASE, secret=Secret(API_KEY),
                                             options={"doc_depositante": "123"}))
    await store.save_order(account, make_note(make_order(number=15), bling_id=15))
    assert (await relay_for(store, http, clock).run_once()).disabled == 1
    sink = await store.sink(account)
    assert sink is not None and sink.disabled_reason is not None and "doc_depositante" in sink.disabled_reason
