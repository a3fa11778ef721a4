"""The importer end to end: the simulator over ASGI (real HTTP semantics), the real client, the
real parser and a real database (SQLite here; PostgreSQL too when reachable, through the
`database_url` fixture). The simulator's own model is the truth every count is checked against.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.config import Settings
from blingsync.domain import InvoiceStatus, OrderStatus
from blingsync.service import Service
from blingsync.simulator.app import Simulator
from blingsync.simulator.model import Company, Modelo, NfeSituacao, Note
from blingsync.store.records import Account, AccountSettings, AccountState, EventType, RunOutcome
from blingsync.sync.reasons import QuarantineCode, RunCode, UnimportedCode
from tests.conftest import Bling, make_sim

LOOKBACK_DAYS = 120  # the generated history is 90 days long


def fast_registry() -> LimiterRegistry:
    """Bling's pace is the client's business (tested there); here it would only make the
    tests wait: 1,000 requests a second."""
    return LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))


@dataclass
class World:
    sim: Simulator
    bling: Bling
    service: Service
    http: httpx.AsyncClient

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.bling.clock.time(), UTC)

    def company(self, index: int = 0) -> Company:
        return self.bling.company(index)

    def truth(self, index: int = 0, *, situacao: NfeSituacao = NfeSituacao.EMITIDA_DANFE) -> set[str]:
        """Access keys of the NF-e de saída the simulator holds at `situacao` in the window."""
        since = self.now() - timedelta(days=LOOKBACK_DAYS)
        return {n.chave for n in self.company(index).notes.values()
                if n.modelo == Modelo.NFE and n.tipo == 1 and n.situacao == situacao
                and n.emitted_at >= since}

    async def counters(self, index: int = 0) -> dict[str, Any]:
        r = await self.http.get(f"/_sim/accounts/{self.company(index).id}/counters")
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body

    async def add_v3(self, index: int = 0, **settings: Any) -> Account:
        client = self.company(index).clients[0]
        code = await self.bling.code(client)
        added = await self.service.add_account(
            self.company(index).fantasia, client_id=client.client_id,
            client_secret=client.client_secret, code=code,
            settings=AccountSettings(**{"initial_lookback_days": LOOKBACK_DAYS, **settings}))
        return added.account

    async def add_v2(self, index: int = 0, name: str | None = None, **settings: Any) -> Account:
        r = await self.http.post(f"/_sim/accounts/{self.company(index).id}/apikeys", json={})
        assert r.status_code == 200, r.text
        added = await self.service.add_account(
            name or f"{self.company(index).fantasia} v2", api_key=r.json()["apikey"],
            settings=AccountSettings(**{"initial_lookback_days": LOOKBACK_DAYS, **settings}))
        return added.account

    async def move(self, note: Note, action: str) -> None:
        r = await self.http.post(f"/_sim/notes/{note.id}/situacao", json={"action": action})
        assert r.status_code == 200, r.text

    async def keys(self, account: Account, status: OrderStatus | None = None) -> set[str]:
        orders = await self.service.store.orders(account=account.name, status=status, limit=100_000)
        return {o.order.access_key for o in orders}


def detail_and_xml_calls(counters: dict[str, Any]) -> int:
    """Requests that read one note (detail, XML link, /nfe/documento), not listings."""
    return sum(n for endpoint, n in counters["by_endpoint"].items()
               if "{" in endpoint or "documento" in endpoint or "xml" in endpoint.lower())


@contextlib.asynccontextmanager
async def open_world(sim: Simulator, transport: httpx.AsyncBaseTransport, tmp_path: Path,
                     db_url: str) -> AsyncIterator[World]:
    """The service on its own database, talking to `sim` through `transport`, on the
    simulator's clock."""
    settings = Settings(data_dir=tmp_path, database_url=db_url, secret_key=None,
                        bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2")
    async with httpx.AsyncClient(transport=transport, base_url="http://bling.test") as http:
        bling = Bling(sim, http)
        async with Service.open(settings, warn=lambda _: None, registry=fast_registry(),
                                transport=transport,
                                now=lambda: datetime.fromtimestamp(bling.clock.time(), UTC)) as service:
            yield World(sim, bling, service, http)


@pytest.fixture
async def world(tmp_path: Path, db_url: str) -> AsyncIterator[World]:
    sim = make_sim(accounts=2, invoices=150)
    transport = httpx.ASGITransport(app=sim.app)
    async with open_world(sim, transport, tmp_path, db_url) as world:
        yield world


async def test_first_import_takes_every_emitida_danfe_saida_nfe_and_nothing_else(world: World) -> None:
    account = await world.add_v3()
    [outcome] = await world.service.sync()
    assert outcome.report is not None and outcome.report.ok, outcome.report
    truth = world.truth()
    assert truth, "the simulated history must have Emitida DANFE notes"
    assert await world.keys(account) == truth
    for situacao in (NfeSituacao.AUTORIZADA, NfeSituacao.CANCELADA):
        assert not world.truth(situacao=situacao) & await world.keys(account)
    entrada = {n.chave for n in world.company().notes.values() if n.tipo == 0}
    assert not entrada & await world.keys(account)
    events = await world.service.store.outbox(account_id=account.id)
    assert len(events) == len(truth)
    assert {e.type for e in events} == {EventType.CREATED}
    assert len({e.idempotency_key for e in events}) == len(events)
    counters = outcome.report.counters
    assert counters.created == len(truth) and counters.quarantined == 0
    [run] = await world.service.store.runs(account.id, limit=1)
    assert run.outcome is RunOutcome.OK and run.counters.created == len(truth)
    assert run.error is None and run.error_code is None


async def test_second_run_makes_no_detail_calls_and_changes_nothing(world: World) -> None:
    account = await world.add_v3()
    await world.service.sync()
    before_orders = await world.service.store.orders(account=account.name, limit=100_000)
    before_events = await world.service.store.outbox(account_id=account.id)
    calls_before = detail_and_xml_calls(await world.counters())
    # The next poll sweeps the last two days; a run with --since the whole history.
    [poll] = await world.service.sync()
    [full] = await world.service.sync(since=world.now() - timedelta(days=LOOKBACK_DAYS))
    for outcome in (poll, full):
        assert outcome.report is not None and outcome.report.ok
        counters = outcome.report.counters
        assert counters.created == counters.updated == counters.canceled == 0
        assert counters.skipped == counters.listed
    assert full.report is not None and full.report.counters.listed == len(before_orders)
    assert detail_and_xml_calls(await world.counters()) == calls_before
    assert await world.service.store.orders(account=account.name, limit=100_000) == before_orders
    assert await world.service.store.outbox(account_id=account.id) == before_events


async def test_a_note_canceled_in_bling_is_canceled_here_with_one_event(world: World) -> None:
    """SEFAZ allows a cancellation within 24 hours of authorisation: the next poll (its window
    the last two days) sees it."""
    account = await world.add_v3()
    r = await world.http.post(f"/_sim/accounts/{world.company().id}/notes",
                              json={"count": 1, "situacao": int(NfeSituacao.EMITIDA_DANFE)})
    assert r.status_code == 200, r.text
    note = world.company().notes[r.json()["notes"][0]["id"]]
    await world.service.sync()
    world.bling.clock.advance(3 * 3600)
    await world.move(note, "cancel")
    [outcome] = await world.service.sync()
    assert outcome.report is not None and outcome.report.counters.canceled == 1
    stored = await world.service.store.order_by_key(account.name, note.chave)
    assert stored.status is OrderStatus.CANCELED and stored.situation is InvoiceStatus.CANCELED
    events = await world.service.store.outbox(order_id=stored.id)
    assert [e.type for e in events] == [EventType.CREATED, EventType.CANCELED]
    assert events[1].payload["status"] == "canceled"
    world.bling.clock.advance(120)
    await world.service.sync(since=world.now() - timedelta(days=LOOKBACK_DAYS))
    assert len(await world.service.store.outbox(order_id=stored.id)) == 2


async def test_a_late_cancellation_is_found_by_the_hourly_week_sweep(world: World) -> None:
    """A cancellation of an older note (SEFAZ's extemporaneous window) is outside the two-day
    poll but inside the week swept every hour."""
    account = await world.add_v3()
    await world.service.sync()
    cutoff = world.now() - timedelta(days=2, hours=1)
    old = max((n for n in world.company().notes.values() if n.chave in world.truth()
               and n.emitted_at < cutoff and n.emitted_at > world.now() - timedelta(days=6)),
              key=lambda n: n.emitted_at)
    await world.move(old, "cancel")
    world.bling.clock.advance(60)
    [poll] = await world.service.sync()
    assert poll.report is not None and poll.report.counters.canceled == 0
    world.bling.clock.advance(3600)
    [hourly] = await world.service.sync()
    assert hourly.report is not None and hourly.report.counters.canceled == 1
    assert hourly.report.runs[0].tier == "week"
    stored = await world.service.store.order_by_key(account.name, old.chave)
    assert stored.status is OrderStatus.CANCELED


async def test_a_danfe_printed_later_is_imported_by_the_next_poll(world: World) -> None:
    account = await world.add_v3()
    await world.service.sync()
    r = await world.http.post(f"/_sim/accounts/{world.company().id}/notes",
                              json={"count": 2, "situacao": int(NfeSituacao.AUTORIZADA)})
    assert r.status_code == 200, r.text
    fresh = [world.company().notes[n["id"]] for n in r.json()["notes"]]
    world.bling.clock.advance(60)
    [outcome] = await world.service.sync()
    assert outcome.report is not None and outcome.report.counters.created == 0
    await world.move(fresh[0], "print-danfe")
    world.bling.clock.advance(60)
    [outcome] = await world.service.sync()
    assert outcome.report is not None and outcome.report.counters.created == 1
    assert fresh[0].chave in await world.keys(account)
    assert fresh[1].chave not in await world.keys(account)


async def test_autorizada_notes_waiting_for_their_danfe_are_reported_not_imported(world: World) -> None:
    account = await world.add_v3()
    [outcome] = await world.service.sync()
    assert outcome.report is not None
    stale_cutoff = world.now() - timedelta(hours=AccountSettings().stale_authorized_hours)
    since = world.now() - timedelta(days=LOOKBACK_DAYS)
    expected = {n.id for n in world.company().notes.values()
                if n.modelo == Modelo.NFE and n.tipo == 1 and n.situacao == NfeSituacao.AUTORIZADA
                and since <= n.emitted_at <= stale_cutoff}
    waiting = await world.service.store.unimported(account.id)
    assert {w.bling_id for w in waiting} == expected
    assert all("DANFE" in w.reason for w in waiting)
    assert {w.reason_code for w in waiting} == {UnimportedCode.WAITING_FOR_DANFE}


async def test_a_v2_account_imports_the_same_orders_as_v3(world: World) -> None:
    v2 = await world.add_v2()
    [outcome] = await world.service.sync()
    assert outcome.report is not None and outcome.report.ok, outcome.report.error
    assert await world.keys(v2) == world.truth()


async def test_revoked_access_stops_the_account_and_keeps_the_cursor(world: World) -> None:
    account = await world.add_v3()
    await world.service.sync()
    cursor = await world.service.store.cursor(account.id, "nfe", "recent")
    client = world.company().clients[0]
    r = await world.http.patch(f"/_sim/clients/{client.client_id}", json={"active": False})
    assert r.status_code == 200, r.text
    world.bling.clock.advance(7 * 3600)  # the access token expired: the refresh is refused
    [outcome] = await world.service.sync([account.name])
    assert outcome.report is not None and not outcome.report.ok
    assert outcome.account.state in (AccountState.NEEDS_REAUTH, AccountState.INVALID_CREDENTIALS)
    assert outcome.account.state_reason
    assert await world.service.store.cursor(account.id, "nfe", "recent") == cursor
    [run] = await world.service.store.runs(account.id, limit=1)
    assert run.outcome is RunOutcome.FAILED
    expected_code = {AccountState.NEEDS_REAUTH: {"reauthorization_needed", "access_token_rejected"},
                     AccountState.INVALID_CREDENTIALS: {"credentials_invalid_v3"}}[outcome.account.state]
    assert run.error_code in expected_code and run.error == outcome.account.state_reason
    # Left alone by a sync of every account until the user reconnects it.
    [skipped] = await world.service.sync()
    assert skipped.report is None and skipped.skipped_because


async def test_an_unreadable_xml_is_quarantined_and_the_rest_flows(tmp_path: Path,
                                                                   db_url: str) -> None:
    sim = make_sim(accounts=1, invoices=60)
    # The oldest: beyond the reach of every sweep after the first import (90 days back).
    victim = min((n for n in sim.state.world.companies[0].notes.values()
                  if n.modelo == Modelo.NFE and n.tipo == 1 and n.situacao == NfeSituacao.EMITIDA_DANFE),
                 key=lambda n: n.emitted_at)
    inner = httpx.ASGITransport(app=sim.app)
    healed = {"yes": False}

    class Truncating(httpx.AsyncBaseTransport):
        """Bling serving one note's XML cut short, as a broken proxy or storage would."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            body = await response.aread()
            if not healed["yes"] and victim.chave.encode() in body and b"<nfeProc" in body:
                body = body[: len(body) // 2]
            return httpx.Response(response.status_code, headers=[
                (k, v) for k, v in response.headers.items() if k.lower() != "content-length"],
                content=body)

    transport = Truncating()
    async with open_world(sim, transport, tmp_path, db_url) as world:
        service, bling = world.service, world.bling
        account = await world.add_v3()
        [outcome] = await service.sync()
        assert outcome.report is not None and outcome.report.ok
        assert outcome.report.counters.quarantined == 1
        assert await world.keys(account) == world.truth() - {victim.chave}
        [entry] = await service.store.quarantined(account.id)
        assert entry.bling_id == victim.id and "XML" in entry.reason
        assert entry.reason_code == QuarantineCode.NFE_MALFORMED  # cut short: not well-formed
        [run] = await service.store.runs(account.id, limit=1)
        assert run.outcome is RunOutcome.PARTIAL and run.error_code == RunCode.NOTES_QUARANTINED
        # Held back from the next poll (no detail calls for it), not forgotten.
        [again] = await service.sync()
        assert again.report is not None and again.report.counters.quarantined == 0
        assert len(await service.store.quarantined(account.id)) == 1
        # Due an hour later, it is fetched by id even though no sweep lists it any more;
        # still broken, it waits twice as long; once Bling serves it whole, it is imported.
        bling.clock.advance(3600 + 60)
        [retry] = await service.sync()
        assert retry.report is not None and retry.report.counters.quarantined == 1
        [entry] = await service.store.quarantined(account.id)
        assert entry.attempts == 2
        healed["yes"] = True
        bling.clock.advance(2 * 3600 + 60)
        [healed_run] = await service.sync()
        assert healed_run.report is not None and healed_run.report.counters.created == 1
        assert await service.store.quarantined(account.id) == []
        assert victim.chave in await world.keys(account)


QUARANTINE_CASES: dict[str, tuple[QuarantineCode, str]] = {
    # case: the code stored, and a word of the English reason kept beside it
    "no_protocol": (QuarantineCode.NOT_AUTHORISED, "SEFAZ authorisation"),
    "doctype": (QuarantineCode.NFE_UNSAFE, "DOCTYPE"),
    "another_note": (QuarantineCode.CHAVE_MISMATCH, "but Bling lists"),
    "an_nfce": (QuarantineCode.WRONG_MODELO, "modelo 65"),
    "no_xml": (QuarantineCode.XML_MISSING, "no XML"),
}


@pytest.mark.parametrize("case", sorted(QUARANTINE_CASES))
async def test_each_quarantined_note_keeps_the_code_of_its_reason(tmp_path: Path, db_url: str,
                                                                  case: str) -> None:
    """Bling serving one note's XML without its authorisation, with a DOCTYPE, as another
    note's or an NFC-e's, or not at all: each is quarantined with the English reason (for the
    logs, API and CLI) and the stable code the dashboard translates, and the run says why it
    is partial by code too."""
    sim = make_sim(accounts=1, invoices=40)
    company = sim.state.world.companies[0]
    saidas = sorted((n for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1
                     and n.situacao == NfeSituacao.EMITIDA_DANFE), key=lambda n: n.emitted_at)
    victim, other = saidas[-1], saidas[-2]
    nfce = next((n for n in company.notes.values() if n.modelo == Modelo.NFCE and n.is_authorised), None)
    if case == "an_nfce" and nfce is None:
        pytest.skip("the simulated company has no authorised NFC-e")
    if case == "no_xml":
        victim.protocolo = ""  # no XML link in its detail, and /nfe/documento answers not found
    inner = httpx.ASGITransport(app=sim.app)

    def tamper(body: bytes) -> bytes:
        if case == "no_protocol":
            return body.replace(b"<cStat>100</cStat>", b"<cStat>110</cStat>")
        if case == "doctype":
            return body.replace(b"<nfeProc", b'<!DOCTYPE nfeProc [<!ENTITY x "y">]><nfeProc', 1)
        if case == "another_note":
            return sim.state.note_xml(company, other)
        if case == "an_nfce":
            assert nfce is not None
            return sim.state.note_xml(company, nfce)
        return body

    class Tampering(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            body = await response.aread()
            if victim.chave.encode() in body and b"<nfeProc" in body:
                body = tamper(body)
            return httpx.Response(response.status_code, headers=[
                (k, v) for k, v in response.headers.items() if k.lower() != "content-length"],
                content=body)

    async with open_world(sim, Tampering(), tmp_path, db_url) as world:
        account = await world.add_v3()
        [outcome] = await world.service.sync()
        assert outcome.report is not None and outcome.report.ok, outcome.report.error
        code, word = QUARANTINE_CASES[case]
        [entry] = await world.service.store.quarantined(account.id)
        assert entry.bling_id == victim.id
        assert (entry.reason_code, word in entry.reason) == (code, True), entry.reason
        [run] = await world.service.store.runs(account.id, limit=1)
        assert (run.outcome, run.error_code) == (RunOutcome.PARTIAL, RunCode.NOTES_QUARANTINED)
        assert run.error is not None and word in run.error


async def test_a_run_interrupted_by_its_process_keeps_a_code(world: World) -> None:
    """A run still `running` when the next starts (its process died) is closed as interrupted,
    with its English reason and `process_stopped`; the new run is untouched."""
    account = await world.add_v3()
    store = world.service.store
    dead = await store.start_run(account.id, trigger="poll", tier="recent", window_from=world.now(),
                                 window_to=world.now())
    await world.service.sync()
    runs = {run.id: run for run in await store.runs(account.id)}
    assert runs[dead].outcome is RunOutcome.INTERRUPTED and runs[dead].error_code == RunCode.PROCESS_STOPPED
    assert runs[dead].error and "later run started" in runs[dead].error
    assert [(r.outcome, r.error_code) for i, r in runs.items() if i != dead] == [(RunOutcome.OK, None)]


async def test_one_broken_account_does_not_stop_the_others(world: World) -> None:
    good = await world.add_v3(0)
    broken = await world.add_v3(1)
    # Its stored credentials sealed for another account: unreadable, as after a wrong key.
    from sqlalchemy import text

    async with world.service.store.engine.begin() as conn:
        blob = (await conn.execute(text("SELECT credentials FROM accounts WHERE id = :id"),
                                   {"id": good.id})).scalar_one()
        await conn.execute(text("UPDATE accounts SET credentials = :blob WHERE id = :id"),
                           {"blob": blob, "id": broken.id})
    outcomes = {o.account.name: o for o in await world.service.sync()}
    assert outcomes[good.name].report is not None and outcomes[good.name].report.ok
    assert await world.keys(good) == world.truth(0)
    failed = outcomes[broken.name].report
    assert failed is not None and not failed.ok and failed.error
    assert "credentials" in failed.error.lower()


async def test_the_first_sync_with_default_settings_lists_notes_waiting_for_their_danfe(
        world: World) -> None:
    account = await world.add_v3(initial_lookback_days=30)
    await world.service.sync()
    since = world.now() - timedelta(days=30)
    stale = world.now() - timedelta(hours=24)
    expected = {n.id for n in world.company().notes.values()
                if n.modelo == Modelo.NFE and n.tipo == 1 and n.situacao == NfeSituacao.AUTORIZADA
                and since <= n.emitted_at <= stale}
    assert expected, "the simulated month must hold Autorizada notes"
    assert {w.bling_id for w in await world.service.store.unimported(account.id)} == expected
    # A plain poll lists no Autorizada notes and keeps the list: two listings (Emitida DANFE,
    # Cancelada), each a page and the empty page that ends it (the client never guesses the
    # end from a short page).
    world.bling.clock.advance(60)
    before = (await world.counters())["requests"]
    [poll] = await world.service.sync()
    assert poll.report is not None and poll.report.runs[0].tier == "recent"
    assert (await world.counters())["requests"] - before == 4
    assert {w.bling_id for w in await world.service.store.unimported(account.id)} == expected
    # Printing one's DANFE imports it and takes it off the list at once.
    waiting = world.company().notes[min(expected)]
    if waiting.emitted_at >= world.now() - timedelta(days=2):
        await world.move(waiting, "print-danfe")
        world.bling.clock.advance(60)
        await world.service.sync()
        assert waiting.id not in {w.bling_id for w in await world.service.store.unimported(account.id)}


async def test_adding_an_account_with_a_wrong_secret_stores_nothing(world: World) -> None:
    from blingsync.bling.errors import BlingError

    client = world.company().clients[0]
    code = await world.bling.code(client)
    with pytest.raises(BlingError):
        await world.service.add_account("Errada", client_id=client.client_id,
                                        client_secret="not-the-secret", code=code)
    assert await world.service.store.accounts() == []


async def test_an_account_whose_check_fails_midway_is_kept_with_a_working_token(world: World) -> None:
    company = world.company()
    r = await world.http.post(f"/_sim/accounts/{company.id}/refresh-token", json={})
    creds = r.json()
    # Bling is down for the permission probes, after the refresh went through.
    r = await world.http.put("/_sim/faults", json={"spec": "5xx=1,seed=1"})
    assert r.status_code == 200, r.text
    from blingsync.service import ServiceError

    with pytest.raises(ServiceError, match="accounts check"):
        await world.service.add_account("Marca", client_id=creds["client_id"],
                                        client_secret=creds["client_secret"],
                                        refresh_token=creds["refresh_token"])
    await world.http.put("/_sim/faults", json={"spec": ""})
    account = await world.service.store.account("Marca")
    stored = await world.service.store.token_store().load(account.name)
    assert stored is not None  # whichever token Bling last gave, it is the one kept
    # And it works: the account imports.
    [outcome] = await world.service.sync()
    assert outcome.report is not None and outcome.report.ok, outcome.report.error


async def test_a_rotated_refresh_token_is_stored_before_a_later_step_fails(tmp_path: Path,
                                                                          db_url: str) -> None:
    """Bling answers the token refresh, then fails every probe: the new refresh token (the old
    one is spent) must already be in the database, or the brand would have to reconnect."""
    sim = make_sim(accounts=1, invoices=30)
    inner = httpx.ASGITransport(app=sim.app)
    down = {"on": True}

    class ProbesFail(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if down["on"] and "/Api/v3/" in request.url.path and "/oauth/" not in request.url.path:
                return httpx.Response(503, json={"error": {"type": "SERVICE_UNAVAILABLE"}})
            return await inner.handle_async_request(request)

    transport = ProbesFail()
    async with open_world(sim, transport, tmp_path, db_url) as world:
        company = world.company()
        creds = (await world.http.post(f"/_sim/accounts/{company.id}/refresh-token", json={})).json()
        from blingsync.service import ServiceError

        with pytest.raises(ServiceError, match="accounts check"):
            await world.service.add_account("Marca", client_id=creds["client_id"],
                                            client_secret=creds["client_secret"],
                                            refresh_token=creds["refresh_token"])
        stored = await world.service.store.token_store().load("Marca")
        assert stored is not None and stored.refresh_token.reveal() != creds["refresh_token"]
        down["on"] = False
        [outcome] = await world.service.sync()
        assert outcome.report is not None and outcome.report.ok, outcome.report.error


async def test_reconnect_moves_an_account_from_a_v2_key_to_oauth_and_keeps_its_orders(world: World) -> None:
    account = await world.add_v2(name="Marca")
    await world.service.sync()
    before = await world.keys(account)
    assert before == world.truth()
    # A wrong key is refused and the working one stays.
    from blingsync.bling.errors import BlingError

    with pytest.raises(BlingError):
        await world.service.reconnect("Marca", api_key="not-a-key")
    assert (await world.service.store.account("Marca")).generation.value == "v2"
    client = world.company().clients[0]
    added = await world.service.reconnect("Marca", client_id=client.client_id,
                                          client_secret=client.client_secret,
                                          code=await world.bling.code(client))
    assert added.account.id == account.id and added.account.generation.value == "v3"
    assert added.account.state is AccountState.ACTIVE and not added.missing
    world.bling.clock.advance(60)
    [outcome] = await world.service.sync()
    assert outcome.report is not None and outcome.report.ok and outcome.report.counters.created == 0
    assert await world.keys(account) == before
