"""The OAuth connect flow (`blingsync.web.oauth`) over ASGI: our app and the simulator each behind
an `httpx.ASGITransport`, a "browser" that is an httpx client with its own cookie jar following
the redirects by hand, and a real database (SQLite, and PostgreSQL when reachable, via `db_url`).

What a browser does is done here request by request, so each binding can be broken on purpose:
the ticket spent twice, the state replayed, sent from another browser or without the cookie,
forged, expired; the user refusing; Bling refusing or unreachable; a reconnect keeping orders.
The simulator's clock is the service's clock, so expiries are moved, not waited for."""
# ruff: noqa: F811  (fixtures imported from store_fixtures are "redefined" as parameters)

from __future__ import annotations

import contextlib
import html
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.cookiejar import Cookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.config import Settings
from blingsync.service import CodeNotExchanged, Service
from blingsync.simulator.app import Simulator
from blingsync.simulator.model import Company
from blingsync.store import AccountExists, AccountNotFound, CredentialsUnreadable
from blingsync.store.records import AccountSettings, AccountState, V3Credentials
from blingsync.store.tables import accounts, oauth_states
from blingsync.web.app import create_app
from blingsync.web.deps import Wakeups
from blingsync.web.oauth import ConnectUnavailable, authorize_url, connect_link
from tests.conftest import make_sim
from tests.integration.store_fixtures import db_url, pg_url  # noqa: F401  (fixtures used by name)

PUBLIC = "http://blingsync.test"
BLING = "http://bling.test"
CALLBACK = f"{PUBLIC}/oauth/bling/callback"


class Network(httpx.AsyncBaseTransport):
    """The service's way to Bling: the simulator over ASGI, or, while `down`, silence (every
    request times out waiting for Bling's answer, which a code exchange never retries)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ReadTimeout("timed out", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class World:
    sim: Simulator
    service: Service
    network: Network
    app: Any
    synced: list[int] = field(default_factory=list)

    def company(self, index: int = 0) -> Company:
        return self.sim.state.world.companies[index]

    def advance(self, seconds: float) -> None:
        clock = self.sim.state.clock
        clock.advance(seconds)  # type: ignore[attr-defined]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.sim.state.clock.time(), UTC)

    @contextlib.asynccontextmanager
    async def browser(self) -> AsyncIterator[Browser]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC) as ours, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=self.sim.app), base_url=BLING) as bling:
            yield Browser(ours, bling)

    async def link(self, name: str, **kw: Any) -> str:
        return (await connect_link(self.service, name, **kw)).url

    async def orders(self, name: str) -> int:
        account = await self.service.store.account(name)
        return await self.service.store.count_orders(account_id=account.id)


@dataclass
class Browser:
    """A browser: one cookie jar for our app; Bling's pages are fetched like a client that does
    not ask for HTML, so the simulator approves (or denies) at once."""

    ours: httpx.AsyncClient
    bling: httpx.AsyncClient

    async def open(self, link: str) -> httpx.Response:
        """Open the link, and click "Continuar no Bling" when its page offers it."""
        page = await self.ours.get(link)
        form = re.search(r'<form method="post" action="([^"]+)"><input type="hidden" name="ticket" '
                         r'value="([^"]+)">', page.text)
        if page.status_code != 200 or form is None:
            return page
        return await self.ours.post(form.group(1), data={"ticket": html.unescape(form.group(2))})

    async def to_bling(self, start: httpx.Response) -> str:
        """Follow the start page's redirect through Bling's authorize; the callback URL."""
        assert start.status_code == 303, start.text
        authorize = await self.bling.get(start.headers["location"])
        assert authorize.status_code == 302, authorize.text
        location: str = authorize.headers["location"]
        assert location.startswith(CALLBACK + "?")
        return location

    async def back(self, callback: str, **kw: Any) -> httpx.Response:
        return await self.ours.get(callback, **kw)

    async def connect(self, link: str) -> httpx.Response:
        return await self.back(await self.to_bling(await self.open(link)))

    def restore(self, cookies: list[Cookie]) -> None:
        """Put cookies back that a response deleted (a browser that kept them)."""
        for cookie in cookies:
            self.ours.cookies.jar.set_cookie(cookie)


def settings_for(tmp_path: Path, db_url: str, sim: Simulator, **kw: Any) -> Settings:
    client = sim.state.world.companies[0].clients[0]
    return Settings(data_dir=tmp_path, database_url=db_url, secret_key=None, bling_url=f"{BLING}/Api/v3",
                    bling_v2_url=f"{BLING}/Api/v2", public_url=PUBLIC, oauth_client_id=client.client_id,
                    oauth_client_secret=client.client_secret, **kw)


@pytest.fixture
async def world(tmp_path: Path, db_url: str) -> AsyncIterator[World]:
    sim = make_sim(invoices=60)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BLING) as admin:
        for company in sim.state.world.companies:  # the app's one registered redirect URI: ours
            r = await admin.patch(f"/_sim/clients/{company.clients[0].client_id}",
                                  json={"redirect_uri": CALLBACK})
            assert r.status_code == 200, r.text
    network = Network(sim.app)
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))
    async with Service.open(settings_for(tmp_path, db_url, sim), warn=lambda _: None, registry=registry,
                            transport=network,
                            now=lambda: datetime.fromtimestamp(sim.state.clock.time(), UTC)) as service:
        synced: list[int] = []
        app = create_app(service, wakeups=Wakeups(sync=synced.append))
        yield World(sim, service, network, app, synced)


def text_of(page: httpx.Response) -> str:
    """The page's words, tags dropped."""
    return " ".join(re.sub(r"<[^>]+>", " ", page.text).split())


