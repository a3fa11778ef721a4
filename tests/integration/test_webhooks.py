"""Bling webhooks end to end: the simulator's webhook hub POSTs real, signed webhooks to our app
(its httpx client routed to the app over ASGI: the same raw bytes and headers as over a socket),
the inbox worker re-checks each note through the simulator's API with the real client, the
relay delivers the orders to a real HTTP receiver (uvicorn, signatures verified, as in
test_delivery.py). SQLite and PostgreSQL (`db_url`).

Time is the simulator's manual clock, shared by the service, the store, the worker and the relay."""
# ruff: noqa: F811  (fixtures imported from store_fixtures are "redefined" as parameters)

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.config import Settings
from blingsync.delivery import Relay, StoreSinks, new_secret, webhook_sink_config
from blingsync.domain import OrderStatus
from blingsync.service import Service
from blingsync.simulator.app import Simulator
from blingsync.simulator.model import Company, Modelo, NfeSituacao, Note, Scope
from blingsync.simulator.webhooks import WebhookKnobs
from blingsync.store import SecretBox, Store
from blingsync.store.inbox import InboxEvent, ReceivedWebhook
from blingsync.store.records import Account, AccountSettings, AccountState, EventType
from blingsync.sync.inbox import InboxWorker
from blingsync.web.app import create_app
from blingsync.web.deps import Wakeups
from blingsync.web.webhooks import FORGED, MAX_BODY
from tests.conftest import Bling, make_sim
from tests.integration.store_fixtures import db_url, pg_url  # noqa: F401  (fixtures used by name)
from tests.integration.test_delivery import Receiver, assert_in_order

HOOK_URL = "http://blingsync.test/webhooks/bling"
SHARED_SECRET = "shared-connect-app-secret-0123456789"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Env:
    sim: Simulator
    bling: Bling
    service: Service
    app_http: httpx.AsyncClient  # to our app, as Bling (or a forger) would call it
    worker: InboxWorker
    relay: Relay
    receiver: Receiver
    account: Account
    saved_calls: list[int]
    woken: list[str]

    @property
    def store(self) -> Store:
        return self.service.store

    def company(self, index: int = 0) -> Company:
        return self.bling.company(index)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.bling.clock.time(), UTC)

    def advance(self, seconds: float) -> None:
        self.bling.clock.advance(seconds)

    async def new_notes(self, count: int, index: int = 0, situacao: int = 5) -> list[Note]:
        r = await self.bling.http.post(f"/_sim/accounts/{self.company(index).id}/notes",
                                       json={"count": count, "situacao": situacao})
        assert r.status_code == 200, r.text
        return [self.company(index).notes[n["id"]] for n in r.json()["notes"]]

    async def move(self, note: Note, action: str) -> None:
        r = await self.bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": action})
        assert r.status_code == 200, r.text

    def hook_up(self, index: int = 0) -> None:
        """Bling's app of company `index` sends its webhooks to our app from now on."""
        self.company(index).clients[0].webhook_url = HOOK_URL

    async def send_webhooks(self, rounds: int = 8, step: float = 1.0) -> None:
        """Let the hub send everything due, moving the clock past delays and reorder windows."""
        for _ in range(rounds):
            await self.bling.sim.hub.flush()
            self.advance(step)
        await self.bling.sim.hub.flush()

    async def work(self) -> int:
        """The inbox worker until nothing is due; the number of webhooks it handled."""
        total = 0
        for _ in range(50):
            claimed = await self.worker.run_once()
            if claimed == 0:
                return total
            total += claimed
        raise AssertionError("the worker kept claiming")

    async def deliver(self) -> None:
        for _ in range(50):
            if (await self.relay.run_once()).claimed == 0:
                return
        raise AssertionError("the relay kept claiming")

    async def post(self, body: bytes, signature: str | None, **headers: str) -> httpx.Response:
        if signature is not None:
            headers["X-Bling-Signature-256"] = signature
        return await self.app_http.post("/webhooks/bling", content=body,
                                        headers={"content-type": "application/json", **headers})

    async def inbox(self) -> list[InboxEvent]:
        return await self.store.inbox_events(limit=10_000)

    async def counters(self, index: int = 0) -> dict[str, Any]:
        r = await self.bling.http.get(f"/_sim/accounts/{self.company(index).id}/counters")
        body: dict[str, Any] = r.json()
        return body

    def envelope(self, note_id: int, *, index: int = 0, event: str = "invoice.updated",
                 event_id: str = "01945027-150e-72b4-e7cf-4943a042cd9c", situacao: int = 6) -> bytes:
        return json.dumps({"eventId": event_id, "date": "2026-11-21T02:00:00Z", "version": "v1",
                           "event": event, "companyId": self.company(index).company_id,
                           "data": {"id": note_id, "situacao": situacao}}, separators=(",", ":")).encode()


