"""Shipment reports and their write-back to Bling, end to end: the REST API (`create_app` over
ASGI, real bearer tokens), the store (SQLite and PostgreSQL through `db_url`), the write-back
relay, the real Bling client and the simulator over ASGI, whose model is the truth every
assertion reads (logistics objects, sales-order situations, request counters).

Time is the simulator's manual clock, which the service, the store and the relays share: a
retry's backoff is a clock advance, not a sleep."""
# ruff: noqa: F811  (fixtures imported from store_fixtures are "redefined" as parameters)

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from blingsync.bling import client as bling_client
from blingsync.bling.retry import RetryPolicy
from blingsync.delivery import Relay, StoreSinks, webhook_sink_config
from blingsync.delivery.relay import RelayStats
from blingsync.delivery.writeback import writeback_relay
from blingsync.domain import OrderStatus, StoredOrder
from blingsync.simulator import lifecycle
from blingsync.simulator.app import Simulator
from blingsync.simulator.faults import FaultSpec
from blingsync.simulator.model import Company, LogisticObject, Note, SalesOrder
from blingsync.simulator.model import Scope as SimScope
from blingsync.store import Store
from blingsync.store.outbox import CHANNEL_BLING, CHANNEL_SINK
from blingsync.store.records import Account, AccountSettings
from blingsync.store.shipments import ShipmentReport, ShipmentStatus
from blingsync.store.tokens import TokenScope
from blingsync.web.app import create_app
from tests.conftest import make_sim, simulator_process
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
from tests.integration.test_import import World, open_world

SHIPPED_AT = "2026-11-20T08:03:00-03:00"  # the simulator's clock reads 10:00 BRT that day
CODE = "AB123456789BR"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Bling client's own retries (tested in the client's tests) without their real sleeps:
    what is tested here is the relay's retry, on the shared manual clock."""
    monkeypatch.setattr(bling_client, "RetryPolicy",
                        functools.partial(RetryPolicy, base_delay=0.0005, max_delay=0.001))


# --- a Bling that loses the answer of a creation -------------------------------------------------


@dataclass
class LosingProxy:
    """In front of the simulator: when `lose_creates` > 0, a `POST /logisticas/objetos` is
    carried out by the simulator and its answer cut short, as a connection dropped on the way
    back would (the client cannot know whether the object exists)."""

    app: Any
    lose_creates: int = 0
    creates: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].endswith("/logisticas/objetos")):
            await self.app(scope, receive, send)
            return
        self.creates += 1
        if self.lose_creates <= 0:
            await self.app(scope, receive, send)
            return
        self.lose_creates -= 1

        async def garble(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"content-length"]
                await send({**message, "headers": [*headers, (b"content-length", b"5")]})
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                await send({"type": "http.response.body", "body": b'{"dat'})

        await self.app(scope, receive, garble)


# --- the world ------------------------------------------------------------------------------------


@dataclass
class Setup:
    world: World
    proxy: LosingProxy
    api: httpx.AsyncClient
    account: Account
    admin: dict[str, str] = field(default_factory=dict)
    reader: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.world.service.store

    @property
    def sim(self) -> Simulator:
        return self.world.sim

    def company(self, index: int = 0) -> Company:
        return self.world.company(index)

    def relay(self, **kw: Any) -> Relay:
        kw.setdefault("rng", random.Random(3))
        return writeback_relay(self.world.service, **kw)

    async def report(self, order_id: int, **fields: Any) -> httpx.Response:
        body = {"status": "shipped", "tracking_code": CODE, "carrier": "Correios", "shipped_at": SHIPPED_AT,
                **fields}
        return await self.api.post(f"/api/v1/orders/{order_id}/shipment", json=body, headers=self.admin)

    async def shipments(self, order_id: int) -> list[dict[str, Any]]:
        r = await self.api.get(f"/api/v1/orders/{order_id}/shipments", headers=self.reader)
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
        return found

    async def requests(self, index: int = 0) -> int:
        return int((await self.world.counters(index))["requests"])

    async def shippable(self, account: Account | None = None, *, index: int = 0,
                        with_volumes: bool = True) -> tuple[StoredOrder, Note, SalesOrder]:
        """An imported, ready order whose note came from a sales order not shipped yet in Bling
        (with logistics objects on its volumes, or without any)."""
        company = self.company(index)
        shipped = lifecycle.shipped_situation(company)
        assert shipped is not None
        for stored in await self.store.orders(account=(account or self.account).name, limit=100_000):
            note = company.notes[stored.bling_id]
            if (stored.status is OrderStatus.READY and note.order_id is not None
                    and company.orders[note.order_id].situacao_id != shipped.id
                    and bool(note.volumes) == with_volumes):
                return stored, note, company.orders[note.order_id]
        raise AssertionError("the simulated history has no such order")

    def objects_of(self, note: Note, index: int = 0) -> list[LogisticObject]:
        company = self.company(index)
        return [company.logistic_objects[v.logistic_object_id] for v in note.volumes]


