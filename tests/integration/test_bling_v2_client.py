"""The v2 client (API key) against the simulator's /Api/v2 over ASGI: the same notes as v3 field
by field, v2's own situation codes (7 is Emitida DANFE, 6 Autorizada), pages until cod 14,
XML through the link remembered from the listing, sales orders and their situations, the
error tree, the permission probes, what only v3 can do, and the key kept out of every error."""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from blingsync.bling.auth import MemoryTokenStore, OAuthApp, TokenManager
from blingsync.bling.base import LISTING_SPAN, periods
from blingsync.bling.client import connect_v2, connect_v3
from blingsync.bling.errors import (
    V2_PERMISSION_LABELS,
    ApiDiscontinued,
    BlingError,
    BlingUnavailable,
    CredentialsInvalid,
    NeedsApiV3,
    NotFound,
    PermissionMissing,
)
from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.bling.models import NoteKind, NoteRef, NoteSummary, NoteType, SalesOrderSummary
from blingsync.bling.retry import RetryPolicy
from blingsync.bling.secrets import RedactingFilter, Secret
from blingsync.bling.v2 import V2Client
from blingsync.bling.v3 import V3Client
from blingsync.bling.writes import TrackingChange
from blingsync.domain import ApiGeneration, InvoiceStatus
from blingsync.simulator.app import Simulator
from blingsync.simulator.faults import FaultSpec
from blingsync.simulator.model import (
    RECOMMENDED_V2_PERMISSIONS,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    SalesOrder,
    V2Permission,
)
from tests.conftest import ANCHOR, Bling, make_sim

V2_BASE = "http://bling.test/Api/v2"
V3_BASE = "http://bling.test/Api/v3"
WINDOW = (ANCHOR - timedelta(days=200), ANCHOR + timedelta(days=1))
ORDERS_WINDOW = (ANCHOR - timedelta(days=30), ANCHOR + timedelta(days=1))
FAST = LimiterSettings(per_second=1000)
"""No pacing to speak of: the simulator's limits are off (`make_sim`), so nothing is refused."""
QUICK_RETRIES = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)


# --- set-up --------------------------------------------------------------------------------