@contextlib.asynccontextmanager
async def open_env(tmp_path: Path, db_url: str, *, shared_secret: str | None = None,
                   account_settings: AccountSettings | None = None) -> AsyncIterator[Env]:
    sim = make_sim(accounts=2, invoices=40)
    transport = httpx.ASGITransport(app=sim.app)
    settings = Settings(data_dir=tmp_path, database_url=db_url, secret_key=None,
                        bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2",
                        oauth_client_secret=shared_secret)
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))
    async with httpx.AsyncClient(transport=transport, base_url="http://bling.test") as sim_http:
        bling = Bling(sim, sim_http)

        def now() -> datetime:
            return datetime.fromtimestamp(bling.clock.time(), UTC)

        async with Service.open(settings, warn=lambda _: None, registry=registry, transport=transport,
                                now=now) as service, httpx.AsyncClient() as out_http:
            client = bling.company(0).clients[0]
            added = await service.add_account(
                "Marca A", client_id=client.client_id, client_secret=client.client_secret,
                code=await bling.code(client),
                settings=account_settings or AccountSettings(initial_lookback_days=120))
            receiver = Receiver(secret=new_secret(), clock=now)  # type: ignore[arg-type]
            await receiver.start()
            await service.store.set_sink(added.account.id, webhook_sink_config(receiver.url, receiver.secret))
            relay = Relay(service.store, StoreSinks(service.store, out_http, clock=now), now,
                          rng=random.Random(3))
            saved_calls: list[int] = []
            woken: list[str] = []
            worker = InboxWorker(service, on_saved=lambda: saved_calls.append(1), rng=random.Random(4))
            app = create_app(service, wakeups=Wakeups(inbox=lambda: woken.append("inbox")))
            app_transport = httpx.ASGITransport(app=app)
            sim.hub.transport = app_transport
            try:
                async with httpx.AsyncClient(transport=app_transport,
                                             base_url="http://blingsync.test") as app_http:
                    yield Env(sim, bling, service, app_http, worker, relay, receiver, added.account,
                              saved_calls, woken)
            finally:
                await sim.hub.aclose()
                await receiver.stop()


@pytest.fixture
async def env(tmp_path: Path, db_url: str) -> AsyncIterator[Env]:
    async with open_env(tmp_path, db_url) as found:
        yield found


# --- the happy path ---------------------------------------------------------------------------


async def test_a_danfe_webhook_becomes_a_delivered_order(env: Env) -> None:
    assert env.account.company_id == env.company().company_id  # learnt when the account was proven
    [note] = await env.new_notes(1)
    env.hook_up()
    before = await env.counters()
    await env.move(note, "print-danfe")
    await env.send_webhooks(rounds=1)

    stored = await env.inbox()
    invoice = [e for e in stored if e.event == "invoice.updated"]
    assert len(invoice) == 1 and invoice[0].resource_id == note.id and not invoice[0].processed
    assert invoice[0].account_id == env.account.id and invoice[0].company_id == env.company().company_id
    assert env.woken  # the worker was poked by the request
    assert [d.last_status for d in env.sim.hub.deliveries] == [202] * len(env.sim.hub.deliveries)

    assert await env.work() == len(stored)
    order = await env.store.order_by_key(env.account.name, note.chave)
    assert order.status is OrderStatus.READY and order.bling_id == note.id
    done = {e.event: e for e in await env.inbox()}
    assert done["invoice.updated"].processed
    assert done["invoice.updated"].outcome == f"order {order.id} created from the note at Emitida DANFE"
    if "order.updated" in done:  # the note's sales order moved too: stored, not used
        assert done["order.updated"].outcome is not None
        assert done["order.updated"].outcome.startswith("not used: blingsync imports invoices")
    assert env.saved_calls == [1]
    after = await env.counters()
    # The re-check asked the API for this one note and its XML, and listed nothing.
    assert after["requests"] - before["requests"] == 2, after["by_endpoint"]

    await env.deliver()
    [envelope] = env.receiver.processed
    assert envelope["type"] == EventType.CREATED.value
    assert envelope["data"]["access_key"] == note.chave
    assert env.receiver.forged == 0