async def drain(relay: Relay) -> RelayStats:
    total = RelayStats()
    for _ in range(20):
        stats = await relay.run_once()
        total.add(stats)
        if stats.claimed == 0:
            return total
    raise AssertionError("the write-back relay kept claiming")


async def _setup(tmp_path: Path, db_url: str) -> AsyncIterator[Setup]:
    sim = make_sim(accounts=2, invoices=60)
    proxy = LosingProxy(sim.app)
    async with open_world(sim, httpx.ASGITransport(app=proxy), tmp_path, db_url) as world:
        account = await world.add_v3(write_back=True, write_back_situation="enviado")
        [outcome] = await world.service.sync()
        assert outcome.report is not None and outcome.report.ok, outcome.report
        _, admin = await world.service.store.create_api_token("wms", TokenScope.ADMIN)
        _, reader = await world.service.store.create_api_token("painel", TokenScope.READ)
        app = create_app(world.service)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://blingsync.test") as api:
            yield Setup(world, proxy, api, account, {"authorization": f"Bearer {admin}"},
                        {"authorization": f"Bearer {reader}"})


@pytest.fixture
async def setup(tmp_path: Path, db_url: str) -> AsyncIterator[Setup]:
    async for one in _setup(tmp_path, db_url):
        yield one


# --- the happy path -------------------------------------------------------------------------------


async def test_a_reported_shipment_reaches_bling(setup: Setup) -> None:
    stored, note, sales_order = await setup.shippable()
    company = setup.company()
    enviado = lifecycle.shipped_situation(company)
    assert enviado is not None and sales_order.situacao_id != enviado.id
    objects_before = set(company.logistic_objects)
    url = f"https://rastreamento.correios.com.br/app/index.php?objeto={CODE}"

    r = await setup.report(stored.id, tracking_url=url)
    assert r.status_code == 201, r.text
    shipment = r.json()
    assert shipment["order_id"] == stored.id and shipment["status"] == "shipped"
    assert shipment["shipped_at"].startswith("2026-11-20T11:03:00")  # stored in UTC
    assert shipment["write_back"]["state"] == "pending" and shipment["write_back"]["attempts"] == 0
    # Nothing reaches Bling before the relay runs: the answer never waits for Bling.
    assert all(o.tracking_code != CODE for o in setup.objects_of(note))

    stats = await drain(setup.relay())
    assert (stats.delivered, stats.retried, stats.dead) == (1, 0, 0)
    for obj in setup.objects_of(note):
        assert (obj.tracking_code, obj.tracking_situacao, obj.tracking_url) == (CODE, 0, url)
        assert obj.tracking_description == "Postado (Correios)"
        assert obj.data_saida == "2026-11-20"
    assert company.orders[sales_order.id].situacao_id == enviado.id
    assert set(company.logistic_objects) == objects_before  # updated, none created
    [listed] = await setup.shipments(stored.id)
    assert listed["id"] == shipment["id"]
    assert listed["write_back"]["state"] == "delivered" and listed["write_back"]["attempts"] == 1
    assert listed["tracking_url"] == url


