"""The accounts pages and the brand's "Conectar Bling" wizard, end to end: `create_app(service)`
over `httpx.ASGITransport`, signed in through the real `/entrar` form, the service talking to the
simulator (over ASGI too) and a real database (SQLite, and PostgreSQL when reachable).

Proves: the wizard walks through the help article and checks the pasted key with Bling on the
spot (a good key connects, a wrong one stores nothing and says so, a key without Notas Fiscais
shows it as "falta" with where to tick it, and "verificar de novo" clears it once ticked); the
list and the account page show each brand's health and figures (from the database, checked
against the store), and the actions do what they say; the settings are validated with pt-BR
errors; XSS payloads in every field and in what Bling or the importer recorded come back
escaped; every POST refuses a missing or wrong CSRF token and changes nothing; the list costs a
fixed number of queries however many accounts there are. Every answer is kept and searched for
the secrets the test knows (API keys, OAuth client secrets) and for unescaped markup."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape
from sqlalchemy import event, select

from blingsync.bling.errors import V2_PERMISSION_LABELS, V3_SCOPE_LABELS
from blingsync.domain import ApiGeneration, InvoiceStatus
from blingsync.simulator.model import Modelo, NfeSituacao, V2Permission
from blingsync.store.records import (
    Account,
    AccountState,
    NewAccount,
    QuarantineEntry,
    RunOutcome,
    UnimportedNote,
    V2Credentials,
)
from blingsync.store.tables import quarantine
from blingsync.sync.reasons import QuarantineCode, RunCode, UnimportedCode
from blingsync.web import ui
from blingsync.web.app import create_app
from blingsync.web.deps import Wakeups
from blingsync.web.ui import MESSAGES_DIR, TEMPLATES_DIR, pages_accounts
from blingsync.web.ui.i18n import catalogue, t
from tests.conftest import make_sim
from tests.integration.test_import import LOOKBACK_DAYS, World, open_world
from tests.ui_support import XSS_PAYLOADS, assert_escaped, csrf_of, signed_in_client

ALL_BUT_NOTAS = ["pedidos_venda", "pedidos_venda_situacoes", "interacoes_logisticas", "nfce"]


def ui_app(world: World, wakeups: Wakeups) -> FastAPI:
    """The app as `serve` builds it; the accounts pages included here if the package does not
    include them yet."""
    app = create_app(world.service, wakeups=wakeups)
    ui.install(app)
    if not any(getattr(route, "path", "") == "/contas/nova" for route in app.routes):
        app.include_router(pages_accounts.router)
    return app


@dataclass
class Ui:
    world: World
    app: FastAPI
    http: httpx.AsyncClient
    bodies: list[str]
    secrets: set[str]
    sync_asked: list[int] = field(default_factory=list)
    token: str = ""

    @property
    def store(self) -> Any:
        return self.world.service.store

    async def page(self, path: str, status: int = 200, **params: Any) -> str:
        r = await self.http.get(path, params=params)
        assert r.status_code == status, f"{path}: {r.status_code} {r.text[:800]}"
        if not self.token and status == 200:
            self.token = csrf_of(r.text)
        return r.text

    async def post(self, path: str, data: dict[str, str] | None = None, *,
                   csrf: str | None = None, **headers: str) -> httpx.Response:
        if not self.token:
            await self.page("/contas")
        form = {"csrf_token": self.token if csrf is None else csrf, **(data or {})}
        if csrf == "":
            form.pop("csrf_token")
        return await self.http.post(path, data=form, headers=headers)

    async def v2_key(self, index: int = 0, permissions: list[str] | None = None) -> str:
        body: dict[str, Any] = {} if permissions is None else {"permissions": permissions}
        r = await self.world.http.post(f"/_sim/accounts/{self.world.company(index).id}/apikeys", json=body)
        assert r.status_code == 200, r.text
        key: str = r.json()["apikey"]
        self.secrets.add(key)
        return key

    async def connect_key(self, name: str, key: str, **options: str) -> httpx.Response:
        return await self.post("/contas/nova/chave", {"name": name, "api_key": key,
                                                      "lookback_days": str(LOOKBACK_DAYS), **options})

    async def add_v2(self, name: str = "Loja Chave", index: int = 0) -> Account:
        r = await self.connect_key(name, await self.v2_key(index))
        assert r.status_code == 200, r.text
        account: Account = await self.store.account(name)
        return account

    async def add_v3(self, index: int = 0) -> Account:
        self.secrets.add(self.world.company(index).clients[0].client_secret)
        return await self.world.add_v3(index)


@contextlib.asynccontextmanager
async def open_ui(tmp_path: Path, db_url: str, *, wakeups: Wakeups | None = None,
                  invoices: int = 60) -> AsyncIterator[Ui]:
    sim = make_sim(accounts=2, invoices=invoices)
    async with open_world(sim, httpx.ASGITransport(app=sim.app), tmp_path, db_url) as world:
        asked: list[int] = []
        app = ui_app(world, wakeups or Wakeups())
        http = await signed_in_client(app, world.service.store)
        bodies: list[str] = []

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            bodies.append(response.text)

        http.event_hooks["response"].append(keep)
        state = Ui(world, app, http, bodies, set(), asked)
        try:
            yield state
        finally:
            await http.aclose()
        leaked = {secret for secret in state.secrets for body in bodies if secret in body}
        assert not leaked, "a secret came back in a page"
        for body in bodies:
            assert_escaped(body)


@pytest.fixture
async def ui_(tmp_path: Path, db_url: str) -> AsyncIterator[Ui]:
    async with open_ui(tmp_path, db_url) as opened:
        yield opened


def text_of(html: str) -> str:
    """The page's text, tags removed and whitespace folded (entities left as they are)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def rows_of(html: str) -> int:
    return html.count('class="row-link"')