async def test_a_cancellation_webhook_cancels_and_a_webhook_for_a_stored_note_costs_no_xml(env: Env) -> None:
    [note] = await env.new_notes(1)
    env.hook_up()
    await env.move(note, "print-danfe")
    await env.send_webhooks(rounds=1)
    await env.work()
    # The same news again under a new eventId (Bling's hub sends a fresh one per change): the
    # API says Emitida DANFE, the order is stored at it: one detail request, no XML, no event.
    before = await env.counters()
    body = env.envelope(note.id, event_id="second-event")
    r = await env.post(body, sign(body, env.company().clients[0].client_secret))
    assert r.status_code == 202, r.text
    await env.work()
    assert (await env.counters())["requests"] - before["requests"] == 1
    assert (await env.store.inbox_event("second-event")).outcome.startswith("unchanged: order")  # type: ignore[union-attr]

    await env.move(note, "cancel")
    await env.send_webhooks(rounds=1)
    await env.work()
    order = await env.store.order_by_key(env.account.name, note.chave)
    assert order.status is OrderStatus.CANCELED
    await env.deliver()
    assert [e["type"] for e in env.receiver.processed] == ["order.created", "order.canceled"]
    assert len(env.saved_calls) == 2


# --- duplicates, reordering, drops --------------------------------------------------------------


async def test_duplicated_reordered_and_dropped_webhooks_give_each_order_change_once(env: Env) -> None:
    notes = await env.new_notes(12)
    env.hook_up()
    env.sim.hub.configure(WebhookKnobs(duplicate=1.0, reorder=0.5, drop=0.25, reorder_window=2.0, seed=11))
    for note in notes:
        await env.move(note, "print-danfe")
    canceled = notes[:4]
    for note in canceled:  # cancelled right after: their two webhooks may come in either order
        await env.move(note, "cancel")
    # The worker runs while webhooks still arrive, and after.
    for _ in range(6):
        await env.bling.sim.hub.flush()
        env.advance(1)
        await env.work()
    await env.send_webhooks()
    await env.work()

    deliveries = list(env.sim.hub.deliveries)
    sent_ids = {d.event_id for d in deliveries if d.status == "delivered"}
    assert any(d.status == "dropped" for d in deliveries)
    assert sum(1 for d in deliveries if d.status == "delivered") > len(sent_ids)  # twins were sent
    stored = await env.inbox()
    assert {e.event_id for e in stored} == sent_ids  # each eventId stored once, twins answered 2xx
    assert len(stored) == len(sent_ids)
    assert all(d.last_status in (200, 202) for d in deliveries if d.status == "delivered")
    assert all(e.processed for e in stored)
    created_order = [d.event_id for d in sorted(deliveries, key=lambda d: d.id) if d.event_id in sent_ids]
    arrival_order = [e.event_id for e in sorted(stored, key=lambda e: e.id)]
    assert arrival_order != list(dict.fromkeys(created_order))  # some came out of order

    # What webhooks missed (dropped) the poll finds; nothing is imported twice either way.
    [outcome] = await env.service.sync([env.account.name])
    assert outcome.report is not None and outcome.report.ok
    await env.deliver()

    ready = {n.chave for n in notes[4:]}
    events = await env.store.outbox(account_id=env.account.id)
    keys = [e.idempotency_key for e in events]
    assert len(keys) == len(set(keys))
    by_order: dict[int, list[str]] = {}
    for event in events:
        by_order.setdefault(event.order_id, []).append(event.type.value)
    for order_id, types in by_order.items():
        assert types in (["order.created"], ["order.created", "order.canceled"]), (order_id, types)
    imported = {o.order.access_key: o for o in await env.store.orders(account=env.account.name, limit=1000)}
    assert ready <= set(imported)
    for note in canceled:  # never shipped as ready: either never imported or imported then canceled
        if note.chave in imported:
            assert imported[note.chave].status is OrderStatus.CANCELED
    delivered = env.receiver.delivered_statuses()
    assert set(delivered) == set(keys) and set(delivered.values()) == {1}
    assert_in_order(env.receiver, events)