async def test_the_same_report_twice_is_one_shipment_and_one_write_back(setup: Setup) -> None:
    stored, note, _ = await setup.shippable()
    first = await setup.report(stored.id)
    again = await setup.report(stored.id, tracking_code=f"  {CODE} ")  # the same, once trimmed
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    events = await setup.store.outbox(order_id=stored.id)
    assert len([e for e in events if e.type.value == "bling.shipment"]) == 1
    # A later status is a new shipment and a new write-back, applied after the first.
    later = await setup.report(stored.id, status="delivered")
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]
    stats = await drain(setup.relay())
    assert stats.delivered == 2
    assert {o.tracking_situacao for o in setup.objects_of(note)} == {3}  # Entregue: the last word
    assert [s["status"] for s in await setup.shipments(stored.id)] == ["shipped", "delivered"]
    # Reporting the first again after all that changes nothing.
    assert (await setup.report(stored.id)).status_code == 200
    assert (await drain(setup.relay())).claimed == 0


async def test_write_back_off_stores_the_shipment_and_sends_nothing(setup: Setup) -> None:
    await setup.store.update_account_settings(
        setup.account.id, replace(setup.account.settings, write_back=False))
    stored, note, sales_order = await setup.shippable()
    situation = sales_order.situacao_id
    requests = await setup.requests()
    r = await setup.report(stored.id)
    assert r.status_code == 201 and r.json()["write_back"] is None
    assert (await drain(setup.relay())).claimed == 0
    assert await setup.requests() == requests  # not one request to Bling
    assert all(o.tracking_code != CODE for o in setup.objects_of(note))
    assert setup.company().orders[sales_order.id].situacao_id == situation
    [listed] = await setup.shipments(stored.id)
    assert listed["tracking_code"] == CODE and listed["write_back"] is None


async def test_write_backs_wait_while_switched_off_and_go_when_on_again(setup: Setup) -> None:
    stored, note, _ = await setup.shippable()
    assert (await setup.report(stored.id)).status_code == 201
    await setup.store.update_account_settings(
        setup.account.id, replace(setup.account.settings, write_back=False))
    relay = setup.relay()
    stats = await relay.run_once()
    assert (stats.claimed, stats.released, stats.delivered) == (1, 1, 0)
    [event] = [e for e in await setup.store.outbox(order_id=stored.id) if e.type.value == "bling.shipment"]
    assert event.attempts == 0 and event.pending
    await setup.store.update_account_settings(setup.account.id, setup.account.settings)
    setup.world.bling.clock.advance(120)
    assert (await drain(relay)).delivered == 1
    assert all(o.tracking_code == CODE for o in setup.objects_of(note))


# --- failures -------------------------------------------------------------------------------------


async def test_bling_failing_is_retried_until_it_works(setup: Setup) -> None:
    stored, note, sales_order = await setup.shippable()
    company = setup.company()
    objects_before = set(company.logistic_objects)
    assert (await setup.report(stored.id)).status_code == 201
    relay = setup.relay()
    setup.sim.state.faults.configure(FaultSpec.parse("5xx=1,seed=2"))  # Bling down
    for attempt in (1, 2, 3):
        stats = await drain(relay)
        assert (stats.retried, stats.delivered, stats.dead) == (1, 0, 0)
        [listed] = await setup.shipments(stored.id)
        assert listed["write_back"]["state"] == "pending"
        assert listed["write_back"]["attempts"] == attempt
        assert "Bling is not answering" in listed["write_back"]["last_error"]
        setup.world.bling.clock.advance(600)  # past the backoff
    assert setup.sim.state.faults.injected["5xx"] >= 3
    setup.sim.state.faults.configure(FaultSpec())  # Bling is back
    stats = await drain(relay)
    assert (stats.delivered, stats.dead) == (1, 0)
    assert all(o.tracking_code == CODE for o in setup.objects_of(note))
    assert company.orders[sales_order.id].situacao_id == lifecycle.shipped_situation(company).id  # type: ignore[union-attr]
    assert set(company.logistic_objects) == objects_before  # no duplicate, nothing lost
    [listed] = await setup.shipments(stored.id)
    assert listed["write_back"]["state"] == "delivered" and listed["write_back"]["attempts"] == 4