_DETAILS = re.compile(r'<details class="reason-detail">.*?</details>', re.S)


def folded(html: str) -> str:
    """The page as read before opening anything: without its collapsed technical details."""
    return _DETAILS.sub("", html)


def technical(html: str) -> str:
    """Only the collapsed technical details of the page."""
    found = _DETAILS.findall(html)
    assert all("<summary" in one and "Detalhe técnico (em inglês)" in one for one in found)
    return "".join(found)


def said(key: str, **params: object) -> str:
    """A catalogue text as the page shows it (escaped like the templates escape it)."""
    text = t(key, **params)
    assert text != key, f"{key} is not in the catalogue"
    return str(escape(text))


def only_folded_away(english: str, html: str) -> None:
    """The English text is in the page, and only inside a collapsed technical detail."""
    shown = str(escape(english))
    assert shown in technical(html), english
    assert shown not in folded(html), english


# --- the wizard -----------------------------------------------------------------------------------


async def test_the_wizard_offers_both_ways_and_walks_through_the_help_article(ui_: Ui) -> None:
    start = text_of(await ui_.page("/contas/nova"))
    assert "Conectar com Bling (recomendado)" in start and "Chave API (legado)" in start
    assert "Emitida DANFE" in start and "DANFE é impressa" in start  # orders arrive once the DANFE is printed
    assert "Indisponível neste servidor" in start  # no OAuth app configured in this world
    page = text_of(await ui_.page("/contas/nova/chave"))
    for step in ("Todas as configurações", "Usuários e usuário API", "Incluir usuário", "USUÁRIO API",
                 "Selecionar todos", "Propostas Comerciais", "Gerar", "Copiar", "Vendas",
                 "Preferências › Sistema › Usuários e usuário API".replace(" › ", " ")):
        assert step in page, step
    assert "descontinuando" in page and "Conectar com Bling em vez disso" in page
    assert "Emitida DANFE" in page


async def test_a_good_key_connects_the_brand_with_every_permission_ok(ui_: Ui) -> None:
    key = await ui_.v2_key()
    r = await ui_.connect_key("Loja Boa", key, import_nfce="on", lookback_days="45")
    assert r.status_code == 200, r.text
    assert r.text.count("checklist__item--ok") == len(V2_PERMISSION_LABELS)
    assert "checklist__item--missing" not in r.text
    assert "Conta conectada" in r.text and "Emitida DANFE" in r.text
    account = await ui_.store.account("Loja Boa")
    assert account.generation is ApiGeneration.V2 and account.state is AccountState.ACTIVE
    assert account.settings.import_nfce and not account.settings.import_authorized
    assert account.settings.initial_lookback_days == 45
    listed = await ui_.page("/contas")
    assert rows_of(listed) == 1 and "Loja Boa" in listed and 'badge--ok">ok<' in listed


async def test_a_wrong_key_says_so_in_words_and_stores_nothing(ui_: Ui) -> None:
    wrong = "0123456789abcdef" * 4 + "deadbeef"
    ui_.secrets.add(wrong)
    r = await ui_.connect_key("Loja Errada", wrong)
    assert r.status_code == 422, r.text
    page = text_of(r.text)
    assert "O Bling não aceitou esta chave API" in page and "Nada foi cadastrado" in page
    assert 'value="Loja Errada"' in r.text  # the name stays typed; the key is never shown again
    assert await ui_.store.accounts() == []
    # Said by its code (a refused v2 key): where to copy it again in Bling, in pt-BR; Bling's
    # English only inside the collapsed technical detail.
    assert said("reasons.bling.credentials_invalid_v2") in folded(r.text)
    assert "Preferências › Sistema › Usuários e usuário API" in folded(r.text)
    only_folded_away("Bling rejected the API key", r.text)


async def test_a_key_without_notas_fiscais_shows_it_missing_until_ticked_in_bling(ui_: Ui) -> None:
    key = await ui_.v2_key(permissions=ALL_BUT_NOTAS)
    r = await ui_.connect_key("Loja Sem Notas", key)
    assert r.status_code == 200, r.text
    assert "Conta salva, mas faltam permissões" in r.text
    missing = re.findall(r'<li class="checklist__item--missing">(.*?)</ol>', r.text, re.S)
    assert len(missing) == 1 and "Notas Fiscais" in missing[0]
    assert "falta" in missing[0] and "Usuários e usuário API" in missing[0]
    assert "Inclusão e edição" in missing[0]
    assert r.text.count("checklist__item--ok") == len(V2_PERMISSION_LABELS) - 1
    assert "Verificar de novo" in r.text
    account = await ui_.store.account("Loja Sem Notas")
    assert account.state is AccountState.MISSING_PERMISSIONS
    listed = await ui_.page("/contas")
    assert "permissão faltando" in listed and "Faltam permissões no Bling" in listed

    user = next(u for u in ui_.world.company().api_users if u.apikey == key)
    user.permissions = user.permissions | {V2Permission.NOTAS_FISCAIS}  # the brand ticks the box
    r = await ui_.post(f"/contas/{account.id}/verificar")
    assert r.status_code == 200, r.text
    assert "checklist__item--missing" not in r.text
    assert r.text.count("checklist__item--ok") == len(V2_PERMISSION_LABELS)
    assert (await ui_.store.account_by_id(account.id)).state is AccountState.ACTIVE