async def test_webhooks_of_earlier_steps_cost_no_request_unless_they_can_matter(env: Env) -> None:
    env.hook_up()
    env.company().clients[0].scopes = frozenset({Scope.NFE})
    before = await env.counters()
    first, second = await env.new_notes(2)  # each: created at Pendente, then Autorizada
    await env.send_webhooks(rounds=1)
    assert await env.work() == 4
    assert (await env.counters())["requests"] == before["requests"]  # no re-check could matter
    for row in await env.inbox():
        assert row.processed and row.outcome is not None
        assert row.outcome.startswith("not re-checked: the webhook says situacao "), row.outcome

    # An account that imports Autorizada notes does ask: situacao 5 can mean an import for it.
    settings = replace(env.account.settings, import_authorized=True)
    await env.store.update_account_settings(env.account.id, settings)
    secret = env.company().clients[0].client_secret
    body = env.envelope(first.id, event_id="autorizada-1", situacao=5)
    assert (await env.post(body, sign(body, secret))).status_code == 202
    await env.work()
    order = await env.store.order_by_key(env.account.name, first.chave)
    assert (await env.store.inbox_event("autorizada-1")).outcome == (  # type: ignore[union-attr]
        f"order {order.id} created from the note at Autorizada")
    # A stored note is always asked about, whatever the webhook says (here: one detail request).
    await env.store.update_account_settings(env.account.id, replace(settings, import_authorized=False))
    counted = (await env.counters())["requests"]
    body = env.envelope(first.id, event_id="pendente-again", situacao=1)
    assert (await env.post(body, sign(body, secret))).status_code == 202
    await env.work()
    assert (await env.counters())["requests"] == counted + 1
    # In one batch, webhooks of one note saying 5 and then 6 are one re-check, which imports it.
    for event_id, situacao in (("s5", 5), ("s6", 6)):
        body = env.envelope(second.id, event_id=event_id, situacao=situacao)
        assert (await env.post(body, sign(body, secret))).status_code == 202
    await env.move(second, "print-danfe")
    assert await env.work() >= 2
    done = {e.event_id: e.outcome for e in await env.inbox()}
    assert done["s5"] == done["s6"] and done["s6"] is not None and done["s6"].startswith("order "), done


# --- forged webhooks --------------------------------------------------------------------------


async def test_forged_webhooks_are_refused_with_401_and_store_nothing(env: Env) -> None:
    [note] = await env.new_notes(1)
    mine = env.company(0).clients[0].client_secret
    other = env.company(1).clients[0].client_secret
    body = env.envelope(note.id)
    garbage = b"\x00not json at all{"
    cases = {
        "wrong signature": (body, "sha256=" + "0" * 64),
        "missing header": (body, None),
        "not sha256=hex": (body, "sha1=" + "a" * 40),
        "empty": (body, ""),
        "another app's secret": (body, sign(body, other)),
        "modified body": (body.replace(b'"situacao":6', b'"situacao":2'), sign(body, mine)),
        "unknown company": (body.replace(env.company(0).company_id.encode(), b"f" * 32),
                            sign(body.replace(env.company(0).company_id.encode(), b"f" * 32), other)),
        "garbage": (garbage, sign(garbage, other)),
        "uppercase hex of a wrong mac": (body, "sha256=" + "A" * 64),
    }
    for name, (payload, signature) in cases.items():
        r = await env.post(payload, signature)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str), name
    # A forger learns nothing about companies or parsing: same answer for all signed attempts.
    forged = {name: (await env.post(p, s)).json()["detail"] for name, (p, s) in cases.items()
              if s and s.startswith("sha256=")}
    assert set(forged.values()) == {FORGED}
    assert await env.inbox() == []
    assert env.woken == []
    # The genuine one, with an uppercase hex signature, still passes.
    r = await env.post(body, sign(body, mine).upper().replace("SHA256=", "sha256="))
    assert r.status_code == 202, r.text