async def rows(world: World) -> list[Any]:
    async with world.service.store.engine.connect() as conn:
        return list((await conn.execute(select(oauth_states).order_by(oauth_states.c.id))).all())


# --- the link ---------------------------------------------------------------------------------


async def test_a_link_needs_the_bling_app(world: World) -> None:
    world.service.settings = replace(world.service.settings, oauth_client_secret=None)
    with pytest.raises(ConnectUnavailable,
                       match="BLINGSYNC_OAUTH_CLIENT_ID and BLINGSYNC_OAUTH_CLIENT_SECRET"):
        await connect_link(world.service, "Marca")
    assert await rows(world) == []


async def test_a_link_is_one_time_by_design_and_only_its_digest_is_stored(world: World) -> None:
    link = await connect_link(world.service, "  Marca Nova ")
    assert link.url.startswith(f"{PUBLIC}/oauth/bling/start?ticket=")
    assert link.expires_at == world.now() + timedelta(hours=24)
    ticket = parse_qs(urlsplit(link.url).query)["ticket"][0]
    assert len(ticket) >= 40
    [row] = await rows(world)
    assert row.account_name == "Marca Nova"
    assert ticket not in repr(tuple(row)) and row.ticket_sha256 != ticket and len(row.ticket_sha256) == 64
    assert row.state_sha256 is None and row.used_at is None


async def test_a_new_name_must_be_free_and_a_reconnect_must_exist(world: World) -> None:
    async with world.browser() as browser:
        assert (await browser.connect(await world.link("Marca"))).status_code == 200
    with pytest.raises(AccountExists):
        await connect_link(world.service, "Marca")
    with pytest.raises(AccountNotFound):
        await connect_link(world.service, "Outra", reconnect=True)
    assert (await connect_link(world.service, "Marca", reconnect=True)).url


# --- the whole flow ---------------------------------------------------------------------------


