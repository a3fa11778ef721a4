"""Webhooks: envelopes, signatures, and the hub's misbehaviour knobs, delivered over ASGI to a
receiver that can fail like a real one."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from blingsync.simulator.model import Modelo, NfeSituacao, Scope
from blingsync.simulator.webhooks import WebhookKnobs
from tests.conftest import Bling


class Receiver:
    """A webhook endpoint: records what arrives, answers with scripted statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.script.pop(0) if self.script else 200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


def _wire(bling: Bling, knobs: WebhookKnobs | None = None) -> Receiver:
    receiver = Receiver()
    hub = bling.sim.hub
    hub.transport = httpx.ASGITransport(app=receiver.app())
    if knobs:
        hub.configure(knobs)
    for company in bling.sim.state.world.companies:
        company.clients[0].webhook_url = "http://receiver.test/hook"
    return receiver


def _danfe_candidate(bling: Bling, modelo: Modelo = Modelo.NFE):  # type: ignore[no-untyped-def]
    return next(n for n in bling.company().notes.values()
                if n.modelo == modelo and n.situacao == NfeSituacao.AUTORIZADA)


async def test_envelope_and_signature(bling: Bling) -> None:
    receiver = _wire(bling)
    company = bling.company()
    note = _danfe_candidate(bling)
    r = await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    assert r.status_code == 200, r.text
    await bling.sim.hub.flush()
    invoice = [(h, b) for h, b in receiver.received if b'"invoice.updated"' in b]
    assert len(invoice) == 1
    headers, body = invoice[0]
    expected = "sha256=" + hmac.new(company.clients[0].client_secret.encode(), body,
                                    hashlib.sha256).hexdigest()
    assert headers["x-bling-signature-256"] == expected
    envelope = json.loads(body)
    assert set(envelope) == {"eventId", "date", "version", "event", "companyId", "data"}
    assert envelope["version"] == "v1"
    assert envelope["companyId"] == company.company_id
    assert envelope["data"]["id"] == note.id
    assert envelope["data"]["situacao"] == 6
    assert envelope["date"].endswith("Z")
    assert len(envelope["eventId"]) == 36


async def test_nfce_and_created_events(bling: Bling) -> None:
    receiver = _wire(bling)
    company = bling.company()
    r = await bling.http.post(f"/_sim/accounts/{company.id}/notes",
                              json={"modelo": "nfce", "situacao": 6})
    assert r.status_code == 200, r.text
    await bling.sim.hub.flush()
    events = [e["event"] for e in receiver.events()]
    assert events[0] == "consumer_invoice.created"
    assert events.count("consumer_invoice.updated") == 1


async def test_scope_filters_events(bling: Bling) -> None:
    receiver = _wire(bling)
    company = bling.company()
    company.clients[0].webhook_url = None
    orders_only = bling.sim.state.add_client(company, frozenset({Scope.PEDIDOS_VENDAS}))
    orders_only.webhook_url = "http://receiver.test/hook"
    note = next(n for n in company.notes.values() if n.situacao == NfeSituacao.AUTORIZADA
                and n.modelo == Modelo.NFE and n.order_id)
    await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    await bling.sim.hub.flush()
    assert all(e["event"].startswith("order.") for e in receiver.events())


async def test_drop_and_duplicate(bling: Bling) -> None:
    receiver = _wire(bling, WebhookKnobs(drop=1.0))
    note = _danfe_candidate(bling)
    await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    await bling.sim.hub.flush()
    assert receiver.received == []
    assert bling.sim.hub.stats().get("dropped", 0) >= 1

    receiver = _wire(bling, WebhookKnobs(duplicate=1.0))
    note = _danfe_candidate(bling)
    await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    bling.clock.advance(1)
    await bling.sim.hub.flush()
    ids = [e["eventId"] for e in receiver.events() if e["event"] == "invoice.updated"]
    assert len(ids) == 2 and ids[0] == ids[1]


