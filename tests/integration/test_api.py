"""The REST API (`/api/v1`) end to end: `create_app(service)` over `httpx.ASGITransport`, the
service importing from the simulator (over ASGI too) into a real database (SQLite, and
PostgreSQL when reachable). Every answer of every test is kept, and the secrets the test knows
(API keys, OAuth client secrets, API tokens, sink secrets) are searched for in all of them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import insert

from blingsync.bling.secrets import Secret
from blingsync.domain import BRASILIA
from blingsync.orderjson import order_json
from blingsync.simulator.model import NfeSituacao
from blingsync.store.records import Account, AccountState, SinkConfig, SinkKind, V3Credentials
from blingsync.store.tables import outbox
from blingsync.store.tokens import TokenScope
from blingsync.web.app import create_app
from blingsync.web.deps import Wakeups
from tests.conftest import make_sim
from tests.integration.test_import import LOOKBACK_DAYS, World, open_world

V1 = "/api/v1"


@dataclass
class Api:
    """The world of test_import plus the web app over it, with an admin and a read token."""

    world: World
    http: httpx.AsyncClient
    admin: dict[str, str]
    read: dict[str, str]
    secrets: set[str]
    bodies: list[str]
    wakeups: Wakeups
    outbox_pokes: list[None] = field(default_factory=list)

    async def get(self, path: str, *, token: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        return await self.http.get(V1 + path, params=params, headers=self.read if token is None else token)

    async def post(self, path: str, body: Any = None, *,
                   token: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(V1 + path, json=body, headers=self.admin if token is None else token)

    async def v2_key(self, index: int = 0) -> str:
        r = await self.world.http.post(f"/_sim/accounts/{self.world.company(index).id}/apikeys", json={})
        assert r.status_code == 200, r.text
        key: str = r.json()["apikey"]
        self.secrets.add(key)
        return key

    async def add_v2(self, name: str = "Loja API", index: int = 0) -> dict[str, Any]:
        key = await self.v2_key(index)
        r = await self.post("/accounts", {"method": "api_key", "name": name, "api_key": key,
                                          "initial_lookback_days": LOOKBACK_DAYS})
        assert r.status_code == 201, r.text
        account: dict[str, Any] = r.json()["account"]
        return account

    async def add_v3(self, index: int = 0) -> Account:
        client = self.world.company(index).clients[0]
        self.secrets.add(client.client_secret)
        return await self.world.add_v3(index)

    async def sync(self, account_id: int) -> None:
        r = await self.post(f"/accounts/{account_id}/sync")
        assert r.status_code == 202, r.text
        assert r.json()["mode"] == "background"

    async def all_orders(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            r = await self.get("/orders", **params, **({"cursor": cursor} if cursor else {}))
            assert r.status_code == 200, r.text
            found += r.json()["data"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return found


@contextlib.asynccontextmanager
async def open_api(tmp_path: Path, db_url: str, *, invoices: int = 60,
                   wakeups: Wakeups | None = None) -> AsyncIterator[Api]:
    sim = make_sim(accounts=2, invoices=invoices)
    async with open_world(sim, httpx.ASGITransport(app=sim.app), tmp_path, db_url) as world:
        pokes: list[None] = []
        wakeups = wakeups or Wakeups(outbox=lambda: pokes.append(None))
        bodies: list[str] = []

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            bodies.append(response.text)

        app = create_app(world.service, wakeups=wakeups)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://blingsync.test",
                                     event_hooks={"response": [keep]}) as http:
            _, admin = await world.service.store.create_api_token("ops", TokenScope.ADMIN)
            _, read = await world.service.store.create_api_token("wms", TokenScope.READ)
            api = Api(world, http, {"authorization": f"Bearer {admin}"}, {"authorization": f"Bearer {read}"},
                      {admin, read}, bodies, wakeups, pokes)
            yield api
            for account in await world.service.store.accounts():  # the OAuth tokens blingsync holds
                credentials = await world.service.store.credentials(account.id)
                if isinstance(credentials, V3Credentials) and credentials.tokens is not None:
                    api.secrets |= {credentials.tokens.access_token.reveal(),
                                    credentials.tokens.refresh_token.reveal()} - {""}
            leaked = {secret for secret in api.secrets for body in bodies if secret in body}
            assert not leaked, "a secret came back in an answer of the API"


@pytest.fixture
async def api(tmp_path: Path, db_url: str) -> AsyncIterator[Api]:
    async with open_api(tmp_path, db_url) as opened:
        yield opened


@pytest.fixture
async def imported(api: Api) -> Api:
    """Two v3 accounts imported (about 25 orders each)."""
    for index in (0, 1):
        await api.add_v3(index)
    outcomes = await api.world.service.sync()
    assert all(o.report is not None and o.report.ok for o in outcomes)
    return api


def order_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((resources.files("blingsync") / "schemas" / "order.schema.json").read_text())
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


# --- authentication ---------------------------------------------------------------------------


async def test_no_token_bad_token_and_revoked_token_get_401_with_a_bearer_challenge(api: Api) -> None:
    store = api.world.service.store
    _, doomed = await store.create_api_token("doomed", TokenScope.READ)
    await store.revoke_api_token("doomed")
    cases = {
        "none": {},
        "not bearer": {"authorization": "Basic d21zOnNlY3JldA=="},
        "garbage": {"authorization": "Bearer nonsense"},
        "unknown": {"authorization": "Bearer bsk_" + "A" * 43},
        "revoked": {"authorization": f"Bearer {doomed}"},
    }
    for case, headers in cases.items():
        # A wrong query parameter is not even looked at: without a valid token nothing is answered.
        r = await api.http.get(f"{V1}/orders", params={"limit": "many"}, headers=headers)
        assert r.status_code == 401, (case, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    r = await api.http.get(f"{V1}/orders", headers={"authorization": f"Bearer {doomed}"})
    assert "revoked" in r.json()["detail"]


async def test_a_read_token_reads_and_gets_403_on_every_admin_route(imported: Api) -> None:
    api = imported
    account = (await api.world.service.store.accounts())[0]
    assert (await api.get("/accounts")).status_code == 200
    one = f"/accounts/{account.id}"
    writes = [("post", "/accounts", {"method": "api_key", "name": "x", "api_key": "k"}),
              ("post", f"{one}/pause", None), ("post", f"{one}/resume", None), ("post", f"{one}/sync", None),
              ("post", f"{one}/check", None), ("post", f"{one}/connect", None), ("delete", one, None),
              ("post", "/deliveries/1/replay", None)]
    for method, path, body in writes:
        r = await api.http.request(method, V1 + path, json=body, headers=api.read)
        assert r.status_code == 403, (path, r.text)
        assert "admin" in r.json()["detail"]
    assert (await api.world.service.store.account_by_id(account.id)).state is AccountState.ACTIVE


async def test_last_use_is_recorded_at_most_once_a_minute(api: Api) -> None:
    store = api.world.service.store
    [wms] = [t for t in await store.api_tokens() if t.name == "wms"]
    assert wms.last_used_at is None
    await api.get("/accounts")
    first = next(t for t in await store.api_tokens() if t.name == "wms").last_used_at
    assert first is not None
    api.world.bling.clock.advance(30)
    await api.get("/accounts")
    assert next(t for t in await store.api_tokens() if t.name == "wms").last_used_at == first
    api.world.bling.clock.advance(31)
    await api.get("/accounts")
    later = next(t for t in await store.api_tokens() if t.name == "wms").last_used_at
    assert later is not None and later > first


# --- accounts ---------------------------------------------------------------------------------


async def test_account_lifecycle_through_the_api(api: Api) -> None:
    created = await api.add_v2("Loja API")
    account_id = created["id"]
    assert created["api"] == "v2" and created["state"] == "active" and created["health"]["ok"]
    assert created["health"]["last_run"] is None
    assert created["health"]["orders"] == {"ready": 0, "canceled": 0}

    r = await api.post("/accounts", {"method": "api_key", "name": "Loja API", "api_key": await api.v2_key()})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    r = await api.post("/accounts", {"method": "api_key", "name": "Loja Falsa", "api_key": "not-a-real-key"})
    assert r.status_code == 422, r.text
    assert "Bling refused" in r.json()["detail"]
    assert [a.name for a in await api.world.service.store.accounts()] == ["Loja API"]

    r = await api.post(f"/accounts/{account_id}/pause")
    assert r.status_code == 200 and r.json()["state"] == "paused"
    assert "paused" in r.json()["health"]["problems"][0]
    r = await api.post(f"/accounts/{account_id}/sync")
    assert r.status_code == 409 and "resume" in r.json()["detail"]
    r = await api.post(f"/accounts/{account_id}/resume")
    assert r.status_code == 200 and r.json()["state"] == "active"

    await api.sync(account_id)  # runs in the background task, finished when the answer arrives
    shown = (await api.get(f"/accounts/{account_id}")).json()
    truth = api.world.truth()
    assert shown["health"]["orders"]["ready"] == len(truth) > 0
    assert shown["health"]["last_run"]["outcome"] == "ok"
    assert shown["health"]["last_run"]["trigger"] == "api"
    assert shown["health"]["deliveries"] == {"pending": len(truth), "dead": 0}
    assert api.outbox_pokes, "the relay must be woken for the new events"

    r = await api.post(f"/accounts/{account_id}/check")
    assert r.status_code == 200, r.text
    assert r.json()["ok"] and r.json()["missing"] == [] and all(p["granted"] for p in r.json()["permissions"])

    listed = (await api.get("/accounts")).json()["data"]
    assert [a["id"] for a in listed] == [account_id]
    assert listed[0]["health"] == shown["health"]

    r = await api.http.delete(f"{V1}/accounts/{account_id}", headers=api.admin)
    assert r.status_code == 204 and r.content == b""
    assert (await api.get(f"/accounts/{account_id}")).status_code == 404
    assert (await api.get("/orders")).json()["data"] == []
    assert (await api.http.delete(f"{V1}/accounts/{account_id}", headers=api.admin)).status_code == 404


async def test_a_check_that_bling_refuses_records_the_state_and_says_why(api: Api) -> None:
    account = await api.add_v3()
    client = api.world.company().clients[0]
    r = await api.world.http.patch(f"/_sim/clients/{client.client_id}", json={"active": False})
    assert r.status_code == 200, r.text
    api.world.bling.clock.advance(7 * 3600)  # the access token expired: the refresh is refused
    r = await api.post(f"/accounts/{account.id}/check")
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["ok"] and body["error"] and body["permissions"] == []
    assert body["account"]["state"] == "needs_reauth"
    assert body["account"]["health"]["problems"]


async def test_sync_now_goes_to_the_scheduler_when_one_runs(tmp_path: Path, db_url: str) -> None:
    asked: list[int] = []
    async with open_api(tmp_path, db_url, wakeups=Wakeups(sync=asked.append)) as api:
        account = await api.add_v3()
        r = await api.post(f"/accounts/{account.id}/sync")
        assert r.status_code == 202 and r.json()["mode"] == "scheduler"
        assert asked == [account.id]
        assert await api.world.service.store.count_orders(account_id=account.id) == 0


async def test_oauth_connect_gives_a_one_time_link_or_says_what_is_missing(api: Api) -> None:
    r = await api.post("/accounts", {"method": "oauth", "name": "Loja OAuth"})
    assert r.status_code == 503, r.text
    assert "BLINGSYNC_OAUTH_CLIENT_ID" in r.json()["detail"]
    service = api.world.service
    client = api.world.company().clients[0]
    api.secrets.add(client.client_secret)
    from dataclasses import replace

    service.settings = replace(service.settings, oauth_client_id=client.client_id,
                               oauth_client_secret=client.client_secret, public_url="https://sync.example")
    r = await api.post("/accounts", {"method": "oauth", "name": "Loja OAuth", "import_nfce": True})
    assert r.status_code == 202, r.text
    link = r.json()
    assert link["account"] == "Loja OAuth"
    assert link["url"].startswith("https://sync.example/oauth/bling/start?ticket=")
    assert datetime.fromisoformat(link["expires_at"]) > api.world.now()
    assert await service.store.accounts() == []  # the account exists once the brand authorised
    account = await api.add_v3(1)
    r = await api.post(f"/accounts/{account.id}/connect")
    assert r.status_code == 202 and r.json()["account"] == account.name
    r = await api.post("/accounts", {"method": "oauth", "name": account.name})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


async def test_bad_account_input_is_a_422_naming_the_field(api: Api) -> None:
    cases = [
        ({"method": "api_key", "name": "   ", "api_key": "abc"}, "name"),
        ({"method": "api_key", "name": "Loja", "api_key": "has spaces inside"}, "api_key"),
        ({"method": "api_key", "name": "Lo\x00ja", "api_key": "abc"}, "name"),
        ({"method": "api_key", "name": "Loja"}, "api_key"),
        ({"method": "telepathy", "name": "Loja"}, "body"),
        ({"method": "api_key", "name": "Loja", "api_key": "abc", "initial_lookback_days": 0},
         "initial_lookback_days"),
        ({"method": "oauth", "name": "Loja", "api_key": "abc"}, "api_key"),
    ]
    for body, field_name in cases:
        r = await api.post("/accounts", body)
        assert r.status_code == 422, (body, r.text)
        problem = r.json()
        assert field_name in problem["detail"], problem
        assert all("input" not in issue for issue in problem["errors"])
    r = await api.http.post(f"{V1}/accounts", content=b"{not json",
                            headers={**api.admin, "content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    assert (await api.get("/accounts/0")).status_code == 422
    assert (await api.get("/accounts/99999999999")).status_code == 422
    assert (await api.get("/accounts/12345")).json() == {"detail": "no account with id 12345"}
    assert await api.world.service.store.accounts() == []


# --- orders -----------------------------------------------------------------------------------


async def test_pages_miss_nothing_and_repeat_nothing_while_orders_arrive(imported: Api) -> None:
    api = imported
    store = api.world.service.store
    before = {o.id for o in await store.orders(limit=100_000)}
    assert len(before) > 30
    account = await store.account(api.world.company(0).fantasia)
    for sort in ("-issued_at", "issued_at", "-id", "id"):
        seen: list[int] = []
        keys: list[tuple[datetime, int]] = []  # (issued_at, id): the order of the *issued_at sorts
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 7, "sort": sort, **({"cursor": cursor} if cursor else {})}
            r = await api.get("/orders", **params)
            assert r.status_code == 200, r.text
            seen += [o["id"] for o in r.json()["data"]]
            keys += [(datetime.fromisoformat(o["issued_at"]), o["id"]) for o in r.json()["data"]]
            cursor = r.json()["next_cursor"]
            pages += 1
            if pages == 2:  # new orders arrive in the middle of the listing
                created = await api.world.http.post(
                    f"/_sim/accounts/{api.world.company().id}/notes",
                    json={"count": 3, "situacao": int(NfeSituacao.EMITIDA_DANFE)})
                assert created.status_code == 200
                api.world.bling.clock.advance(60)
                await api.sync(account.id)
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), "an order came twice"
        if sort.endswith("issued_at"):
            assert keys == sorted(keys, reverse=sort.startswith("-"))
        else:
            assert seen == sorted(seen, reverse=sort == "-id")
        assert before <= set(seen), "an order that existed was missed"
        new = set(seen) - before
        if sort.endswith("id"):
            assert len(new) == (0 if sort == "-id" else 3)  # newest first started above them
        before = {o.id for o in await store.orders(limit=100_000)}


async def test_filters_and_search(imported: Api) -> None:
    api = imported
    store = api.world.service.store
    first, second = await store.accounts()
    everything = await store.orders(limit=100_000)
    mine = [o for o in everything if o.account == first.name]
    assert {o["id"] for o in await api.all_orders(account_id=first.id, limit=10)} == {o.id for o in mine}

    # A cancellation in Bling, then the status filter.
    note = next(n for n in api.world.company().notes.values() if n.chave == mine[0].order.access_key)
    api.world.bling.clock.advance(60)
    await api.world.move(note, "cancel")
    await api.world.service.sync(since=api.world.now() - timedelta(days=LOOKBACK_DAYS))
    canceled = await api.all_orders(status="canceled")
    assert [o["id"] for o in canceled] == [mine[0].id]
    assert canceled[0]["status"] == "canceled" and canceled[0]["canceled_at"] is not None
    ready = await api.all_orders(status="ready", account_id=first.id)
    assert len(ready) == len(mine) - 1

    # Issue dates are days in Brasília, both ends included.
    days = sorted({o.order.issued_at.astimezone(BRASILIA).date() for o in everything})
    low, high = days[len(days) // 3], days[2 * len(days) // 3]
    expected = {o.id for o in everything if low <= o.order.issued_at.astimezone(BRASILIA).date() <= high}
    found = {o["id"] for o in await api.all_orders(issued_from=low.isoformat(), issued_to=high.isoformat())}
    assert found == expected and 0 < len(found) < len(everything)
    assert {o["id"] for o in await api.all_orders(issued_from=high.isoformat())} == {
        o.id for o in everything if o.order.issued_at.astimezone(BRASILIA).date() >= high}
    assert await api.all_orders(issued_to="9999-12-31", issued_from="0001-01-01", limit=500) != []

    # Search by number, chave (also as printed, in groups of four), document, part of the name.
    target = next(o for o in everything if o.account == second.name and o.order.recipient.document
                  and o.order.recipient.name)
    chave = target.order.access_key
    by_number = {o["id"] for o in await api.all_orders(q=str(target.order.number))}
    assert target.id in by_number
    assert all(o.order.number == target.order.number for o in everything if o.id in by_number)
    for q in (chave, " ".join(chave[i:i + 4] for i in range(0, 44, 4))):
        assert [o["id"] for o in await api.all_orders(q=q)] == [target.id]
    document = target.order.recipient.document
    assert document is not None
    printed = (f"{document[:3]}.{document[3:6]}.{document[6:9]}-{document[9:]}" if len(document) == 11
               else f"{document[:2]}.{document[2:5]}.{document[5:8]}/{document[8:12]}-{document[12:]}")
    same_document = {o.id for o in everything if o.order.recipient.document == document}
    assert {o["id"] for o in await api.all_orders(q=printed)} == same_document
    name = target.order.recipient.name
    assert name is not None
    part = name.split()[0].lower()
    with_part = {o["id"] for o in await api.all_orders(q=part)}
    assert target.id in with_part
    assert all(part in (o.order.recipient.name or "").lower() or str(o.order.number) == part
               for o in everything if o.id in with_part)
    assert await api.all_orders(q="%") == []  # LIKE's wildcards are plain characters here
    assert await api.all_orders(q="_") == []


async def test_bad_list_parameters_are_422_in_words(imported: Api) -> None:
    api = imported
    page = (await api.get("/orders", limit=5)).json()
    cursor = page["next_cursor"]
    assert cursor
    assert (await api.get("/orders", limit=5, cursor=cursor)).status_code == 200
    cases = [
        ({"limit": 0}, "query parameter limit"),
        ({"limit": 501}, "query parameter limit"),
        ({"status": "lost"}, "query parameter status"),
        ({"issued_from": "2026-13-01"}, "query parameter issued_from"),
        ({"issued_from": "2026-11-20", "issued_to": "2026-11-01"}, "after issued_to"),
        ({"cursor": "garbage!"}, "cursor is not one this API gave out"),
        ({"cursor": cursor, "status": "ready"}, "other filters"),
        ({"cursor": cursor, "sort": "id"}, "other filters or another sort"),
        ({"q": "a\tb"}, "query parameter q"),
        ({"account_id": 2**40}, "query parameter account_id"),
    ]
    for params, words in cases:
        r = await api.get("/orders", **params)
        assert r.status_code == 422, (params, r.text)
        assert words in r.json()["detail"], (params, r.json())


async def test_an_order_is_the_order_json_and_its_xml_the_stored_document(imported: Api) -> None:
    api = imported
    store = api.world.service.store
    validator = order_validator()
    for stored in (await store.orders(limit=100_000))[:5]:
        r = await api.get(f"/orders/{stored.id}")
        assert r.status_code == 200
        assert r.json() == json.loads(json.dumps(order_json(stored)))
        validator.validate(r.json())
        x = await api.get(f"/orders/{stored.id}/xml")
        assert x.status_code == 200
        assert x.headers["content-type"] == "application/xml"
        assert x.content == await store.document(stored.id)
        assert stored.order.access_key.encode() in x.content
        assert f'filename="{stored.order.access_key}-nfe.xml"' in x.headers["content-disposition"]
    assert (await api.get("/orders/987654")).status_code == 404
    assert (await api.get("/orders/987654/xml")).json() == {"detail": "no order with id 987654"}


# --- events feed and deliveries ---------------------------------------------------------------


async def test_the_feed_is_every_sink_event_in_id_order_with_its_key(imported: Api) -> None:
    api = imported
    store = api.world.service.store
    events = await store.outbox(limit=100_000)
    # A write-back to Bling in the outbox is not the warehouse's business: not in the feed.
    async with store.engine.begin() as conn:
        first = events[0]
        await conn.execute(insert(outbox).values(
            account_id=first.account_id, order_id=first.order_id, type="order.updated", order_version=1,
            idempotency_key="writeback-test", payload=json.dumps(first.payload), created_at=first.created_at,
            attempts=0, next_attempt_at=first.created_at, channel="bling"))
    # Delivered or not does not matter to the feed.
    assert await store.mark_delivered(events[3].id, attempt_duration=timedelta(milliseconds=5))

    read: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await api.get("/events", after=after, limit=10)
        assert r.status_code == 200, r.text
        page = r.json()
        read += page["data"]
        assert page["next_after"] == (page["data"][-1]["id"] if page["data"] else after)
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert [e["id"] for e in read] == [e.id for e in events]
    assert "writeback-test" not in {e["idempotency_key"] for e in read}
    validator = order_validator()
    for got, event in zip(read, events, strict=True):
        assert got["idempotency_key"] == event.idempotency_key
        assert (got["type"], got["order_id"], got["version"]) == (event.type.value, event.order_id,
                                                                  event.order_version)
        assert got["payload"] == event.payload
        validator.validate(got["payload"])
    # Nothing new: an empty page keeps the position.
    r = await api.get("/events", after=after)
    assert r.json() == {"data": [], "next_after": after, "has_more": False}
    account = (await store.accounts())[1]
    theirs = (await api.get("/events", account_id=account.id, limit=500)).json()["data"]
    assert {e["account_id"] for e in theirs} == {account.id}
    assert len(theirs) == len([e for e in events if e.account_id == account.id])


async def test_deliveries_list_pending_and_dead_and_replay_one(imported: Api) -> None:
    api = imported
    store = api.world.service.store
    events = await store.outbox(limit=100_000)
    account = (await store.accounts())[0]
    now = api.world.now()
    dead = events[1]
    assert await store.mark_dead(dead.id, "receiver said 500", now=now)
    assert await store.mark_delivered(events[2].id, attempt_duration=timedelta(milliseconds=3))

    everything = (await api.get("/deliveries", limit=500)).json()["data"]
    assert [d["id"] for d in everything] == [e.id for e in events if e.id != events[2].id]
    [only_dead] = (await api.get("/deliveries", state="dead")).json()["data"]
    assert only_dead["id"] == dead.id and only_dead["state"] == "dead"
    assert only_dead["last_error"] == "receiver said 500" and only_dead["channel"] == "sink"
    pending = (await api.get("/deliveries", state="pending", account_id=account.id, limit=500)).json()["data"]
    assert {d["state"] for d in pending} == {"pending"} and {d["account_id"] for d in pending} == {account.id}
    health = (await api.get(f"/accounts/{dead.account_id}")).json()["health"]
    assert health["deliveries"]["dead"] == 1 and not health["ok"]
    assert any("dead deliveries" in problem for problem in health["problems"])

    pokes = len(api.outbox_pokes)
    r = await api.post(f"/deliveries/{dead.id}/replay")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending" and r.json()["replayed_at"] is not None
    assert len(api.outbox_pokes) == pokes + 1
    assert (await api.get("/deliveries", state="dead")).json()["data"] == []
    r = await api.post(f"/deliveries/{events[2].id}/replay")
    assert r.status_code == 409 and "delivered already" in r.json()["detail"]
    assert (await api.post("/deliveries/999999/replay")).status_code == 404
    r = await api.get("/deliveries", channel="carrier-pigeon")
    assert r.status_code == 422 and "query parameter channel" in r.json()["detail"]


async def test_no_secret_in_any_answer(imported: Api) -> None:
    """The sink's secret, a URL's credentials, the v2 key, the v3 client secret, the tokens:
    the fixture checks every answer of this test (and of every other) for them."""
    api = imported
    store = api.world.service.store
    account = (await store.accounts())[0]
    secret = "whsec_" + "s3cr3t" * 6
    api.secrets |= {secret, "hunter2"}
    await store.set_sink(account.id, SinkConfig(SinkKind.WEBHOOK, url="https://wms:hunter2@wms.example/hook",
                                                secret=Secret(secret)))
    await api.add_v2("Loja v2")
    shown = (await api.get(f"/accounts/{account.id}")).json()
    sink = shown["health"]["sink"]
    assert sink["kind"] == "webhook" and "wms.example/hook" in sink["url"] and sink["enabled"]
    for path in ("/accounts", f"/accounts/{account.id}", "/orders", "/events", "/deliveries"):
        assert (await api.get(path)).status_code == 200
    assert (await api.post(f"/accounts/{account.id}/check")).status_code == 200
    assert len(api.bodies) >= 8


async def test_the_published_schema_names_every_route_and_its_errors(api: Api) -> None:
    r = await api.http.get(f"{V1}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    operations = {(method.upper(), path): op
                  for path, ops in doc["paths"].items() for method, op in ops.items()}
    for (method, path), op in operations.items():
        assert op["security"] == [{"ApiToken": []}], path
        assert {"401", "403", "422"} <= set(op["responses"]), (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)
    assert doc["components"]["schemas"]["Order"]["properties"]["access_key"]["pattern"]
    assert "$ref" not in json.dumps(doc["components"]["schemas"]["Order"]).replace("#/components/", "")
    expected = {("GET", "/api/v1/accounts"), ("POST", "/api/v1/accounts"), ("GET", "/api/v1/orders"),
                ("GET", "/api/v1/orders/{order_id}/xml"), ("GET", "/api/v1/events"),
                ("POST", "/api/v1/deliveries/{event_id}/replay"), ("DELETE", "/api/v1/accounts/{account_id}")}
    assert expected <= set(operations)