async def test_connect_stores_the_account_with_encrypted_tokens_and_it_imports(world: World) -> None:
    name = "Moda <b>&\"Ltda\"</b>"
    link = await world.link(name, settings=AccountSettings(initial_lookback_days=120))
    async with world.browser() as browser:
        start = await browser.open(link)
        assert start.status_code == 303
        location = urlsplit(start.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{BLING}/Api/v3/oauth/authorize"
        query = parse_qs(location.query)
        assert query["response_type"] == ["code"]
        assert query["client_id"] == [world.company().clients[0].client_id]
        state = query["state"][0]
        cookie = start.headers["set-cookie"]
        assert re.match(r"blingsync_oauth_\d+=", cookie)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/oauth/bling" in cookie
        assert "Secure" not in cookie  # the public URL is http here
        assert start.headers["cache-control"] == "no-store"
        callback = await browser.to_bling(start)
        assert parse_qs(urlsplit(callback).query)["state"] == [state]
        page = await browser.back(callback)
    assert page.status_code == 200, page.text
    words = text_of(page)
    assert "Conta conectada ao Bling" in words
    assert world.company().nome in words
    for label in ("Notas Fiscais", "Pedidos de Venda", "Dados básicos da empresa"):
        assert label in words
    assert "falta" not in words
    assert "<b>" not in page.text and "&lt;b&gt;" in page.text  # the name, escaped
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in page.headers["content-security-policy"]
    assert 'max-age=0' in page.headers["set-cookie"].lower()  # the session cookie is dropped

    account = await world.service.store.account(name)
    assert account.state is AccountState.ACTIVE
    assert account.company_id == world.company().company_id
    assert account.settings.initial_lookback_days == 120
    assert world.synced == [account.id]  # the first import was woken
    credentials = await world.service.store.credentials(account.id)
    assert isinstance(credentials, V3Credentials) and credentials.tokens is not None
    refresh = credentials.tokens.refresh_token.reveal()
    async with world.service.store.engine.connect() as conn:
        blob = (await conn.execute(
            select(accounts.c.credentials).where(accounts.c.id == account.id))).scalar_one()
    assert refresh.encode() not in blob and world.company().clients[0].client_secret.encode() not in blob
    [row] = await rows(world)
    assert row.outcome == "connected" and row.used_at is not None and row.ticket_sha256 != state

    [outcome] = await world.service.sync([name])
    assert outcome.report is not None and outcome.report.error is None
    assert await world.orders(name) > 0


async def test_missing_permissions_are_listed_and_the_account_is_kept(world: World) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.sim.app), base_url=BLING) as admin:
        r = await admin.patch(f"/_sim/clients/{world.company().clients[0].client_id}",
                              json={"scopes": ["nfe", "empresas"]})
        assert r.status_code == 200, r.text
    async with world.browser() as browser:
        page = await browser.connect(await world.link("Marca"))
    assert page.status_code == 200
    words = text_of(page)
    assert "Conta conectada ao Bling" in words and "Faltam permissões" in words
    assert "Pedidos de Venda — falta" in words and "Notas Fiscais — falta" not in words
    account = await world.service.store.account("Marca")
    assert account.state is AccountState.MISSING_PERMISSIONS
    [row] = await rows(world)
    assert row.outcome.startswith("connected; missing permissions: ") and "Pedidos de Venda" in row.outcome


async def test_https_public_url_makes_the_cookie_secure(world: World) -> None:
    world.service.settings = replace(world.service.settings, public_url="https://blingsync.test")
    link = await world.link("Marca")
    assert link.startswith("https://blingsync.test/oauth/bling/start?ticket=")
    async with world.browser() as browser:
        start = await browser.open(link)
    assert start.status_code == 303
    assert "Secure" in start.headers["set-cookie"]


# --- one-time, bound, expiring ----------------------------------------------------------------


async def test_the_ticket_is_one_time(world: World) -> None:
    link = await world.link("Marca")
    async with world.browser() as preview:  # a chat app or mail scanner opening the link
        for _ in range(2):
            page = await preview.ours.get(link)
            assert page.status_code == 200 and "Continuar no Bling" in page.text
        forged = await preview.ours.post("/oauth/bling/start", data={"ticket": "forged"})
        assert forged.status_code == 400 and "Link inválido" in text_of(forged)
    async with world.browser() as browser:
        assert (await browser.open(link)).status_code == 303
        again = await browser.open(link)
    assert again.status_code == 400
    assert "Este link já foi usado" in text_of(again)
    async with world.browser() as other:
        assert (await other.open(link)).status_code == 400