async def test_oversized_and_malformed_bodies(tmp_path: Path, db_url: str) -> None:
    async with open_env(tmp_path, db_url, shared_secret=SHARED_SECRET) as env:
        huge = b'{"pad":"' + b"x" * MAX_BODY + b'"}'
        r = await env.post(huge, sign(huge, SHARED_SECRET))
        assert r.status_code == 413 and "at most" in r.json()["detail"]
        # Signed with a secret we know but not an envelope: told what is wrong, nothing stored.
        for body, words in [
            (b"[1,2]", "not a JSON object"),
            (b"\xff\xfe", "not UTF-8 JSON"),
            (b"{not json", "not UTF-8 JSON"),
            (json.dumps({"event": "invoice.updated", "companyId": "c", "data": {"id": 1}}).encode(),
             "eventId"),
            (json.dumps({"eventId": "e", "event": "invoice", "companyId": "c", "data": {}}).encode(),
             "event must name"),
            (json.dumps({"eventId": "e", "event": "invoice.updated", "companyId": "c",
                         "data": {"id": "abc"}}).encode(), "data.id"),
        ]:
            r = await env.post(body, sign(body, SHARED_SECRET))
            assert r.status_code == 400 and words in r.json()["detail"], (body, r.text)
            # The same body under a bad signature: 401 like any forgery, not a parse error.
            r = await env.post(body, "sha256=" + "1" * 64)
            assert r.status_code == 401 and r.json()["detail"] == FORGED
        assert await env.inbox() == []


# --- routing and waiting ----------------------------------------------------------------------


async def test_a_company_without_an_account_is_answered_and_settled_as_not_used(tmp_path: Path,
                                                                                 db_url: str) -> None:
    async with open_env(tmp_path, db_url, shared_secret=SHARED_SECRET) as env:
        [note] = await env.new_notes(1, index=1)
        body = env.envelope(note.id, index=1)
        r = await env.post(body, sign(body, SHARED_SECRET))
        assert r.status_code == 202 and r.json()["status"] == "accepted"
        again = await env.post(body, sign(body, SHARED_SECRET))
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert await env.work() == 1
        [stored] = await env.inbox()
        assert stored.processed and stored.account_id is None
        assert stored.outcome is not None and stored.outcome.startswith("not used: no account is connected")
        # A body that is not for this app's company cannot be verified by the account's secret.
        mine = env.company(0).clients[0].client_secret
        r = await env.post(body, sign(body, mine))
        assert r.status_code == 401


async def test_sales_order_and_other_events_are_stored_and_not_used(env: Env) -> None:
    secret = env.company().clients[0].client_secret
    for event, event_id in (("order.created", "o1"), ("product.updated", "p1")):
        body = env.envelope(7, event=event, event_id=event_id)
        assert (await env.post(body, sign(body, secret))).status_code == 202
    await env.work()
    outcomes = {e.event_id: e.outcome for e in await env.inbox()}
    assert outcomes["o1"] == "not used: blingsync imports invoices (NF-e, NFC-e), not sales orders"
    assert outcomes["p1"] == "not used: blingsync does not follow product.updated events"
    assert env.saved_calls == []