@dataclass
class Wire:
    """Every request the client's `httpx.AsyncClient` sent, in order."""

    requests: list[httpx.Request] = field(default_factory=list)

    async def hook(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def __len__(self) -> int:
        return len(self.requests)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    @staticmethod
    def filters(request: httpx.Request) -> str:
        values = parse_qs(urlsplit(str(request.url)).query).get("filters", [])
        assert len(values) <= 1
        return values[0] if values else ""


@asynccontextmanager
async def v2_client(
    sim: Simulator, *, key: str | None = None, policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[tuple[V2Client, Wire]]:
    wire = Wire()
    apikey = key if key is not None else sim.state.world.companies[0].api_users[0].apikey
    async with httpx.AsyncClient(transport=transport or httpx.ASGITransport(app=sim.app),
                                 base_url=V2_BASE, event_hooks={"request": [wire.hook]}) as http:
        client = connect_v2("acme", Secret(apikey), http, LimiterRegistry(settings=FAST),
                            policy=policy or QUICK_RETRIES)
        assert isinstance(client, V2Client)
        yield client, wire


@asynccontextmanager
async def v3_client(sim: Simulator) -> AsyncIterator[V3Client]:
    """Set up as in test_bling_v3_client, with the fast limiter."""
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=V3_BASE) as http, \
            httpx.AsyncClient(transport=transport, base_url="http://bling.test") as raw:
        bling = Bling(sim, raw)
        oauth = bling.company().clients[0]
        app = OAuthApp(oauth.client_id, Secret(oauth.client_secret), V3_BASE)
        registry = LimiterRegistry(settings=FAST)
        tokens = TokenManager("acme", app, MemoryTokenStore(), http, budget=registry.ip_guard)
        await tokens.exchange_code(await bling.code(oauth))
        client = connect_v3("acme", tokens, http, registry, policy=QUICK_RETRIES)
        assert isinstance(client, V3Client)
        yield client


@pytest.fixture
def sim() -> Simulator:
    """One account with more than 100 Emitida DANFE saída NF-e in the window (two pages)."""
    return make_sim(accounts=1, invoices=300)


def company(sim: Simulator) -> Company:
    return sim.state.world.companies[0]


def truth(sim: Simulator, kind: NoteKind, situacao: NfeSituacao,
          tipo: NoteType | None = NoteType.SAIDA) -> dict[int, Note]:
    """The simulator's notes of `kind` in `situacao` emitted in WINDOW (NFC-e: any tipo)."""
    modelo = Modelo.NFE if kind is NoteKind.NFE else Modelo.NFCE
    wanted_tipo = None if kind is NoteKind.NFCE or tipo is None else (
        1 if tipo is NoteType.SAIDA else 0)
    return {
        n.id: n for n in company(sim).notes.values()
        if n.modelo == modelo and n.situacao == situacao
        and (wanted_tipo is None or n.tipo == wanted_tipo)
        and WINDOW[0] <= n.emitted_at <= WINDOW[1]
    }


async def notes_of(client: V2Client | V3Client, status: InvoiceStatus, *,
                   kind: NoteKind = NoteKind.NFE,
                   tipo: NoteType = NoteType.SAIDA) -> list[NoteSummary]:
    return [n async for n in client.iter_notes(status, issued_from=WINDOW[0],
                                               issued_to=WINDOW[1], kind=kind, tipo=tipo)]


def orders_changed_in(sim: Simulator, start: datetime, end: datetime) -> dict[int, SalesOrder]:
    return {o.numero: o for o in company(sim).orders.values() if start <= o.altered_at <= end}


def situation_names(sim: Simulator) -> dict[int, str]:
    return {s.id: s.nome for s in company(sim).order_situations}


def assert_no_key(err: BaseException, key: str) -> None:
    """Neither the key nor its URL-encoded forms anywhere the error can be shown or logged."""
    texts = [str(err), repr(err), *map(str, err.args), *map(repr, vars(err).values())]
    for text in texts:
        assert key not in text, text
    assert err.__cause__ is None


# --- notes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [NoteKind.NFE, NoteKind.NFCE])
async def test_v2_and_v3_read_the_same_danfe_notes_field_by_field(
    sim: Simulator, kind: NoteKind
) -> None:
    async with v2_client(sim) as (v2, _), v3_client(sim) as v3:
        through_v2 = await notes_of(v2, InvoiceStatus.DANFE_PRINTED, kind=kind)
        through_v3 = await notes_of(v3, InvoiceStatus.DANFE_PRINTED, kind=kind)

    expected = truth(sim, kind, NfeSituacao.EMITIDA_DANFE)
    assert expected, "the world must hold notes of this kind for the test to mean anything"
    ids = [n.bling_id for n in through_v2]
    assert len(ids) == len(set(ids)), "a note was listed twice"
    assert set(ids) == set(expected)
    assert {n.generation for n in through_v2} == {ApiGeneration.V2}

    by_id = {n.bling_id: n for n in through_v3}
    assert set(by_id) == set(ids)
    for note in through_v2:
        assert note.model_copy(update={"generation": ApiGeneration.V3}) == by_id[note.bling_id]

    for note in through_v2:
        sim_note = expected[note.bling_id]
        assert (note.kind, note.tipo, note.status) == (kind, NoteType.SAIDA,
                                                        InvoiceStatus.DANFE_PRINTED)
        assert (note.numero, note.serie, note.chave) == (sim_note.numero, sim_note.serie,
                                                         sim_note.chave)
        assert note.issued_at == sim_note.emitted_at


async def test_danfe_printed_is_v2_code_7_and_authorized_code_6(sim: Simulator) -> None:
    """The trap: v3 calls Emitida DANFE 6, v2 calls it 7 and uses 6 for Autorizada."""
    async with v2_client(sim) as (v2, wire):
        printed = await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        printed_filters = [Wire.filters(r) for r in wire.requests]
        del wire.requests[:]
        authorized = await notes_of(v2, InvoiceStatus.AUTHORIZED)
        authorized_filters = [Wire.filters(r) for r in wire.requests]

    assert printed_filters and authorized_filters
    for text in printed_filters:
        assert re.findall(r"situacao\[(\d+)\]", text) == ["7"], text
        assert "situacao[6]" not in text
        assert "tipo[S]" in text
    for text in authorized_filters:
        assert re.findall(r"situacao\[(\d+)\]", text) == ["6"], text
    assert {n.bling_id for n in printed} == set(truth(sim, NoteKind.NFE, NfeSituacao.EMITIDA_DANFE))
    assert {n.bling_id for n in authorized} == set(truth(sim, NoteKind.NFE, NfeSituacao.AUTORIZADA))
    assert {n.status for n in authorized} == {InvoiceStatus.AUTHORIZED}


async def test_entradas_are_asked_for_as_tipo_e(sim: Simulator) -> None:
    async with v2_client(sim) as (v2, wire):
        entradas = await notes_of(v2, InvoiceStatus.DANFE_PRINTED, tipo=NoteType.ENTRADA)
    assert all("tipo[E]" in Wire.filters(r) for r in wire.requests)
    expected = truth(sim, NoteKind.NFE, NfeSituacao.EMITIDA_DANFE, NoteType.ENTRADA)
    assert expected
    assert sorted(n.bling_id for n in entradas) == sorted(expected)
    assert {n.tipo for n in entradas} == {NoteType.ENTRADA}


async def test_pages_are_read_until_cod_14() -> None:
    """Every period of the window (a month at most) is paged until its cod-14 page."""
    sim = make_sim(accounts=1, invoices=600)  # the last month alone holds over 100 notes
    expected = truth(sim, NoteKind.NFE, NfeSituacao.EMITIDA_DANFE)
    cut = periods(*WINDOW, span=LISTING_SPAN)
    per_period = [sum(start <= n.emitted_at <= end for n in expected.values())
                  for start, end in cut]
    assert sum(per_period) == len(expected)
    assert max(per_period) > 100, "needs a period with more than one page of notes"
    pages = [math.ceil(count / 100) for count in per_period]
    async with v2_client(sim) as (v2, wire):
        notes = await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
    assert sorted(n.bling_id for n in notes) == sorted(expected)
    requests = sum(p + 1 for p in pages)
    assert len(wire) == requests == v2.stats.requests
    assert wire.paths() == [f"/Api/v2/notasfiscais/page={p}/json/"
                            for count in pages for p in range(1, count + 2)]
    assert v2.stats.by_status == {200: requests}  # the cod-14 pages came with HTTP 200


async def test_get_note_by_numero_and_serie(sim: Simulator) -> None:
    async with v2_client(sim) as (v2, wire):
        listed = await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        nfce = await notes_of(v2, InvoiceStatus.DANFE_PRINTED, kind=NoteKind.NFCE)
        for summary in [*listed[:3], listed[-1], nfce[0]]:
            detail = await v2.get_note(summary.ref)
            assert detail.summary == summary
            assert detail.xml_url is not None

        numeros = {n.numero for n in company(sim).notes.values()}
        missing = max(numeros) + 1000
        with pytest.raises(NotFound):
            await v2.get_note(NoteRef(numero=missing, serie=1))

        # Same número and série, another Bling id: not the note asked for.
        ref = listed[0].ref.model_copy(update={"bling_id": listed[0].bling_id + 1})
        with pytest.raises(NotFound):
            await v2.get_note(ref)

        sent = len(wire)
        with pytest.raises(ValueError, match="número"):
            await v2.get_note(NoteRef(bling_id=listed[0].bling_id, serie=listed[0].serie,
                                      chave=listed[0].chave))
        assert len(wire) == sent, "a reference v2 cannot use must not cost a request"


async def test_xml_after_listing_is_one_request_through_the_remembered_link(
    sim: Simulator,
) -> None:
    async with v2_client(sim) as (v2, wire):
        listed = await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        for summary in (listed[0], listed[-1]):
            before = len(wire)
            xml = await v2.get_note_xml(summary)
            assert len(wire) == before + 1
            fetched = wire.requests[-1]
            assert fetched.url.path == "/relatorios/nfe.xml.php"
            assert "apikey" not in str(fetched.url), "the signed link needs no key"
            assert xml.startswith(b"<?xml")
            assert summary.chave is not None and summary.chave.encode() in xml


async def test_xml_of_a_note_never_listed_fetches_its_detail_first(sim: Simulator) -> None:
    note = next(iter(truth(sim, NoteKind.NFE, NfeSituacao.EMITIDA_DANFE).values()))
    ref = NoteRef(kind=NoteKind.NFE, bling_id=note.id, numero=note.numero, serie=note.serie)
    async with v2_client(sim) as (v2, wire):
        xml = await v2.get_note_xml(ref)
        assert wire.paths() == [f"/Api/v2/notafiscal/{note.numero}/{note.serie}/json/",
                                "/relatorios/nfe.xml.php"]
        assert xml.startswith(b"<?xml") and note.chave.encode() in xml

        # Now the link is known: the same note again costs one request.
        assert await v2.get_note_xml(ref) == xml
        assert len(wire) == 3

    # No Bling id to look a remembered link up by: the detail again, then the link.
    async with v2_client(sim) as (v2, wire):
        bare = NoteRef(kind=NoteKind.NFE, numero=note.numero, serie=note.serie)
        assert await v2.get_note_xml(bare) == xml
        assert len(wire) == 2


# --- orders --------------------------------------------------------------------------------


async def orders_of(v2: V2Client, **kw: Any) -> list[SalesOrderSummary]:
    return [o async for o in v2.iter_orders(changed_from=ORDERS_WINDOW[0],
                                            changed_to=ORDERS_WINDOW[1], **kw)]


async def test_orders_altered_in_the_window(sim: Simulator) -> None:
    expected = orders_changed_in(sim, *ORDERS_WINDOW)
    assert 100 < len(expected) < len(company(sim).orders), "two pages, and some left out"
    names = situation_names(sim)
    async with v2_client(sim) as (v2, _):
        orders = await orders_of(v2)
    numeros = [o.numero for o in orders]
    assert len(numeros) == len(set(numeros))
    assert set(numeros) == set(expected)
    for order in orders:
        sim_order = expected[order.numero]
        assert order.generation is ApiGeneration.V2
        assert order.total == sim_order.total
        assert order.situacao.name == names[sim_order.situacao_id]


async def test_orders_in_chosen_situations(sim: Simulator) -> None:
    in_window = orders_changed_in(sim, *ORDERS_WINDOW)
    counts: dict[int, int] = {}
    for o in in_window.values():
        counts[o.situacao_id] = counts.get(o.situacao_id, 0) + 1
    a, b = sorted(counts, key=lambda s: -counts[s])[:2]
    names = situation_names(sim)
    async with v2_client(sim) as (v2, wire):
        orders = await orders_of(v2, situation_ids=[a, b])
    numeros = [o.numero for o in orders]
    assert len(numeros) == len(set(numeros))
    assert set(numeros) == {n for n, o in in_window.items() if o.situacao_id in (a, b)}
    assert {o.situacao.name for o in orders} == {names[a], names[b]}
    asked = {s for r in wire.requests for s in re.findall(r"idSituacao\[(\d+)\]", Wire.filters(r))}
    assert asked == {str(a), str(b)}


async def test_get_order_and_change_its_situation(sim: Simulator) -> None:
    names = situation_names(sim)
    async with v2_client(sim) as (v2, wire):
        situations = await v2.order_situations()
        assert [(s.id, s.nome) for s in situations] == list(names.items())

        orders = await orders_of(v2)
        summary = orders[0]
        detail = await v2.get_order(summary.ref)
        assert detail.summary == summary

        sim_order = next(o for o in company(sim).orders.values() if o.numero == summary.numero)
        others = {o.id: o.situacao_id for o in company(sim).orders.values() if o is not sim_order}
        new_id = next(s.id for s in situations if s.id != sim_order.situacao_id)
        await v2.change_order_situation(summary.ref, new_id)
        assert wire.requests[-1].method == "PUT"
        assert sim_order.situacao_id == new_id
        assert {o.id: o.situacao_id for o in company(sim).orders.values()
                if o is not sim_order} == others
        assert (await v2.get_order(summary.ref)).summary.situacao.name == names[new_id]

        await v2.change_order_situation(summary.ref, new_id)  # twice: harmless
        assert sim_order.situacao_id == new_id

        missing = max(o.numero for o in company(sim).orders.values()) + 1000
        with pytest.raises(NotFound):
            await v2.get_order(summary.ref.model_copy(update={"numero": missing}))
        with pytest.raises(NotFound):
            await v2.change_order_situation(
                summary.ref.model_copy(update={"numero": missing}), new_id)


# --- errors --------------------------------------------------------------------------------


async def test_wrong_key_is_credentials_invalid_and_never_shown(sim: Simulator) -> None:
    wrong = secrets.token_hex(36)
    async with v2_client(sim, key=wrong) as (v2, wire):
        with pytest.raises(CredentialsInvalid) as caught:
            await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        assert len(wire) == 1, "a rejected key is not retried"
        with pytest.raises(CredentialsInvalid):
            await v2.check_permissions()  # not reported as five missing permissions
    assert caught.value.api is ApiGeneration.V2
    assert_no_key(caught.value, wrong)


async def test_discontinued_v2_is_api_discontinued(sim: Simulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://bling.test") as admin:
        answer = await admin.put("/_sim/settings", json={"v2_discontinued": True})
        assert answer.status_code == 200 and sim.state.v2_discontinued
    async with v2_client(sim) as (v2, wire):
        with pytest.raises(ApiDiscontinued):
            await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        with pytest.raises(ApiDiscontinued):
            await v2.order_situations()
        with pytest.raises(ApiDiscontinued):
            await v2.check_permissions()
        assert len(wire) == 3, "not retried"


async def test_listing_without_notas_fiscais_is_permission_missing(sim: Simulator) -> None:
    user = company(sim).api_users[0]
    user.permissions = frozenset(RECOMMENDED_V2_PERMISSIONS - {V2Permission.NOTAS_FISCAIS})
    async with v2_client(sim) as (v2, _):
        with pytest.raises(PermissionMissing) as caught:
            await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        assert caught.value.label == "Notas Fiscais"
        assert caught.value.resource == "nfe"
        # The NFC-e box is another one, still ticked.
        assert await notes_of(v2, InvoiceStatus.DANFE_PRINTED, kind=NoteKind.NFCE)


# --- permission probes -----------------------------------------------------------------------


def order_snapshot(sim: Simulator) -> dict[int, tuple[int, int, datetime]]:
    return {o.id: (o.numero, o.situacao_id, o.altered_at) for o in company(sim).orders.values()}


async def test_check_permissions_names_the_missing_boxes_and_writes_nothing(
    sim: Simulator,
) -> None:
    user = company(sim).api_users[0]
    assert user.permissions == RECOMMENDED_V2_PERMISSIONS
    before = order_snapshot(sim)
    async with v2_client(sim) as (v2, wire):
        checks = await v2.check_permissions()
        assert [c.resource for c in checks] == list(V2_PERMISSION_LABELS)
        assert all(c.granted for c in checks)
        assert [c.label for c in checks] == list(V2_PERMISSION_LABELS.values())
        assert len(wire) == 5

        user.permissions = frozenset(RECOMMENDED_V2_PERMISSIONS - {
            V2Permission.NOTAS_FISCAIS, V2Permission.PEDIDOS_VENDA_SITUACOES})
        checks = await v2.check_permissions()
    assert {c.resource for c in checks if not c.granted} == {"nfe", "situacoes"}
    assert {c.resource: c.label for c in checks} == dict(V2_PERMISSION_LABELS)
    assert order_snapshot(sim) == before, "a permission probe changed an order"


# --- what v2 cannot do ------------------------------------------------------------------------


async def test_v3_only_features_raise_needs_api_v3_without_a_request(sim: Simulator) -> None:
    change = TrackingChange(code="AA123456789BR")
    async with v2_client(sim) as (v2, wire):
        with pytest.raises(NeedsApiV3):
            await v2.company()
        with pytest.raises(NeedsApiV3):
            await v2.create_logistics_object(change, sales_order_id=1)
        with pytest.raises(NeedsApiV3):
            await v2.update_logistics_object(1, change)
        with pytest.raises(NeedsApiV3) as caught:
            await v2.get_logistics_object(1)
        assert v2.stats.requests == 0 and len(wire) == 0
    assert caught.value.api is ApiGeneration.V2


# --- the key stays secret --------------------------------------------------------------------


async def test_5xx_every_time_gives_up_without_showing_the_key(sim: Simulator) -> None:
    key = company(sim).api_users[0].apikey
    sim.state.faults.configure(FaultSpec.parse("5xx=1,seed=1"))
    async with v2_client(sim, policy=QUICK_RETRIES) as (v2, wire):
        with pytest.raises(BlingUnavailable) as caught:
            await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        assert len(wire) == 2 and v2.stats.retries == 1
        assert key in str(wire.requests[0].url)  # it was in the URL: the test means something
    assert caught.value.retriable
    assert_no_key(caught.value, key)


class Leaky(httpx.AsyncBaseTransport):
    """A proxy that echoes the request URL (with its `apikey`) back in its failures."""

    def __init__(self, how: str) -> None:
        self.how = how

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if self.how == "raise":
            raise httpx.ConnectError(f"cannot reach {url}", request=request)
        if self.how == "html":
            return httpx.Response(502, text=f"<html>Bad gateway for {url}</html>")
        return httpx.Response(400, json={"retorno": {"erros": [{"erro": {
            "cod": 10, "msg": f"Filtro invalido na chamada {url}"}}]}})


@pytest.mark.parametrize("how", ["raise", "html", "v2-error"])
async def test_errors_that_echo_the_url_do_not_show_the_key(
    sim: Simulator, how: str, caplog: pytest.LogCaptureFixture,
) -> None:
    key = company(sim).api_users[0].apikey
    caplog.set_level(logging.DEBUG)
    async with v2_client(sim, transport=Leaky(how)) as (v2, wire):
        with pytest.raises(BlingError) as caught:
            await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        assert key in str(wire.requests[0].url)
    assert_no_key(caught.value, key)
    # Whatever was logged (httpx logs each request's full URL at INFO) is clean once through
    # the project's log filter.
    redacting = RedactingFilter()
    for record in caplog.records:
        redacting.filter(record)
        assert key not in record.getMessage()


async def test_listing_logs_nothing_with_the_key_once_filtered(
    sim: Simulator, caplog: pytest.LogCaptureFixture,
) -> None:
    key = company(sim).api_users[0].apikey
    caplog.set_level(logging.DEBUG)
    async with v2_client(sim) as (v2, _):
        await notes_of(v2, InvoiceStatus.DANFE_PRINTED)
        await v2.get_note_xml((await notes_of(v2, InvoiceStatus.AUTHORIZED))[0])
    assert not any(key in r.getMessage() for r in caplog.records
                   if r.name.startswith("blingsync")), "blingsync itself logged the key"
    redacting = RedactingFilter()
    for record in caplog.records:
        redacting.filter(record)
        assert key not in record.getMessage()