async def test_a_discontinued_api_v2_points_to_oauth_and_stores_nothing(ui_: Ui) -> None:
    key = await ui_.v2_key()
    r = await ui_.world.http.put("/_sim/settings", json={"v2_discontinued": True})
    assert r.status_code == 200, r.text
    r = await ui_.connect_key("Loja Antiga", key)
    assert r.status_code == 422, r.text
    assert "API v2 (chave API) foi descontinuada" in r.text and "Conectar com Bling" in r.text
    assert said("reasons.bling.api_discontinued") in folded(r.text)
    only_folded_away("Bling has switched off API v2", r.text)
    assert await ui_.store.accounts() == []


async def test_the_wizard_refuses_empty_or_wrong_fields_before_asking_bling(ui_: Ui) -> None:
    before = await ui_.world.counters()
    r = await ui_.post("/contas/nova/chave", {"name": "  ", "api_key": "", "lookback_days": "0"})
    assert r.status_code == 422
    page = text_of(r.text)
    assert "Informe o nome da marca." in page and "Cole a chave API gerada no Bling." in page
    assert "entre 1 e 3650" in page
    r = await ui_.post("/contas/nova/chave", {"name": "Loja", "api_key": "x" * 500, "lookback_days": "dez"})
    assert r.status_code == 422 and "Isto não parece uma chave API" in r.text
    assert (await ui_.world.counters())["by_endpoint"] == before["by_endpoint"]  # Bling was not asked
    assert await ui_.store.accounts() == []
    await ui_.add_v2("Loja Repetida")
    r = await ui_.connect_key("Loja Repetida", await ui_.v2_key())
    assert r.status_code == 409 and "Já existe uma conta chamada" in r.text


async def test_oauth_says_when_the_server_has_no_bling_app_and_gives_a_link_when_it_has(ui_: Ui) -> None:
    page = text_of(await ui_.page("/contas/nova/oauth"))
    assert "BLINGSYNC_OAUTH_CLIENT_ID" in page and "chave API" in page
    r = await ui_.post("/contas/nova/oauth", {"name": "Loja OAuth", "lookback_days": "30"})
    assert r.status_code == 503 and "Conexão pelo Bling indisponível" in r.text
    service = ui_.world.service
    client = ui_.world.company().clients[0]
    ui_.secrets.add(client.client_secret)
    service.settings = replace(service.settings, oauth_client_id=client.client_id,
                               oauth_client_secret=client.client_secret, public_url="https://sync.example")
    assert "Indisponível" not in await ui_.page("/contas/nova")
    r = await ui_.post("/contas/nova/oauth",
                       {"name": "Loja OAuth", "import_nfce": "on", "lookback_days": "30"})
    assert r.status_code == 200, r.text
    link = re.search(r'value="(https://sync\.example/oauth/bling/start\?ticket=[^"]+)"', r.text)
    assert link is not None and "Válido até" in r.text
    assert await ui_.store.accounts() == []  # the account appears once the brand authorised
    account = await ui_.add_v3(1)
    r = await ui_.post(f"/contas/{account.id}/reconectar")
    assert r.status_code == 200 and "Link de reconexão" in r.text
    assert "sync.example/oauth/bling/start" in r.text
    r = await ui_.post("/contas/nova/oauth", {"name": account.name, "lookback_days": "30"})
    assert r.status_code == 409 and "Já existe uma conta chamada" in r.text


# --- the list and the account page ----------------------------------------------------------------