async def test_the_state_is_one_time(world: World) -> None:
    world.sim.state.authorize_decision = "deny"  # so a replay is not the "already connected" page
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(await world.link("Marca")))
        kept = list(browser.ours.cookies.jar)
        first = await browser.back(callback)
        assert first.status_code == 200 and "Autorização cancelada" in text_of(first)
        browser.restore(kept)  # the cookie kept on purpose
        replay = await browser.back(callback)
    assert replay.status_code == 400
    assert "Esta autorização já foi usada" in text_of(replay)
    [row, *_] = await rows(world)
    assert row.outcome == "denied by the user: O usuário negou o acesso ao aplicativo."


async def test_a_reloaded_result_page_says_connected_again_and_changes_nothing(world: World) -> None:
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(await world.link("Marca")))
        kept = list(browser.ours.cookies.jar)
        assert (await browser.back(callback)).status_code == 200
        browser.restore(kept)
        reload = await browser.back(callback)
        without_cookie = await browser.back(callback)
    assert reload.status_code == 200 and "já foi concluída" in text_of(reload)
    [attempt] = await world.service.store.oauth_attempts("Marca")
    assert attempt.outcome == "connected" and attempt.started and attempt.used_at is not None
    assert without_cookie.status_code == 400 and "mesmo navegador" in text_of(without_cookie)
    assert len(await world.service.store.accounts()) == 1


async def test_a_state_from_another_session_is_refused_and_stays_usable(world: World) -> None:
    async with world.browser() as brand, world.browser() as attacker:
        callback = await brand.to_bling(await brand.open(await world.link("Marca")))
        # The attacker has a session of its own (another attempt), but not the brand's.
        assert (await attacker.open(await world.link("Outra"))).status_code == 303
        stolen = await attacker.back(callback)
        assert stolen.status_code == 400
        assert "Abra o link no mesmo navegador" in text_of(stolen)
        assert await world.service.store.accounts() == []
        # Nothing was exchanged: the brand's browser still finishes with the same callback.
        again = await brand.back(callback)
    assert again.status_code == 200, again.text
    assert [a.name for a in await world.service.store.accounts()] == ["Marca"]


async def test_a_callback_without_the_cookie_is_refused_and_nothing_is_spent(world: World) -> None:
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(await world.link("Marca")))
        browser.ours.cookies.clear()
        refused = await browser.back(callback)
        assert refused.status_code == 400 and "outro navegador" in text_of(refused)
    assert await world.service.store.accounts() == []
    [row] = await rows(world)
    assert row.used_at is None and row.outcome is None


async def test_forged_or_missing_states_and_tickets_are_refused(world: World) -> None:
    async with world.browser() as browser:
        assert (await browser.open(await world.link("Marca"))).status_code == 303
        for url in (f"{CALLBACK}?code=abc&state=forged-state-value", f"{CALLBACK}?code=abc", CALLBACK,
                    f"{PUBLIC}/oauth/bling/start?ticket=forged", f"{PUBLIC}/oauth/bling/start"):
            page = await browser.ours.get(url)
            assert page.status_code == 400, url
            assert "Link inválido" in text_of(page), url
    assert await world.service.store.accounts() == []


async def test_an_expired_ticket_is_refused(world: World) -> None:
    link = await world.link("Marca")
    world.advance(24 * 3600 + 1)
    async with world.browser() as browser:
        page = await browser.open(link)
    assert page.status_code == 400 and "Este link expirou" in text_of(page)


async def test_an_expired_state_is_refused_and_nothing_is_stored(world: World) -> None:
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(await world.link("Marca")))
        world.advance(10 * 60 + 1)
        page = await browser.back(callback)
    assert page.status_code == 400 and "A autorização expirou" in text_of(page)
    assert await world.service.store.accounts() == []