async def test_reorder(bling: Bling) -> None:
    receiver = _wire(bling, WebhookKnobs(reorder=1.0, seed=3))
    company = bling.company()
    company.clients[0].scopes = frozenset({Scope.NFE})  # only invoice events, to keep it simple
    first, second = [n for n in company.notes.values() if n.modelo == Modelo.NFE
                     and n.situacao == NfeSituacao.AUTORIZADA][:2]
    await bling.http.post(f"/_sim/notes/{first.id}/situacao", json={"action": "print-danfe"})
    await bling.http.post(f"/_sim/notes/{second.id}/situacao", json={"action": "print-danfe"})
    bling.clock.advance(1)
    await bling.sim.hub.flush()
    order = [e["data"]["id"] for e in receiver.events()]
    assert order[:2] == [second.id, first.id]


async def test_a_held_event_with_no_follower_still_goes_out(bling: Bling) -> None:
    receiver = _wire(bling, WebhookKnobs(reorder=1.0, reorder_window=2.0))
    bling.company().clients[0].scopes = frozenset({Scope.NFE})
    note = _danfe_candidate(bling)
    await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    await bling.sim.hub.flush()
    assert receiver.received == []
    bling.clock.advance(2)
    await bling.sim.hub.flush()
    assert [e["data"]["id"] for e in receiver.events()] == [note.id]


async def test_delay(bling: Bling) -> None:
    receiver = _wire(bling, WebhookKnobs(delay_min=30, delay_max=30))
    note = _danfe_candidate(bling)
    await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    await bling.sim.hub.flush()
    assert receiver.received == []
    bling.clock.advance(31)
    await bling.sim.hub.flush()
    assert receiver.received


async def test_retries_with_backoff_until_delivered(bling: Bling) -> None:
    receiver = _wire(bling)
    bling.company().clients[0].scopes = frozenset({Scope.NFE})
    receiver.script = [500, 503]
    note = _danfe_candidate(bling)
    await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    await bling.sim.hub.flush()  # attempt 1 -> 500, next in 1 s
    await bling.sim.hub.flush()  # not due yet
    assert len(receiver.received) == 1
    bling.clock.advance(1)
    await bling.sim.hub.flush()  # attempt 2 -> 503, next in 2 s
    bling.clock.advance(1)
    await bling.sim.hub.flush()
    assert len(receiver.received) == 2
    bling.clock.advance(1)
    await bling.sim.hub.flush()  # attempt 3 -> 200
    delivery = bling.sim.hub.deliveries[-1]
    assert delivery.status == "delivered" and delivery.attempts == 3
    bodies = {b for _, b in receiver.received}
    assert len(bodies) == 1  # the same event, byte for byte, every time


async def test_three_days_of_failure_disable_the_app_webhooks(bling: Bling) -> None:
    receiver = _wire(bling)
    client = bling.company().clients[0]
    client.scopes = frozenset({Scope.NFE})
    receiver.script = [500] * 1000
    note = _danfe_candidate(bling)
    await bling.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": "print-danfe"})
    for _ in range(200):
        await bling.sim.hub.flush()
        bling.clock.advance(3600)
    assert bling.sim.hub.deliveries[-1].status == "failed"
    assert client.webhooks_enabled is False
    attempts = len(receiver.received)
    assert 70 <= attempts <= 90  # hourly at the cap, for three days


async def test_admin_webhook_configuration(bling: Bling) -> None:
    r = await bling.http.put("/_sim/webhooks", json={"url": "http://x.test/h",
                                                     "knobs": {"drop": 0.5}})
    assert r.status_code == 200
    assert r.json()["knobs"]["drop"] == 0.5
    assert all(c.clients[0].webhook_url == "http://x.test/h" for c in bling.sim.state.world.companies)
    bad = await bling.http.put("/_sim/webhooks", json={"knobs": {"explode": 1}})
    assert bad.status_code == 400