async def test_a_lost_answer_does_not_create_a_second_logistics_object(setup: Setup) -> None:
    """A note whose volumes have no logistics object: its sales order is found by searching the
    orders altered since the note was issued; the object is created once, even though Bling's
    first answer to the creation was lost."""
    stored, note, sales_order = await setup.shippable()
    company = setup.company()
    note.volumes = []  # Bling has no logistics object for this note or its order yet
    sales_order.volume_ids = []
    objects_before = set(company.logistic_objects)
    assert (await setup.report(stored.id)).status_code == 201
    setup.proxy.lose_creates = 1
    relay = setup.relay()
    stats = await drain(relay)
    assert (stats.retried, stats.delivered) == (1, 0)
    [listed] = await setup.shipments(stored.id)
    assert "did not confirm" in listed["write_back"]["last_error"]
    [created] = set(company.logistic_objects) - objects_before  # Bling did create it
    setup.world.bling.clock.advance(600)
    assert (await drain(relay)).delivered == 1
    assert setup.proxy.creates == 1  # the retry found the object instead of creating another
    assert set(company.logistic_objects) - objects_before == {created}
    obj = company.logistic_objects[created]
    assert (obj.pedido_venda_id, obj.nota_fiscal_id, obj.tracking_code) == (sales_order.id, note.id, CODE)
    assert company.orders[sales_order.id].situacao_id == lifecycle.shipped_situation(company).id  # type: ignore[union-attr]


async def test_an_unknown_situation_fails_with_the_names_there_are(setup: Setup) -> None:
    stored, note, sales_order = await setup.shippable()
    company = setup.company()
    before = sales_order.situacao_id
    await setup.store.update_account_settings(
        setup.account.id, replace(setup.account.settings, write_back_situation="Despachado"))
    assert (await setup.report(stored.id)).status_code == 201
    relay = setup.relay()
    stats = await drain(relay)
    assert (stats.retried, stats.dead) == (1, 0)
    [listed] = await setup.shipments(stored.id)
    error = listed["write_back"]["last_error"]
    assert "“Despachado”" in error and "“Enviado”" in error and "“Em aberto”" in error
    assert "blingsync writeback set" in error
    # Checked before anything was written.
    assert all(o.tracking_code != CODE for o in setup.objects_of(note))
    assert company.orders[sales_order.id].situacao_id == before
    # Fixed (any case, any accents): the waiting write-back goes through.
    await setup.store.update_account_settings(
        setup.account.id, replace(setup.account.settings, write_back_situation="ENVIADO"))
    setup.world.bling.clock.advance(600)
    assert (await drain(relay)).delivered == 1
    assert company.orders[sales_order.id].situacao_id == lifecycle.shipped_situation(company).id  # type: ignore[union-attr]


async def test_a_missing_permission_makes_the_write_back_dead_at_once(setup: Setup) -> None:
    company = setup.company(1)
    r = await setup.world.http.post(f"/_sim/accounts/{company.id}/clients", json={
        "scopes": [s.value for s in SimScope if s is not SimScope.LOGISTICAS]})
    assert r.status_code == 200, r.text
    client = next(c for c in company.clients if c.client_id == r.json()["client_id"])
    added = await setup.world.service.add_account(
        "sem-logistica", client_id=client.client_id, client_secret=client.client_secret,
        code=await setup.world.bling.code(client),
        settings=AccountSettings(initial_lookback_days=120, write_back=True, write_back_situation="Enviado"))
    await setup.world.service.sync(["sem-logistica"])
    stored, _, sales_order = await setup.shippable(added.account, index=1)
    assert (await setup.report(stored.id)).status_code == 201
    stats = await drain(setup.relay())
    assert (stats.dead, stats.retried) == (1, 0)
    [listed] = await setup.shipments(stored.id)
    assert listed["write_back"]["state"] == "dead" and listed["write_back"]["attempts"] == 1
    assert "Logísticas" in listed["write_back"]["last_error"]
    [dead] = await setup.store.dead_events(added.account.id, channel=CHANNEL_BLING)
    assert dead.id == listed["write_back"]["event_id"]
    assert company.orders[sales_order.id].situacao_id == sales_order.situacao_id