# --- what Bling or the user answer ------------------------------------------------------------


async def test_the_user_denying_stores_nothing_and_offers_to_try_again(world: World) -> None:
    world.sim.state.authorize_decision = "deny"
    async with world.browser() as browser:
        page = await browser.connect(await world.link("Marca"))
        assert page.status_code == 200
        assert "Você não autorizou o acesso no Bling" in text_of(page)
        assert await world.service.store.accounts() == []
        retry = re.search(r'href="([^"]+)">Tentar de novo', page.text)
        assert retry is not None
        world.sim.state.authorize_decision = "approve"
        second = await browser.connect(retry.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "Conta conectada" in text_of(second)


async def test_a_code_bling_refuses_stores_nothing(world: World) -> None:
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(await world.link("Marca")))
        state = parse_qs(urlsplit(callback).query)["state"][0]
        page = await browser.back(f"{CALLBACK}?code=not-a-code&state={state}")
    assert page.status_code == 502
    assert "O Bling recusou a autorização" in text_of(page)
    assert "invalid_grant" not in page.text and "Traceback" not in page.text
    assert await world.service.store.accounts() == []
    row, retry = await rows(world)  # the page offers a new link: a ticket of its own
    assert row.outcome.startswith("refused by Bling") and retry.account_name == "Marca"


async def test_an_inactive_app_is_the_warehouse_s_problem_in_words(world: World) -> None:
    world.company().clients[0].active = False
    async with world.browser() as browser:
        page = await browser.connect(await world.link("Marca"))
    assert page.status_code == 502
    words = text_of(page)
    assert "O aplicativo do armazém não foi aceito pelo Bling" in words
    assert "O aplicativo está inativo." in words


async def test_bling_unreachable_stores_nothing_and_the_retry_works(world: World) -> None:
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(await world.link("Marca")))
        world.network.down = True
        page = await browser.back(callback)
        assert page.status_code == 502
        assert "O Bling não respondeu" in text_of(page)
        assert await world.service.store.accounts() == []  # the name is free for the retry
        world.network.down = False
        retry = re.search(r'href="([^"]+)">Tentar de novo', page.text)
        assert retry is not None
        second = await browser.connect(retry.group(1).replace("&amp;", "&"))
    assert second.status_code == 200, second.text
    first, again = await rows(world)
    assert first.outcome.startswith("Bling unreachable") and again.outcome == "connected"


async def test_reconnect_keeps_the_orders_and_replaces_the_tokens(world: World) -> None:
    async with world.browser() as browser:
        assert (await browser.connect(await world.link("Marca"))).status_code == 200
    await world.service.sync(["Marca"])
    before = await world.service.store.account("Marca")
    orders = await world.orders("Marca")
    assert orders > 0
    old = await world.service.store.credentials(before.id)
    await world.service.store.set_account_state(before.id, AccountState.NEEDS_REAUTH, "revoked")
    async with world.browser() as browser:
        page = await browser.connect(await world.link("Marca", reconnect=True))
    assert page.status_code == 200, page.text
    after = await world.service.store.account("Marca")
    assert after.id == before.id and after.state is AccountState.ACTIVE
    assert await world.orders("Marca") == orders
    new = await world.service.store.credentials(after.id)
    assert isinstance(old, V3Credentials) and isinstance(new, V3Credentials)
    assert old.tokens is not None and new.tokens is not None
    assert new.tokens.refresh_token != old.tokens.refresh_token
    [outcome] = await world.service.sync(["Marca"])
    assert outcome.report is not None and outcome.report.error is None


async def test_reconnect_replaces_credentials_sealed_under_another_key(world: World) -> None:
    async with world.browser() as browser:
        assert (await browser.connect(await world.link("Marca"))).status_code == 200
        account = await world.service.store.account("Marca")
        async with world.service.store.engine.begin() as conn:
            await conn.execute(update(accounts).where(accounts.c.id == account.id)
                               .values(credentials=b"sealed under a key this process does not have"))
        with pytest.raises(CredentialsUnreadable):
            await world.service.store.credentials(account.id)
        page = await browser.connect(await world.link("Marca", reconnect=True))
    assert page.status_code == 200, page.text
    [outcome] = await world.service.sync(["Marca"])
    assert outcome.report is not None and outcome.report.error is None