async def test_a_paused_account_keeps_its_webhooks_until_it_resumes(env: Env) -> None:
    [note] = await env.new_notes(1)
    env.hook_up()
    env.company().clients[0].scopes = frozenset({Scope.NFE})  # invoice events only
    await env.store.set_account_state(env.account.id, AccountState.PAUSED, "paused by the operator")
    await env.move(note, "print-danfe")
    await env.send_webhooks(rounds=1)
    assert await env.work() == 1
    [waiting] = await env.inbox()
    assert not waiting.processed and waiting.attempts == 0
    assert waiting.outcome == "waiting: account Marca A is paused (paused by the operator)"
    assert waiting.next_attempt_at == env.now() + timedelta(minutes=5)
    assert await env.work() == 0  # not due yet

    await env.store.set_account_state(env.account.id, AccountState.ACTIVE, None)
    env.advance(301)
    assert await env.work() == 1
    [done] = await env.inbox()
    assert done.processed and done.outcome is not None and done.outcome.startswith("order ")
    await env.deliver()
    assert [e["type"] for e in env.receiver.processed] == ["order.created"]


class Switch(httpx.AsyncBaseTransport):
    """The simulator's transport, or a Bling that answers 501 to every API call (an error the
    client does not retry and that says nothing about the account)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.failing = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.failing and "/Api/v3/nf" in request.url.path:
            return httpx.Response(501, json={"error": {"type": "NOT_IMPLEMENTED", "message": "x",
                                                       "description": "down for a test"}})
        return await self.inner.handle_async_request(request)


async def test_a_failed_recheck_is_retried_with_backoff_and_never_lost(env: Env) -> None:
    switch = Switch(env.service._transport)  # type: ignore[arg-type]
    env.service._transport = switch
    env.service._http.clear()  # the service's clients are built again on the switch
    [note] = await env.new_notes(1)
    env.hook_up()
    env.company().clients[0].scopes = frozenset({Scope.NFE})
    await env.move(note, "print-danfe")
    await env.send_webhooks(rounds=1)
    switch.failing = True
    delays = []
    for attempt in (1, 2, 3):
        assert await env.work() == 1
        [row] = await env.inbox()
        assert not row.processed and row.attempts == attempt
        assert row.outcome is not None and row.outcome.startswith(f"attempt {attempt} failed: ")
        assert row.next_attempt_at is not None
        delays.append((row.next_attempt_at - env.now()).total_seconds())
        env.advance(delays[-1])
    assert all(1 <= d <= 600 for d in delays)
    assert (await env.service.store.account_by_id(env.account.id)).state is AccountState.ACTIVE
    switch.failing = False
    assert await env.work() == 1
    [row] = await env.inbox()
    assert row.processed and row.outcome is not None and row.outcome.startswith("order ")


async def test_a_recheck_failing_past_the_horizon_is_settled_with_its_error(env: Env) -> None:
    switch = Switch(env.service._transport)  # type: ignore[arg-type]
    env.service._transport = switch
    env.service._http.clear()
    worker = InboxWorker(env.service, horizon=timedelta(hours=1), rng=random.Random(1))
    secret = env.company().clients[0].client_secret
    body = env.envelope(123456)
    assert (await env.post(body, sign(body, secret))).status_code == 202
    switch.failing = True
    for _ in range(100):
        await worker.run_once()
        [row] = await env.inbox()
        if row.processed:
            break
        assert row.next_attempt_at is not None
        env.advance(max(1.0, (row.next_attempt_at - env.now()).total_seconds()))
    [row] = await env.inbox()
    assert row.processed and row.outcome is not None, row
    assert row.outcome.startswith(f"gave up after {row.attempts + 1} attempts over 1 h: "), row.outcome
    assert row.outcome.endswith("the account's sweeps import the note")
    assert env.now() - row.received_at >= timedelta(hours=1)


# --- the store's inbox ------------------------------------------------------------------------


async def test_claims_are_leased_and_shared_between_workers_without_overlap(db_url: str) -> None:
    box = SecretBox.generate()
    first = await Store.open(db_url, box=box)
    second = await Store.open(db_url, box=box, migrate=False)
    try:
        for n in range(40):
            stored = await first.receive_webhook(ReceivedWebhook(
                event_id=f"e{n}", event="invoice.updated", company_id="c" * 32, body=b'{"n":%d}' % n,
                resource_id=n + 1))
            assert stored is not None
        assert await first.receive_webhook(ReceivedWebhook(
            event_id="e0", event="invoice.updated", company_id="c", body=b"{}")) is None
        now = datetime.now(UTC)
        lease = timedelta(minutes=5)

        async def claim_all(store: Store) -> list[int]:
            got: list[int] = []
            while batch := await store.claim_webhooks(limit=3, lease=lease, now=now):
                got += [e.id for e in batch]
                await asyncio.sleep(0)
            return got

        a, b = await asyncio.gather(claim_all(first), claim_all(second))
        assert not set(a) & set(b) and len(a) + len(b) == 40
        assert await first.inbox_depth() == 40 and await first.inbox_depth(due_by=now) == 0
        # A worker that died: its rows come back when the lease ends, not before.
        assert await first.claim_webhooks(limit=100, lease=lease, now=now + timedelta(minutes=4)) == []
        back = await first.claim_webhooks(limit=100, lease=lease, now=now + timedelta(minutes=5))
        assert len(back) == 40
        assert await first.settle_webhook(back[0].id, "done")
        assert not await second.settle_webhook(back[0].id, "done twice")  # settled once
        assert not await second.defer_webhook(back[0].id, "late", now, failed=True)
        assert await first.inbox_depth() == 39
        assert await first.next_webhook_due() == now + timedelta(minutes=10)
    finally:
        await first.close()
        await second.close()


async def test_an_nfce_webhook_for_an_account_without_nfce_is_not_used(env: Env) -> None:
    [note] = await env.new_notes(1)
    secret = env.company().clients[0].client_secret
    body = env.envelope(note.id, event="consumer_invoice.updated")
    assert (await env.post(body, sign(body, secret))).status_code == 202
    await env.work()
    [row] = await env.inbox()
    assert row.outcome == "not used: this account does not import NFC-e"


async def test_a_note_that_is_not_danfe_yet_is_left_alone(env: Env) -> None:
    [note] = await env.new_notes(1)
    assert note.situacao == NfeSituacao.AUTORIZADA and note.modelo == Modelo.NFE
    secret = env.company().clients[0].client_secret
    body = env.envelope(note.id)  # a stale or reordered webhook claiming situacao 6
    assert (await env.post(body, sign(body, secret))).status_code == 202
    await env.work()
    [row] = await env.inbox()
    assert row.outcome == ("nothing to do: Bling has the note at Autorizada; it is imported when it "
                           "reaches Emitida DANFE")
    assert await env.store.outbox(account_id=env.account.id) == []


async def test_the_shared_connect_app_secret_verifies_too(tmp_path: Path, db_url: str) -> None:
    async with open_env(tmp_path, db_url, shared_secret=SHARED_SECRET) as env:
        [note] = await env.new_notes(1)
        await env.move(note, "print-danfe")
        body = env.envelope(note.id)
        assert (await env.post(body, sign(body, SHARED_SECRET))).status_code == 202
        await env.work()
        [row] = await env.inbox()
        assert row.outcome is not None and row.outcome.startswith("order "), row.outcome
        await env.deliver()
        assert Counter(e["type"] for e in env.receiver.processed) == {"order.created": 1}



async def test_run_forever_wakes_when_a_webhook_is_stored_and_stops_when_told(env: Env) -> None:
    saved = asyncio.Event()
    worker = InboxWorker(env.service, on_saved=saved.set)
    app = create_app(env.service, wakeups=Wakeups(inbox=worker.notify))
    stop = asyncio.Event()
    [note] = await env.new_notes(1)
    await env.move(note, "print-danfe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b.test") as http:
        task = asyncio.create_task(worker.run_forever(stop, idle_sleep=60))
        await asyncio.sleep(0.1)  # idle: nothing stored, a minute to sleep
        body = env.envelope(note.id)
        r = await http.post("/webhooks/bling", content=body, headers={
            "X-Bling-Signature-256": sign(body, env.company().clients[0].client_secret)})
        assert r.status_code == 202
        async with asyncio.timeout(10):  # far below the idle minute: notify() woke it
            await saved.wait()
        stop.set()
        async with asyncio.timeout(5):
            await task
    [row] = await env.inbox()
    assert row.outcome is not None and row.outcome.startswith("order "), row.outcome


async def test_a_webhook_waiting_past_the_horizon_is_settled_with_the_reason(env: Env) -> None:
    worker = InboxWorker(env.service, horizon=timedelta(hours=1), rng=random.Random(2))
    await env.store.set_account_state(env.account.id, AccountState.NEEDS_REAUTH, "token revoked")
    secret = env.company().clients[0].client_secret
    body = env.envelope(424242)
    assert (await env.post(body, sign(body, secret))).status_code == 202
    for _ in range(20):  # every 5 minutes, for an hour
        await worker.run_once()
        env.advance(300)
    await worker.run_once()
    [row] = await env.inbox()
    assert row.processed and row.attempts == 0
    assert row.outcome == ("gave up waiting after 1 h: waiting: account Marca A is needs_reauth (token "
                           "revoked); the account's sweeps import the note once the account runs again")


async def test_a_webhook_for_a_note_older_than_the_import_horizon_imports_nothing(
        tmp_path: Path, db_url: str) -> None:
    """Polls never reach a note issued before the account's first lookback; a webhook about it
    (Bling sends one for any change, e.g. an old note's DANFE reprinted) must not make it a new
    order for the warehouse either."""
    async with open_env(tmp_path, db_url, account_settings=AccountSettings(initial_lookback_days=1)) as env:
        now = env.now()
        old = [n for n in env.company().notes.values()
               if n.situacao == NfeSituacao.EMITIDA_DANFE and n.tipo == 1 and n.modelo == Modelo.NFE
               and now - n.emitted_at > timedelta(days=20)]
        assert old, "no old note in the simulated history"
        note = old[0]
        await env.service.sync()
        assert note.id not in await env.store.known_notes(env.account.id, [note.id], kind="nfe")
        body = env.envelope(note.id)
        r = await env.post(body, sign(body, env.company().clients[0].client_secret))
        assert r.status_code == 202, r.text
        await env.work()
        [event] = await env.inbox()
        assert event.outcome is not None and "import horizon" in event.outcome
        assert note.id not in await env.store.known_notes(env.account.id, [note.id], kind="nfe")


@pytest.mark.parametrize("body", [
    pytest.param(b"[" * 100_000, id="nested-deeper-than-the-parser-recurses"),
    pytest.param(json.dumps({"companyId": "\u0000abc"}).encode(), id="nul-in-companyId"),
    pytest.param(json.dumps({"companyId": "c" * 65}).encode(), id="companyId-longer-than-the-column"),
])
async def test_hostile_unsigned_bodies_get_the_same_401_as_any_forgery(tmp_path: Path, db_url: str,
                                                                       body: bytes) -> None:
    async with open_env(tmp_path, db_url, shared_secret=SHARED_SECRET) as env:
        r = await env.post(body, "sha256=" + "0" * 64)
        assert r.status_code == 401, r.text
        assert await env.inbox() == []


@pytest.mark.parametrize("envelope", [
    pytest.param({"eventId": "e1", "companyId": "c" * 65}, id="companyId-too-long"),
    pytest.param({"eventId": "e\u00001", "companyId": "abc"}, id="nul-in-eventId"),
])
async def test_signed_envelopes_the_database_cannot_hold_are_refused_with_400(
        tmp_path: Path, db_url: str, envelope: dict[str, str]) -> None:
    async with open_env(tmp_path, db_url, shared_secret=SHARED_SECRET) as env:
        body = json.dumps({**envelope, "event": "invoice.updated", "data": {"id": 1}}).encode()
        r = await env.post(body, sign(body, SHARED_SECRET))
        assert r.status_code == 400, r.text
        assert await env.inbox() == []