async def test_a_v2_account_cannot_write_back(setup: Setup) -> None:
    account = await setup.world.add_v2(1, write_back=True)
    await setup.world.service.sync([account.name])
    stored, _, _ = await setup.shippable(account, index=1)
    assert (await setup.report(stored.id)).status_code == 201
    stats = await drain(setup.relay())
    assert stats.dead == 1
    [listed] = await setup.shipments(stored.id)
    assert "API v3" in listed["write_back"]["last_error"]


# --- channels -------------------------------------------------------------------------------------


async def test_a_dead_order_event_does_not_hold_back_the_write_back(setup: Setup) -> None:
    stored, note, _ = await setup.shippable()
    [created] = await setup.store.outbox(order_id=stored.id)
    assert await setup.store.mark_dead(created.id, "the warehouse said no")
    assert (await setup.report(stored.id)).status_code == 201
    assert (await drain(setup.relay())).delivered == 1
    assert all(o.tracking_code == CODE for o in setup.objects_of(note))
    assert (await setup.store.event(created.id)).dead_at is not None  # still there for its operator


async def test_channels_keep_their_own_order(store: Store, clock: Clock) -> None:
    """Per order, events go out in order within a channel, never across: a dead write-back does
    not hold back the order's changes for the warehouse, nor a dead change the write-backs; and
    the sink relay never claims a write-back."""
    account = await store.add_account(new_account(settings=AccountSettings(write_back=True)))
    await store.set_sink(account.id, webhook_sink_config("http://127.0.0.1:9/hooks", None))
    order = make_order(number=7)
    saved = await store.save_order(account.id, make_note(order, bling_id=7))
    assert saved.order_id is not None
    report = ShipmentReport(ShipmentStatus.SHIPPED, CODE, "Correios", clock())
    recorded = await store.record_shipment(saved.order_id, report)
    assert recorded.created and recorded.shipment.write_back is not None
    write_back = recorded.shipment.write_back.event_id
    lease = timedelta(minutes=1)

    # The order's created event and its write-back are each claimable, each on its channel only.
    [sink_first] = await store.claim_events(limit=10, lease=lease, now=clock())
    [bling_first] = await store.claim_events(limit=10, lease=lease, now=clock(), channel=CHANNEL_BLING)
    assert (sink_first.type.value, bling_first.id) == ("order.created", write_back)
    assert bling_first.payload["tracking_code"] == CODE and bling_first.payload["note"]["bling_id"] == 7

    # Both die; each channel's next event of the order is held back only by its own channel.
    await store.mark_dead(sink_first.id, "receiver refused")
    await store.mark_dead(bling_first.id, "Bling refused")
    await store.save_order(account.id, make_note(with_total(order, "31.00"), bling_id=7))
    second = await store.record_shipment(saved.order_id, replace(report, status=ShipmentStatus.DELIVERED))
    clock.advance(minutes=2)
    assert await store.claim_events(limit=10, lease=lease, now=clock()) == []
    assert await store.claim_events(limit=10, lease=lease, now=clock(), channel=CHANNEL_BLING) == []
    # Replaying the dead write-back frees the write-backs only.
    await store.replay(bling_first.id)
    assert [e.id for e in await store.claim_events(limit=10, lease=lease, now=clock(),
                                                   channel=CHANNEL_BLING)] == [write_back]
    assert await store.claim_events(limit=10, lease=lease, now=clock()) == []
    await store.mark_delivered(write_back, attempt_duration=timedelta(0))
    [next_bling] = await store.claim_events(limit=10, lease=lease, now=clock(), channel=CHANNEL_BLING)
    assert second.shipment.write_back is not None and next_bling.id == second.shipment.write_back.event_id
    # ... and replaying the dead change frees the changes, whatever the write-backs do.
    await store.replay(sink_first.id)
    assert [e.id for e in await store.claim_events(limit=10, lease=lease, now=clock())] == [sink_first.id]

    assert await store.pending_count(account.id, channel=CHANNEL_BLING) == 1
    assert await store.pending_count(account.id, channel=CHANNEL_SINK) == 2
    assert len(await store.dead_events(account.id)) == 0
    with pytest.raises(ValueError, match="unknown outbox channel"):
        await store.claim_events(limit=1, lease=lease, now=clock(), channel="smtp")