async def test_reconnect_with_bling_unreachable_keeps_the_old_connection(world: World) -> None:
    async with world.browser() as browser:
        assert (await browser.connect(await world.link("Marca"))).status_code == 200
        account = await world.service.store.account("Marca")
        old = await world.service.store.credentials(account.id)
        callback = await browser.to_bling(await browser.open(await world.link("Marca", reconnect=True)))
        world.network.down = True
        page = await browser.back(callback)
        world.network.down = False
    assert page.status_code == 502
    assert await world.service.store.credentials(account.id) == old
    [outcome] = await world.service.sync(["Marca"])
    assert outcome.report is not None and outcome.report.error is None


async def test_reconnect_refuses_another_company_and_changes_nothing(world: World) -> None:
    async with world.browser() as browser:
        assert (await browser.connect(await world.link("Marca"))).status_code == 200
        account = await world.service.store.account("Marca")
        old = await world.service.store.credentials(account.id)
        # The brand signs in to Bling as another company (here: the app of company 1).
        other = world.company(1).clients[0]
        world.service.settings = replace(world.service.settings, oauth_client_id=other.client_id,
                                         oauth_client_secret=other.client_secret)
        page = await browser.connect(await world.link("Marca", reconnect=True))
    assert page.status_code == 409
    assert "Outra empresa foi autorizada" in text_of(page) and world.company(1).nome in text_of(page)
    after = await world.service.store.account("Marca")
    assert after.company_id == world.company(0).company_id and after.document == account.document
    assert await world.service.store.credentials(account.id) == old


async def test_a_company_connected_twice_is_refused(world: World) -> None:
    async with world.browser() as browser:
        assert (await browser.connect(await world.link("Marca"))).status_code == 200
        page = await browser.connect(await world.link("Marca de novo"))
    assert page.status_code == 409
    assert "Esta empresa já está conectada" in text_of(page) and "“Marca”" in text_of(page)
    assert [a.name for a in await world.service.store.accounts()] == ["Marca"]


async def test_a_name_taken_meanwhile_is_said_and_nothing_is_exchanged(world: World) -> None:
    first, second = await world.link("Marca"), await world.link("Marca")
    async with world.browser() as browser:
        assert (await browser.connect(first)).status_code == 200
        page = await browser.connect(second)
    assert page.status_code == 409 and "Já existe uma conta com este nome" in text_of(page)


async def test_without_the_bling_app_the_start_page_says_so(world: World) -> None:
    link = await world.link("Marca")
    client_id = world.service.settings.oauth_client_id
    world.service.settings = replace(world.service.settings, oauth_client_id=None)
    async with world.browser() as browser:
        page = await browser.open(link)
    assert page.status_code == 503 and "Conexão pelo Bling indisponível" in text_of(page)
    [row] = await rows(world)
    assert row.state_sha256 is None  # the ticket still works once the app is configured
    world.service.settings = replace(world.service.settings, oauth_client_id=client_id)
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(link))
        world.service.settings = replace(world.service.settings, oauth_client_id=None)
        page = await browser.back(callback)  # unconfigured while the brand was at Bling
    assert page.status_code == 503 and await world.service.store.accounts() == []
    [row] = await rows(world)
    assert row.outcome == "connect unavailable"


# --- Bling's authorize page in the simulator ---------------------------------------------------