async def test_actions_pause_resume_and_sync_now_with_the_figures_that_follow(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Ações")
    back = "/contas?estado=todas&pagina=1"
    r = await ui_.post(f"/contas/{account.id}/pausar", {"voltar": back})
    assert r.status_code == 303 and r.headers["location"] == back
    assert (await ui_.store.account_by_id(account.id)).state is AccountState.PAUSED
    listed = await ui_.page(back)
    assert "Loja Ações pausada" in listed and 'badge--neutral">pausada<' in listed
    assert "Loja Ações pausada" not in await ui_.page("/contas")  # a flash is shown once

    r = await ui_.post(f"/contas/{account.id}/sincronizar")
    assert r.status_code == 303 and r.headers["location"] == f"/contas/{account.id}"
    assert "retome a conta antes de sincronizar" in await ui_.page(f"/contas/{account.id}")
    assert await ui_.store.runs(account.id) == []

    r = await ui_.post(f"/contas/{account.id}/retomar", {"voltar": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == f"/contas/{account.id}"  # never off-site
    assert (await ui_.store.account_by_id(account.id)).state is AccountState.ACTIVE

    r = await ui_.post(f"/contas/{account.id}/sincronizar", {"voltar": "/contas"})
    assert r.status_code == 303  # the import ran in the background task, before the answer ended
    truth = ui_.world.truth()
    assert await ui_.store.count_orders(account_id=account.id) == len(truth) > 0
    [run, *_] = await ui_.store.runs(account.id)
    assert run.trigger == "dashboard" and run.outcome is RunOutcome.OK

    live = await ui_.page("/contas/_vivo")
    assert "<html" not in live and 'hx-swap-oob="innerHTML"' in live
    assert f'data-label="Pedidos hoje">{len(truth)}</td>' in live  # imported today (the sim's clock)
    pending = 'data-label="Entregas pendentes"><span class="cell-values"><span>{}</span></span></td>'
    assert pending.format(len(truth)) in live  # no sink yet: all pending
    detail = await ui_.page(f"/contas/{account.id}")
    assert "painel" in detail and 'badge--ok">ok<' in detail  # the run, by its trigger and outcome
    assert f'<span class="stat__value">{len(truth)}</span>' in detail
    fragment = await ui_.page(f"/contas/{account.id}/_vivo")
    assert "<html" not in fragment and 'id="account-badge" hx-swap-oob' in fragment

    # Past midnight in São Paulo (imported at 10:00; the session lives 12 h from its last use):
    ui_.world.bling.clock.advance(11 * 3600)
    await ui_.page("/contas")
    ui_.world.bling.clock.advance(3 * 3600 + 60)
    live = await ui_.page("/contas/_vivo")
    assert 'data-label="Pedidos hoje">0</td>' in live
    assert pending.format(len(truth)) in live

    page = await ui_.page("/contas")
    assert 'hx-get="/contas/_vivo?' in page and 'hx-trigger="every 10s"' in page
    assert 'aria-live="polite"' in page


def polled_digest(html: str) -> str:
    found = re.search(r"""hx-vals='\{"v": "([0-9a-f]+)"\}'""", html)
    assert found is not None, "the page polls without its digest"
    return found.group(1)


async def test_live_regions_answer_204_until_what_they_show_changes(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Ao Vivo")
    listed = await ui_.page("/contas")
    detail = await ui_.page(f"/contas/{account.id}")
    for path, html in (("/contas/_vivo", listed), (f"/contas/{account.id}/_vivo", detail)):
        r = await ui_.http.get(path, params={"v": polled_digest(html)}, headers={"HX-Request": "true"})
        assert r.status_code == 204 and r.content == b"", path  # unchanged: HTMX swaps nothing
    await ui_.store.set_account_state(account.id, AccountState.DAILY_LIMIT, "limit")
    r = await ui_.http.get("/contas/_vivo", params={"v": polled_digest(listed)})
    assert r.status_code == 200 and "limite diário" in r.text
    assert polled_digest(r.text) != polled_digest(listed)  # the next poll carries the new one
    r = await ui_.http.get(f"/contas/{account.id}/_vivo", params={"v": polled_digest(detail)})
    assert r.status_code == 200 and "limite diário" in r.text and 'id="account-live" hx-swap-oob' in r.text
    assert 'aria-live="polite"' in detail and 'id="account-live"' in detail


async def test_sync_now_goes_to_the_scheduler_when_serve_runs_one(tmp_path: Path, db_url: str) -> None:
    asked: list[int] = []
    async with open_ui(tmp_path, db_url, wakeups=Wakeups(sync=asked.append)) as ui_:
        account = await ui_.add_v2("Loja Agendada")
        asked.clear()  # connecting asked for the first import
        r = await ui_.post(f"/contas/{account.id}/sincronizar")
        assert r.status_code == 303 and asked == [account.id]
        assert await ui_.store.count_orders(account_id=account.id) == 0
        assert "Importação de Loja Agendada iniciada" in await ui_.page(f"/contas/{account.id}")


async def test_the_account_page_shows_history_notes_not_imported_and_quarantine(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Detalhe")
    now = ui_.world.now()
    await ui_.store.replace_unimported(account.id, "nfe", [UnimportedNote(
        kind="nfe", bling_id=555, number=4321, situation=InvoiceStatus.AUTHORIZED,
        issued_at=now - timedelta(days=3, hours=1), reason="Autorizada for 3 days", access_key=None)])
    await ui_.store.quarantine(account.id, QuarantineEntry(kind="nfe", bling_id=777, number=88,
                                                           reason="the XML has no <transp> element"))
    page = await ui_.page(f"/contas/{account.id}")
    text = text_of(page)
    # A note stored without a code, Autorizada: the reason waiting notes share, said once above
    # the table, and the row's own fact beside it.
    assert "4321" in text and "Há 3 dias sem DANFE" in text
    assert folded(page).count(said("reasons.unimported.waiting_for_danfe", count=1)) == 1
    assert "Esta nota foi autorizada, mas a DANFE ainda não foi impressa" in text
    assert "the XML has no &lt;transp&gt; element" in page and "88" in text
    assert "1 nota em quarentena" in text
    assert "Nenhuma importação ainda" in text
    # Rows stored without a code (before migration 0006) keep their generic pt-BR sentence,
    # and their English moves into the technical detail.
    assert said("accounts.detail.quarantine_reason") in folded(page)
    only_folded_away("the XML has no <transp> element", page)

    async def due() -> datetime:
        async with ui_.store.engine.connect() as conn:
            found: datetime = await conn.scalar(select(quarantine.c.next_attempt_at)
                                                .where(quarantine.c.bling_id == 777))
        return found if found.tzinfo else found.replace(tzinfo=UTC)

    assert await due() > now
    r = await ui_.post(f"/contas/{account.id}/quarentena", {"bling_id": "777"})
    assert r.status_code == 303 and r.headers["location"].endswith("#quarentena")
    assert await due() <= now
    assert "1 nota da quarentena será tentada de novo" in await ui_.page(f"/contas/{account.id}")
    r = await ui_.post(f"/contas/{account.id}/quarentena", {"bling_id": "999"})
    assert "Nenhuma nota da quarentena" in await ui_.page(f"/contas/{account.id}")


async def test_an_import_says_each_reason_in_portuguese_and_folds_the_english_away(ui_: Ui) -> None:
    """A real import through the page: one note whose XML Bling does not have (quarantined),
    the run partial because of it, and Autorizada notes waiting for their DANFE. Each is said
    by its stored code, specifically, with the importer's English only in the technical detail."""
    account = await ui_.add_v3()
    company = ui_.world.company()
    victim = max((n for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1
                  and n.situacao == NfeSituacao.EMITIDA_DANFE), key=lambda n: n.emitted_at)
    victim.protocolo = ""  # Bling lists it, but has no authorised XML to give
    r = await ui_.post(f"/contas/{account.id}/sincronizar")
    assert r.status_code == 303
    [held] = await ui_.store.quarantined(account.id)
    assert (held.bling_id, held.reason_code) == (victim.id, QuarantineCode.XML_MISSING)
    [run] = await ui_.store.runs(account.id)
    assert (run.outcome, run.error_code) == (RunOutcome.PARTIAL, RunCode.NOTES_QUARANTINED)
    waiting = await ui_.store.unimported(account.id)
    assert waiting and {note.reason_code for note in waiting} == {UnimportedCode.WAITING_FOR_DANFE}

    page = await ui_.page(f"/contas/{account.id}")
    assert said("reasons.quarantine.xml_missing") in folded(page)
    only_folded_away(held.reason, page)
    assert said("reasons.run.notes_quarantined", count=1) in folded(page)  # the run's own counter
    assert run.error is not None
    only_folded_away(run.error, page)
    now = ui_.world.now()
    shared = said("reasons.unimported.waiting_for_danfe", count=len(waiting))
    assert folded(page).count(shared) == 1  # said once for every waiting note, above the table
    for note in waiting:
        days = (now - note.issued_at).days
        assert said("accounts.unimported.waiting_days", count=days) in folded(page)  # each row's own
        only_folded_away(note.reason, page)
    assert "Detalhe técnico (em inglês): " not in page  # the old inline prefix is gone


async def test_a_failed_run_and_a_refused_check_say_why_by_code(ui_: Ui) -> None:
    """The brand unticks Notas Fiscais in Bling: the next import fails on it, and the account
    page and the list say so specifically, in pt-BR (where to tick it back); the list names
    every problem. Then a key Bling refuses on "verificar" is said by its code too."""
    key = await ui_.v2_key()
    r = await ui_.connect_key("Loja Falha", key)
    assert r.status_code == 200, r.text
    account = await ui_.store.account("Loja Falha")
    user = next(u for u in ui_.world.company().api_users if u.apikey == key)
    user.permissions = user.permissions - {V2Permission.NOTAS_FISCAIS}
    r = await ui_.post(f"/contas/{account.id}/sincronizar")
    assert r.status_code == 303
    [run] = await ui_.store.runs(account.id)
    assert (run.outcome, run.error_code) == (RunOutcome.FAILED, "permission_missing_v2")
    assert run.error and "lacks the permission" in run.error

    page = await ui_.page(f"/contas/{account.id}")
    reason = said("reasons.bling.permission_missing_v2")
    assert f"{said('accounts.problem.run_failed')} {reason}" in folded(page)  # what needs attention
    assert folded(page).count(reason) == 2  # and the run's line in the history
    only_folded_away(run.error, page)

    listed = await ui_.page("/contas")
    cell = re.search(r'data-label="Atenção">(.*?)</td>', listed, re.S)
    assert cell is not None
    shown = text_of(cell.group(1))
    assert shown == ("Faltam permissões no Bling. Também: A última importação falhou.")
    assert "e mais" not in listed

    await ui_.store.save_credentials(account.id, V2Credentials("f" * 72))  # revoked in Bling
    r = await ui_.post(f"/contas/{account.id}/verificar")
    assert r.status_code == 200, r.text
    assert said("reasons.bling.credentials_invalid_v2") in folded(r.text)
    only_folded_away("Bling rejected the API key", r.text)


async def test_the_history_says_each_reason_once(ui_: Ui) -> None:
    """Polls that keep failing on the same thing, then keep finishing partially: the full pt-BR
    sentence and the English are given once per reason, under the newest run with it; the other
    runs keep a few words of their own (from their counters) or a link to the run that explains
    them."""
    account = await ui_.add_v2("Loja Repetida")
    now = ui_.world.now()

    async def run(outcome: RunOutcome, code: str, error: str, quarantined: int = 0) -> int:
        made = await ui_.store.start_run(account.id, trigger="poll", tier="recent", window_from=now,
                                         window_to=now)
        if quarantined:
            await ui_.store.count_in_run(made, quarantined=quarantined)
        await ui_.store.finish_run(made, outcome=outcome, requests=3, error=error, error_code=code)
        return made

    failed = [await run(RunOutcome.FAILED, "permission_missing_v2", f"lacks the permission ({n})")
              for n in range(3)]
    for number, held in enumerate((1, 2, 1)):
        await run(RunOutcome.PARTIAL, RunCode.NOTES_QUARANTINED, f"partial run {number}", held)
    page = await ui_.page(f"/contas/{account.id}")
    shown = folded(page)
    # The newest partial run (one note held) says it in full; the older ones in a few words.
    assert shown.count(said("reasons.run.notes_quarantined", count=1)) == 1
    assert said("reasons.run.notes_quarantined", count=2) not in shown
    assert "2 notas em quarentena" in shown and shown.count("1 nota em quarentena") == 2
    # The five newest runs first; the sixth one click away.
    assert pages_accounts.RUNS_VISIBLE == 5 and said("accounts.detail.runs_more", count=1) in page
    # The newest failed run says why in full; the two before it point to it.
    assert shown.count(said("reasons.bling.permission_missing_v2")) == 1
    link = f'href="#importacao-{failed[-1]}"'
    assert shown.count(link) == 2 and f'id="importacao-{failed[-1]}"' in page
    # The English of the runs that explain, folded away; the others' is not repeated.
    only_folded_away("partial run 2", page)
    only_folded_away("lacks the permission (2)", page)
    for english in ("partial run 0", "partial run 1", "lacks the permission (0)", "lacks the permission (1)"):
        assert english not in page


async def test_rows_stored_without_a_code_still_render(ui_: Ui) -> None:
    """A failed run, a quarantined note and a note not imported from before the codes: the
    generic sentences, the English folded away, nothing broken."""
    account = await ui_.add_v2("Loja Antiga Linha")
    now = ui_.world.now()
    run = await ui_.store.start_run(account.id, trigger="poll", tier="recent", window_from=now,
                                    window_to=now)
    await ui_.store.finish_run(run, outcome=RunOutcome.FAILED, requests=2, error="HTTP 503 from Bling")
    await ui_.store.quarantine(account.id, QuarantineEntry(kind="nfe", bling_id=5, reason="odd XML"))
    await ui_.store.replace_unimported(account.id, "nfe", [UnimportedNote(
        kind="nfe", bling_id=6, number=7, situation=InvoiceStatus.REJECTED, issued_at=now,
        reason="Rejeitada by SEFAZ")])
    [stored] = await ui_.store.runs(account.id)
    assert stored.error_code is None
    page = await ui_.page(f"/contas/{account.id}")
    for key in ("accounts.detail.run_error", "accounts.detail.quarantine_reason",
                "accounts.problem.run_failed"):
        assert said(key) in folded(page), key
    assert said("accounts.unimported.other", count=1) in folded(page)
    assert said("accounts.unimported.other_short") in folded(page)
    for english in ("HTTP 503 from Bling", "odd XML", "Rejeitada by SEFAZ"):
        only_folded_away(english, page)
    listed = text_of(await ui_.page("/contas"))
    assert "A última importação falhou. Também: 1 nota em quarentena." in listed


async def test_settings_are_validated_in_portuguese_and_saved(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Config")
    before = (await ui_.store.account_by_id(account.id)).settings
    r = await ui_.post(f"/contas/{account.id}/configuracoes", {
        "lookback_days": "abc", "poll_interval_s": "5", "write_back": "on", "import_nfce": "on"})
    assert r.status_code == 422, r.text
    text = text_of(r.text)
    assert "Corrija os campos destacados." in text
    assert "Informe um número inteiro de dias entre 1 e 3650." in text
    assert "Informe um número inteiro de segundos entre 30 e 86400." in text
    assert "Contas com chave API (v2) não podem enviar rastreio ao Bling" in text
    assert 'value="abc"' in r.text  # what was typed comes back to be fixed
    assert (await ui_.store.account_by_id(account.id)).settings == before

    r = await ui_.post(f"/contas/{account.id}/configuracoes", {
        "lookback_days": "60", "poll_interval_s": "120", "import_nfce": "on", "import_authorized": "on"})
    assert r.status_code == 303 and r.headers["location"] == f"/contas/{account.id}#configuracoes"
    saved = (await ui_.store.account_by_id(account.id)).settings
    assert saved == replace(before, initial_lookback_days=60, poll_interval_s=120, import_nfce=True,
                            import_authorized=True)
    assert "Configurações de Loja Config salvas." in await ui_.page(f"/contas/{account.id}")


async def test_write_back_situation_is_checked_against_bling(ui_: Ui) -> None:
    account = await ui_.add_v3()
    situations = await (await ui_.world.service.client(account)).order_situations()
    assert situations
    chosen = situations[-1].nome
    r = await ui_.post(f"/contas/{account.id}/configuracoes", {
        "lookback_days": "30", "poll_interval_s": "60", "write_back": "on",
        "write_back_situation": "Situação Que Não Existe"})
    assert r.status_code == 422
    assert "não tem uma situação de pedido de venda chamada" in r.text and chosen in r.text
    assert not (await ui_.store.account_by_id(account.id)).settings.write_back
    r = await ui_.post(f"/contas/{account.id}/configuracoes", {
        "lookback_days": "30", "poll_interval_s": "60", "write_back": "on",
        "write_back_situation": chosen.upper()})
    assert r.status_code == 303, r.text
    saved = (await ui_.store.account_by_id(account.id)).settings
    assert saved.write_back and saved.write_back_situation == chosen  # as Bling spells it


async def test_removing_an_account_needs_its_name_typed_back(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Removível")
    page = await ui_.page(f"/contas/{account.id}/remover")
    assert "Não dá para desfazer" in page
    r = await ui_.post(f"/contas/{account.id}/remover", {"confirm": "Loja"})
    assert r.status_code == 422 and "O nome digitado não confere" in r.text
    assert (await ui_.store.account_by_id(account.id)).name == "Loja Removível"
    r = await ui_.post(f"/contas/{account.id}/remover", {"confirm": " Loja  Removível "})
    assert r.status_code == 303 and r.headers["location"] == "/contas"
    assert await ui_.store.accounts() == []
    assert "Conta Loja Removível removida" in await ui_.page("/contas")
    await ui_.page(f"/contas/{account.id}", status=404)


async def test_a_new_api_key_replaces_a_refused_one_and_a_wrong_one_changes_nothing(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Nova Chave")
    old = await ui_.store.credentials(account.id)
    wrong = "f" * 72
    ui_.secrets.add(wrong)
    r = await ui_.post(f"/contas/{account.id}/chave", {"api_key": wrong})
    assert r.status_code == 422 and "O Bling não aceitou esta chave API" in r.text
    assert "A chave atual continua cadastrada." in r.text and "Nada foi cadastrado" not in r.text
    only_folded_away("Bling rejected the API key", r.text)
    assert await ui_.store.credentials(account.id) == old
    fresh = await ui_.v2_key()
    r = await ui_.post(f"/contas/{account.id}/chave", {"api_key": fresh})
    assert r.status_code == 200 and "checklist__item--missing" not in r.text
    assert await ui_.store.credentials(account.id) == V2Credentials(fresh)


async def test_unknown_accounts_are_a_page_not_found(ui_: Ui) -> None:
    for path in ("/contas/999999", "/contas/99999999999", "/contas/0/remover", "/contas/7/_vivo"):
        await ui_.page(path, status=404)
    page = await ui_.page("/contas/424242", status=404)
    assert "Esta conta não existe" in page
    r = await ui_.post("/contas/424242/pausar")
    assert r.status_code == 404


async def test_signed_out_visitors_are_sent_to_sign_in_and_their_posts_refused(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Privada")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ui_.app),
                                 base_url="http://blingsync.test") as anonymous:
        r = await anonymous.get("/contas")
        assert r.status_code == 303 and r.headers["location"].startswith("/entrar?next=/contas")
        r = await anonymous.get("/contas/_vivo", headers={"HX-Request": "true"})
        assert r.status_code == 401 and "Loja Privada" not in r.text
        r = await anonymous.post(f"/contas/{account.id}/pausar", data={"csrf_token": ui_.token})
        assert r.status_code == 401
    assert (await ui_.store.account_by_id(account.id)).state is AccountState.ACTIVE


# --- lists of many ------------------------------------------------------------------------------------


async def add_plain(ui_: Ui, count: int, prefix: str = "Marca") -> list[Account]:
    """Accounts straight into the store (no Bling call): for the list's paging and costs."""
    made = []
    for number in range(count):
        made.append(await ui_.store.add_account(NewAccount(
            name=f"{prefix} {number:03d}", generation=ApiGeneration.V2, credentials=V2Credentials("k"),
            bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2")))
    return made


async def test_the_list_pages_and_filters(ui_: Ui) -> None:
    made = await add_plain(ui_, 60)
    for account in made[:3]:
        await ui_.store.set_account_state(account.id, AccountState.INVALID_CREDENTIALS, "Bling said no")
    page = await ui_.page("/contas")
    assert rows_of(page) == pages_accounts.PAGE_SIZE and "Página 1 de 2" in page
    assert "60 contas" in page and "3 precisam de atenção" in page
    second = await ui_.page("/contas", pagina="2")
    assert rows_of(second) == 10 and "Marca 059" in second and "Marca 000" not in second
    attention = await ui_.page("/contas", estado="atencao")
    assert rows_of(attention) == 3 and "chave inválida" in attention
    assert "Chave recusada pelo Bling" in attention  # the problem in words
    found = await ui_.page("/contas", q="marca 04")
    assert rows_of(found) == 10
    assert rows_of(await ui_.page("/contas", q="100%_")) == 0
    assert "Nenhuma conta corresponde" in await ui_.page("/contas", q="nada disso")
    assert rows_of(await ui_.page("/contas", estado="bobagem", pagina="x")) == pages_accounts.PAGE_SIZE


async def test_the_list_costs_the_same_queries_for_few_or_many_accounts(ui_: Ui) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = ui_.store.engine.sync_engine
    await add_plain(ui_, 3, "Poucas")
    await ui_.page("/contas")  # warm: the session row is touched at most once a minute
    event.listen(engine, "before_cursor_execute", count)
    try:
        await ui_.page("/contas")
        few = len(statements)
        await add_plain(ui_, 57, "Muitas")
        statements.clear()
        await ui_.page("/contas")
        many = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert many == few, f"{few} queries for 3 accounts, {many} for 60"
    assert many <= 15


# --- XSS and CSRF ---------------------------------------------------------------------------------


async def test_xss_in_every_field_and_every_recorded_text_comes_back_escaped(ui_: Ui) -> None:
    accounts: list[Account] = []
    for payload in XSS_PAYLOADS[:3]:
        r = await ui_.connect_key(payload, await ui_.v2_key())
        assert r.status_code == 200, r.text
        assert "&lt;" in r.text or "&#34;" in r.text or "&gt;" in r.text
        accounts.append(await ui_.store.account(" ".join(payload.split())))
    target = accounts[0]
    payload = XSS_PAYLOADS[0]
    await ui_.store.set_account_state(target.id, AccountState.NEEDS_REAUTH, payload)
    run = await ui_.store.start_run(target.id, trigger=payload, tier=payload, window_from=ui_.world.now(),
                                    window_to=ui_.world.now())
    await ui_.store.finish_run(run, outcome=RunOutcome.FAILED, requests=1, error=XSS_PAYLOADS[1])
    await ui_.store.quarantine(target.id, QuarantineEntry(kind="nfe", bling_id=1, reason=XSS_PAYLOADS[2]))
    await ui_.store.replace_unimported(target.id, "nfe", [UnimportedNote(
        kind="nfe", bling_id=2, number=3, situation=InvoiceStatus.REJECTED, issued_at=ui_.world.now(),
        reason=XSS_PAYLOADS[1])])
    pages = [await ui_.page("/contas"), await ui_.page("/contas/_vivo"),
             await ui_.page(f"/contas/{target.id}"), await ui_.page(f"/contas/{target.id}/_vivo"),
             await ui_.page(f"/contas/{target.id}/remover")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[2]  # the name, the reason, the trigger
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[2]  # the run's error, the note's reason
    assert "&lt;svg onload=alert(1)&gt;" in pages[2]  # the quarantine's reason
    for payload in XSS_PAYLOADS:
        pages.append(await ui_.page("/contas", q=payload, estado=payload, pagina=payload))
        r = await ui_.post(f"/contas/{target.id}/configuracoes", {
            "lookback_days": payload, "poll_interval_s": payload, "write_back_situation": payload})
        assert r.status_code == 422
        r = await ui_.post(f"/contas/{target.id}/remover", {"confirm": payload + " não"})
        assert r.status_code == 422
        r = await ui_.post("/contas/nova/chave", {"name": payload, "api_key": "", "lookback_days": payload})
        assert r.status_code == 422
        r = await ui_.post(f"/contas/{target.id}/pausar", {"voltar": payload})
        assert r.status_code == 303 and r.headers["location"] == f"/contas/{target.id}"
    for html in pages + ui_.bodies:
        assert_escaped(html)
    assert len(await ui_.store.accounts()) == 3


async def test_every_post_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing(ui_: Ui) -> None:
    account = await ui_.add_v2("Loja Protegida")
    v2_key = await ui_.v2_key()
    before = await ui_.store.account_by_id(account.id)
    await ui_.store.quarantine(account.id, QuarantineEntry(kind="nfe", bling_id=9, reason="x"))
    held = await ui_.store.quarantined(account.id)
    routes: dict[str, dict[str, str]] = {
        "/contas/nova/chave": {"name": "Loja Forjada", "api_key": v2_key, "lookback_days": "30"},
        "/contas/nova/oauth": {"name": "Loja Forjada", "lookback_days": "30"},
        f"/contas/{account.id}/sincronizar": {},
        f"/contas/{account.id}/pausar": {},
        f"/contas/{account.id}/retomar": {},
        f"/contas/{account.id}/verificar": {},
        f"/contas/{account.id}/configuracoes": {"lookback_days": "9", "poll_interval_s": "999"},
        f"/contas/{account.id}/reconectar": {},
        f"/contas/{account.id}/chave": {"api_key": v2_key},
        f"/contas/{account.id}/quarentena": {"bling_id": "todas"},
        f"/contas/{account.id}/remover": {"confirm": "Loja Protegida"},
    }
    posted = {getattr(route, "path", "") for route in pages_accounts.router.routes
              if "POST" in getattr(route, "methods", ())}
    assert posted == {re.sub(r"/contas/\d+", "/contas/{account_id:int}", path) for path in routes}
    for path, data in routes.items():
        for csrf in ("", "forjado-" + ui_.token[:8], ui_.token.upper() if ui_.token != ui_.token.upper()
                     else ui_.token.lower()):
            r = await ui_.post(path, data, csrf=csrf)
            assert r.status_code == 403, f"{path} with {csrf!r}: {r.status_code}"
        r = await ui_.post(path, data, Origin="https://evil.example")  # the right token, another site
        assert r.status_code == 403, path
    assert [a.name for a in await ui_.store.accounts()] == ["Loja Protegida"]
    after = await ui_.store.account_by_id(account.id)
    assert (after.state, after.settings) == (before.state, before.settings)
    assert await ui_.store.quarantined(account.id) == held
    assert await ui_.store.runs(account.id) == []
    # The HTMX way (the token in a header) passes.
    r = await ui_.http.post(f"/contas/{account.id}/pausar", headers={"X-CSRF-Token": ui_.token})
    assert r.status_code == 303
    assert (await ui_.store.account_by_id(account.id)).state is AccountState.PAUSED


# --- the catalogue ------------------------------------------------------------------------------------


def test_every_text_the_pages_use_is_in_the_catalogue() -> None:
    known = catalogue()
    used: set[str] = set()
    sources = [*(TEMPLATES_DIR / "accounts").glob("*.html"), Path(pages_accounts.__file__)]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", text))
    used |= {f"accounts.badge.{s.value}" for s in AccountState}
    used |= {f"accounts.state_help.{s.value}" for s in AccountState}
    used |= {f"accounts.filter.{value}" for value in pages_accounts.STATE_FILTERS}
    used |= {f"accounts.run.outcome.{o.value}" for o in RunOutcome}
    used |= {f"accounts.run.short.{code}" for code in pages_accounts.RUN_SHORT}
    used |= {f"accounts.problem.run_{o}" for o in ("failed", "interrupted")}
    used |= {f"accounts.problem_short.{s.value}" for s in pages_accounts.ATTENTION_STATES}
    used |= {f"accounts.problem_short.{key}"
             for key in ("run_failed", "run_interrupted", "dead", "quarantined")}
    used |= {f"accounts.perm.v2.path.{r}" for r in V2_PERMISSION_LABELS}
    used |= {f"accounts.perm.v3.path.{r}" for r in V3_SCOPE_LABELS}
    used |= {f"accounts.key.step{n}{suffix}" for n in range(1, 8) for suffix in ("", "_title")}
    used |= {"accounts.key.step2_path", "accounts.key.step5_path"}
    used |= {"accounts.list.api_v2", "accounts.list.api_v3"}
    used |= {f"accounts.trigger.{name}" for name in ("poll", "manual", "webhook", "api", "demo", "dashboard")}
    missing = sorted(key for key in used if key not in known)
    assert not missing, missing
    own = json.loads((MESSAGES_DIR / "pt_BR.accounts.json").read_text(encoding="utf-8"))
    assert set(own) == {"accounts"}  # one area, one prefix: no clash with the other catalogues


async def test_a_check_while_bling_is_down_says_to_try_again_not_that_it_retries_alone(ui_: Ui) -> None:
    """A stored run's "Bling is down" says blingsync retries by itself (it does: the next poll);
    the answer to "Verificar permissões" must not, as nothing repeats a check the operator asked
    for: it says to try again in a few minutes."""
    account = await ui_.add_v2("Loja Fora do Ar")
    assert (await ui_.world.http.put("/_sim/faults", json={"spec": "5xx=1.0"})).status_code == 200
    try:
        r = await ui_.post(f"/contas/{account.id}/verificar")
    finally:
        await ui_.world.http.put("/_sim/faults", json={"spec": ""})
    assert r.status_code == 502, r.text
    assert said("reasons.bling_now.bling_unavailable") in folded(r.text)
    assert said("reasons.bling.bling_unavailable") not in folded(r.text)
    assert "sozinho" not in folded(r.text)