async def test_the_sink_relay_never_claims_a_write_back(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account(settings=AccountSettings(write_back=True)))
    await store.set_sink(account.id, webhook_sink_config("http://127.0.0.1:9/hooks", None))
    saved = await store.save_order(account.id, make_note(make_order(number=8), bling_id=8))
    assert saved.order_id is not None
    [created] = await store.outbox(order_id=saved.order_id)
    await store.mark_delivered(created.id, attempt_duration=timedelta(0))
    report = ShipmentReport(ShipmentStatus.SHIPPED, CODE, "Correios", clock())
    await store.record_shipment(saved.order_id, report)
    async with httpx.AsyncClient() as http:
        relay = Relay(store, StoreSinks(store, http, clock=clock), clock, rng=random.Random(1))
        assert (await relay.run_once()).claimed == 0
    assert await store.pending_count(account.id, channel=CHANNEL_BLING) == 1


# --- the store and the API's refusals -------------------------------------------------------------


async def test_identical_reports_at_the_same_instant_store_one(setup: Setup) -> None:
    stored, _, _ = await setup.shippable()
    answers = await asyncio.gather(*(setup.report(stored.id) for _ in range(5)))
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in answers}) == 1
    events = [e for e in await setup.store.outbox(order_id=stored.id) if e.type.value == "bling.shipment"]
    assert len(events) == 1