async def test_the_simulator_shows_a_consent_page_to_browsers(world: World) -> None:
    client = world.company().clients[0]
    params = {"response_type": "code", "client_id": client.client_id, "state": "s-1"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.sim.app), base_url=BLING) as http:
        page = await http.get("/Api/v3/oauth/authorize", params=params, headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "Autorizar" in page.text and world.company().nome in page.text
        approve = await http.post("/Api/v3/oauth/authorize", data={**params, "decision": "approve"})
        deny = await http.post("/Api/v3/oauth/authorize", data={**params, "decision": "deny"})
    assert approve.status_code == 303
    back = parse_qs(urlsplit(approve.headers["location"]).query)
    assert back["state"] == ["s-1"] and len(back["code"][0]) >= 20
    assert deny.status_code == 303
    assert parse_qs(urlsplit(deny.headers["location"]).query)["error"] == ["access_denied"]


def test_the_authorize_url_of_the_real_bling_is_its_login_host() -> None:
    assert authorize_url("https://api.bling.com.br/Api/v3") == "https://www.bling.com.br/Api/v3/oauth/authorize"
    assert authorize_url("http://127.0.0.1:9/Api/v3/") == "http://127.0.0.1:9/Api/v3/oauth/authorize"


# --- the command line -------------------------------------------------------------------------


def run_cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BLINGSYNC_")}
    return subprocess.run(
        [sys.executable, "-c", "from blingsync.cli import main; main()", *args],
        env={**clean, "BLINGSYNC_DATA_DIR": str(data_dir), "COLUMNS": "200", **env},
        capture_output=True, text=True, timeout=120, check=False)


async def test_accounts_connect_prints_a_link_that_connects(tmp_path: Path) -> None:
    sim = make_sim(invoices=20)
    client = sim.state.world.companies[0].clients[0]
    client.redirect_uri = CALLBACK
    data_dir = tmp_path / "cli"
    unconfigured = run_cli(data_dir, "accounts", "connect", "Marca")
    assert unconfigured.returncode == 2
    assert "BLINGSYNC_OAUTH_CLIENT_ID" in unconfigured.stderr
    env = {"BLINGSYNC_PUBLIC_URL": PUBLIC, "BLINGSYNC_OAUTH_CLIENT_ID": client.client_id,
           "BLINGSYNC_OAUTH_CLIENT_SECRET": client.client_secret, "BLINGSYNC_BLING_URL": f"{BLING}/Api/v3"}
    done = run_cli(data_dir, "accounts", "connect", "Marca", "--lookback-days", "45", **env)
    assert done.returncode == 0, done.stderr
    assert client.client_secret not in done.stdout + done.stderr
    [link] = re.findall(r"^http://blingsync\.test/oauth/bling/start\?ticket=\S+$", done.stdout, re.MULTILINE)
    assert CALLBACK in done.stdout
    assert run_cli(data_dir, "accounts", "connect", "Marca", "--reconnect", **env).returncode == 3

    settings = Settings.from_env({**env, "BLINGSYNC_DATA_DIR": str(data_dir)})
    async with Service.open(settings, warn=lambda _: None, transport=httpx.ASGITransport(app=sim.app),
                            now=lambda: datetime.fromtimestamp(sim.state.clock.time(), UTC)) as service:
        world = World(sim, service, Network(sim.app), create_app(service))
        async with world.browser() as browser:
            page = await browser.connect(link)
        assert page.status_code == 200, page.text
        account = await service.store.account("Marca")
        assert account.settings.initial_lookback_days == 45
    taken = run_cli(data_dir, "accounts", "connect", "Marca", **env)
    assert taken.returncode == 1 and "already exists" in taken.stderr


async def test_a_code_bling_cannot_exchange_leaves_no_tokenless_account(world: World) -> None:
    """`accounts add --code` (the service, without the web flow): an exchange that times out
    keeps nothing, because an account without tokens could never be finished."""
    async with world.browser() as browser:
        callback = await browser.to_bling(await browser.open(await world.link("Marca")))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    client = world.company().clients[0]
    world.network.down = True
    with pytest.raises(CodeNotExchanged, match="get a new one"):
        await world.service.add_account("Avulsa", client_id=client.client_id,
                                        client_secret=client.client_secret, code=code)
    world.network.down = False
    assert await world.service.store.accounts() == []