async def test_the_api_refuses_what_it_cannot_store(setup: Setup) -> None:
    stored, note, _ = await setup.shippable()
    missing = await setup.report(999_999)
    assert missing.status_code == 404 and "no order with id 999999" in missing.json()["detail"]
    assert (await setup.api.get("/api/v1/orders/999999/shipments", headers=setup.reader)).status_code == 404

    async def refused(expected: str, **fields: Any) -> None:
        r = await setup.report(stored.id, **fields)
        assert r.status_code == 422, r.text
        assert expected in json.dumps(r.json()["detail"]), r.text

    await refused("status", status="lost")
    await refused("timezone", shipped_at="2026-11-20T14:03:00")
    await refused("future", shipped_at="2026-11-20T13:03:00-03:00")  # 3 h ahead of the clock
    await refused("2000", shipped_at="0001-01-01T00:00:00+00:00")
    await refused("blank", tracking_code="   ")
    await refused("control characters", carrier="Correios\x00")
    await refused("tracking_code", tracking_code="X" * 101)
    await refused("http(s) URL", tracking_url="ftp://example.com/x")
    await refused("tracking_url", tracking_url="https://example.com/" + "x" * 300)
    await refused("body field warehouse: Extra inputs are not permitted", warehouse="A")
    no_body = await setup.api.post(f"/api/v1/orders/{stored.id}/shipment", headers=setup.admin)
    assert no_body.status_code == 422
    assert await setup.store.shipments(stored.id) == []  # nothing stored by any of those

    unauthenticated = await setup.api.post(f"/api/v1/orders/{stored.id}/shipment", json={})
    assert unauthenticated.status_code == 401 and unauthenticated.headers["www-authenticate"] == "Bearer"
    read_only = await setup.api.post(f"/api/v1/orders/{stored.id}/shipment", headers=setup.reader, json={
        "status": "shipped", "tracking_code": CODE, "carrier": "Correios", "shipped_at": SHIPPED_AT})
    assert read_only.status_code == 403
    assert await setup.store.shipments(stored.id) == []

    await setup.store.cancel_order(setup.account.id, note.id)
    canceled = await setup.report(stored.id)
    assert canceled.status_code == 409 and "canceled" in canceled.json()["detail"]
    assert await setup.store.shipments(stored.id) == []


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.slow
def test_writeback_commands(tmp_path: Path) -> None:
    """`writeback set/show` as a user runs them, against the simulator in a process of its own
    (a dozen processes: slow on a busy machine)."""
    from tests.integration.test_cli import Cli, one_line_error

    with simulator_process("--accounts", "2", "--invoices", "10", "--no-rate-limit", "--seed", "4") as base:
        cli = Cli(tmp_path / "data", base)
        [first, second, *_] = cli.admin("GET", "/accounts")["accounts"]
        creds = cli.admin("POST", f"/accounts/{first['id']}/refresh-token", json={})
        added = cli("accounts", "add", "--name", "Marca", "--client-id", creds["client_id"],
                    env={"BLINGSYNC_CLIENT_SECRET": creds["client_secret"],
                         "BLINGSYNC_REFRESH_TOKEN": creds["refresh_token"]})
        assert added.returncode == 0, added.stdout + added.stderr

        shown = cli("writeback", "show", "Marca")
        assert shown.returncode == 0, shown.stderr
        assert "write-back off" in shown.stdout and "Enviado" in shown.stdout and "Em aberto" in shown.stdout
        assert "← chosen" not in shown.stdout

        on = cli("writeback", "set", "Marca", "--on", "--situation", "enviado")
        assert on.returncode == 0, on.stderr
        assert "on" in on.stdout and "“Enviado”" in on.stdout  # stored as Bling spells it
        shown = cli("writeback", "show", "Marca")
        chosen = [line for line in shown.stdout.splitlines() if "← chosen" in line]
        assert len(chosen) == 1 and "Enviado" in chosen[0]

        unknown = cli("writeback", "set", "Marca", "--on", "--situation", "Despachado")
        assert unknown.returncode == 1
        line = one_line_error(unknown)
        assert "Despachado" in line and "“Enviado”" in line
        assert "“Enviado”" in cli("writeback", "show", "Marca").stdout  # unchanged

        assert cli("writeback", "set", "Marca").returncode == 2
        assert cli("writeback", "set", "Marca", "--off", "--situation", "Enviado").returncode == 2

        off = cli("writeback", "set", "Marca", "--off")
        assert off.returncode == 0 and "off" in off.stdout
        assert "write-back off" in cli("writeback", "show", "Marca").stdout

        key = cli.admin("POST", f"/accounts/{second['id']}/apikeys", json={})["apikey"]
        assert cli("accounts", "add", "--name", "Chave", env={"BLINGSYNC_API_KEY": key}).returncode == 0
        v2 = cli("writeback", "set", "Chave", "--on")
        assert v2.returncode == 1
        assert "API v2" in one_line_error(v2) and "logistics" in one_line_error(v2)
        assert "write-back off" in cli("writeback", "show", "Chave").stdout



async def test_other_notes_objects_of_the_same_sales_order_are_left_alone(setup: Setup) -> None:
    """A sales order invoiced in two notes (partial invoicing) holds both notes' logistics
    objects: a shipment of one note must not write its tracking onto the other's."""
    stored, note, sales_order = await setup.shippable()
    company = setup.company()
    mine = setup.objects_of(note)[0]
    other_note_id = max(company.notes) + 1000
    other = dataclasses.replace(mine, id=max(company.logistic_objects) + 1, nota_fiscal_id=other_note_id,
                                tracking_code="OTHER-NOTE-CODE")
    company.logistic_objects[other.id] = other
    sales_order.volume_ids.append(other.id)
    r = await setup.report(stored.id)
    assert r.status_code == 201, r.text
    stats = await drain(setup.relay())
    assert stats.delivered == 1
    assert company.logistic_objects[mine.id].tracking_code == CODE
    assert company.logistic_objects[other.id].tracking_code == "OTHER-NOTE-CODE"
