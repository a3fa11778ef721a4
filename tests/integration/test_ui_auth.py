"""Operators and sign-in of the dashboard, end to end: `create_app(service)` over
`httpx.ASGITransport` on SQLite and PostgreSQL, every sign-in through the real `/entrar` form.

Proves: sign in and out, the one generic refusal (unknown user, wrong password, disabled user),
the throttle (in the database: shared by two apps, kept across a restart, pruned, bounded per
address, exact under parallel attempts), the 12-hour sliding expiry that background polls do not
slide, the 7-day absolute end, a new token at every sign-in (fixation), `next` never
leading off-site, CSRF refusals that change nothing (no token, a wrong one, another session's,
another site's Origin/Referer), escaping of what the sign-in form and flash messages echo, the
security headers, the cookie's attributes, what the database keeps (hashes only) and the
`blingsync users` commands as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from blingsync.config import Settings
from blingsync.service import Service
from blingsync.store.tables import signin_failures, ui_sessions, users
from blingsync.store.users import (
    MIN_PASSWORD_LENGTH,
    SigninLimits,
    UserExists,
    WeakPassword,
    hash_password,
    signin_username_key,
    verify_password,
)
from blingsync.web import ui
from blingsync.web.app import create_app
from blingsync.web.ui import i18n
from blingsync.web.ui.auth import Operator, csrf_protect, require_operator
from blingsync.web.ui.render import CONTENT_SECURITY_POLICY, flash, render
from tests.integration.store_fixtures import Clock
from tests.ui_support import (
    BASE_URL,
    OPERATOR_PASSWORD,
    assert_escaped,
    csrf_of,
    sign_in,
    signed_in_client,
)

PASSWORD = "correta-e-longa-1"
INVALID = "Usuário ou senha incorretos."
XSS = '"><img src=x onerror=alert(1)><script>alert(1)</script>'


Me = Annotated[Operator, Depends(require_operator)]


@dataclass
class Probe:
    """Test-only routes built on the real dependencies: a protected page, a protected action
    that counts its runs, and an action that flashes a message and redirects."""

    runs: list[str] = field(default_factory=list)

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/_sonda")
        async def page(request: Request, operator: Me) -> Any:
            return render(request, "errors/generic.html", {"status_code": 200, "phrase": "",
                                                           "message_key": None})

        @router.post("/_sonda/acao", dependencies=[Depends(csrf_protect)])
        async def action(request: Request, operator: Me) -> Any:
            self.runs.append(operator.username)
            return RedirectResponse("/_sonda", status_code=303)

        @router.post("/_sonda/aviso", dependencies=[Depends(csrf_protect)])
        async def notice(request: Request, operator: Me, text: str = "") -> Any:
            flash(request, "nav.signed_in_as", "warn", username=text)
            return RedirectResponse("/_sonda", status_code=303)

        return router


@dataclass
class Ui:
    service: Service
    app: FastAPI
    clock: Clock
    probe: Probe

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=(address, 40000)),
                                 base_url=BASE_URL)

    async def session_rows(self) -> list[Any]:
        async with self.service.store._read() as conn:
            return list((await conn.execute(select(ui_sessions))).all())

    async def failure_rows(self) -> list[Any]:
        async with self.service.store._read() as conn:
            return list((await conn.execute(select(signin_failures).order_by(signin_failures.c.id))).all())


def make_settings(tmp_path: Path, db_url: str, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, database_url=db_url, secret_key=None, bling_url="http://bling.test/Api/v3",
                    bling_v2_url="http://bling.test/Api/v2", **kw)


@contextlib.asynccontextmanager
async def open_ui(tmp_path: Path, db_url: str, **settings: Any) -> AsyncIterator[Ui]:
    clock = Clock()
    async with Service.open(make_settings(tmp_path, db_url, **settings), warn=lambda _: None,
                            now=clock) as service:
        app = ui.install(create_app(service))
        probe = Probe()
        app.include_router(probe.router())
        yield Ui(service, app, clock, probe)


@pytest.fixture
async def world(tmp_path: Path, db_url: str) -> AsyncIterator[Ui]:
    async with open_ui(tmp_path, db_url) as opened:
        await opened.service.store.create_user("ana", PASSWORD)
        yield opened


# --- sign in and out ------------------------------------------------------------------------------


async def test_sign_in_through_the_form_then_out(world: Ui) -> None:
    async with world.client() as http:
        r = await http.get("/_sonda")
        assert r.status_code == 303 and r.headers["location"] == "/entrar?next=/_sonda"
        form = await http.get(r.headers["location"])
        assert form.status_code == 200 and 'name="next" value="/_sonda"' in form.text
        assert "Entre para continuar." in form.text
        r = await http.post("/entrar", data={"username": "ana", "password": PASSWORD, "next": "/_sonda",
                                             "csrf_token": csrf_of(form.text)})
        assert r.status_code == 303 and r.headers["location"] == "/_sonda"
        [cookie] = [c for c in r.headers.get_list("set-cookie") if c.startswith("blingsync_session=")]
        for attribute in ("HttpOnly", "Path=/", "SameSite=lax"):
            assert attribute in cookie, cookie
        assert "Secure" not in cookie and "Max-Age" not in cookie and "expires" not in cookie.lower()

        page = await http.get("/_sonda")
        assert page.status_code == 200
        assert "Conectado como ana" in page.text
        assert (await http.get("/entrar")).headers["location"] == "/contas"  # already signed in
        [_row] = await world.session_rows()
        assert (await world.service.store.user_by_name("ana")).last_login_at == world.clock.now  # type: ignore[union-attr]

        r = await http.post("/sair", data={"csrf_token": csrf_of(page.text)})
        assert r.status_code == 303 and r.headers["location"] == "/entrar?saiu=1"
        assert any(c.startswith('blingsync_session=""') for c in r.headers.get_list("set-cookie"))
        assert await world.session_rows() == []
        bye = await http.get("/entrar?saiu=1")
        assert "Você saiu." in bye.text
        assert (await http.get("/_sonda")).status_code == 303


async def test_the_layout_marks_the_current_page_and_escapes_the_csrf_header(world: Ui) -> None:
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        page = (await http.get("/pedidos/123", headers={"accept": "text/html"})).text
        # /pedidos/123 may not exist yet (another page module): the 404 page still has the layout
        assert re.search(r'<a class="nav__link" href="/pedidos" aria-current="page">Pedidos</a>', page)
        assert page.count('aria-current="page"') == 1
        token = csrf_of(page)
        assert f"hx-headers='{{\"X-CSRF-Token\": \"{token}\"}}'" in page
        assert '<main id="conteudo"' in page and 'href="#conteudo"' in page
        assert 'role="status"' in page and 'name="viewport"' in page
        assert '<script src="/static/htmx.min.js' in page and " defer>" in page


async def test_wrong_password_unknown_user_and_disabled_user_get_the_same_answer(world: Ui) -> None:
    await world.service.store.create_user("bia", PASSWORD)
    await world.service.store.disable_user("bia")
    async with world.client() as http:
        answers = [await sign_in(http, "ana", "errada-mas-longa"), await sign_in(http, "ninguem", PASSWORD),
                   await sign_in(http, "bia", PASSWORD), await sign_in(http, "ANA", PASSWORD)]
        for r in answers:
            assert r.status_code == 401
            assert INVALID in r.text
            assert "blingsync_session" not in r.headers.get("set-cookie", "")
        texts = {re.sub(r'value="[^"]*"', "", r.text) for r in answers[1:3]}
        assert len(texts) == 1, "an unknown user and a disabled one must get the very same page"
        empty = await sign_in(http, "ana", "")
        assert empty.status_code == 400 and "Informe o usuário e a senha." in empty.text
    assert await world.session_rows() == []


async def test_five_failures_lock_that_username_and_address_for_the_window(world: Ui) -> None:
    async with world.client("10.0.0.1") as http, world.client("10.0.0.2") as other:
        for _ in range(5):
            assert (await sign_in(http, "ana", "tentativa-errada")).status_code == 401
        locked = await sign_in(http, "ana", PASSWORD)  # right password, still locked
        assert locked.status_code == 429 and "Muitas tentativas" in locked.text
        assert "15 min" in locked.text and int(locked.headers["retry-after"]) == 15 * 60
        assert "blingsync_session" not in http.cookies
        assert (await sign_in(other, "ana", PASSWORD)).status_code == 303  # another address
        world.clock.advance(minutes=10)
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 429
        world.clock.advance(minutes=5)
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 303


async def fail(ui: Ui, times: int, username: str = "ana", address: str = "10.0.0.1") -> list[int]:
    async with ui.client(address) as http:
        return [(await sign_in(http, username, "tentativa-errada")).status_code for _ in range(times)]


async def test_two_apps_on_one_database_share_the_throttle_and_a_restart_keeps_it(
        tmp_path: Path, db_url: str) -> None:
    async with open_ui(tmp_path / "a", db_url) as one, open_ui(tmp_path / "b", db_url) as two:
        await one.service.store.create_user("ana", PASSWORD)
        assert await fail(one, 3) + await fail(two, 2) == [401] * 5
        for app in (one, two):  # each has seen only some of the failures, both lock the pair
            async with app.client("10.0.0.1") as http:
                assert (await sign_in(http, "ana", PASSWORD)).status_code == 429
    # a new process: nothing forgotten
    async with open_ui(tmp_path / "c", db_url) as restarted, restarted.client("10.0.0.1") as http:
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 429
        restarted.clock.advance(minutes=15)
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 303


async def test_a_success_clears_its_pair_and_old_failures_are_pruned(world: Ui) -> None:
    assert await fail(world, 4) == [401] * 4
    await fail(world, 2, username="bia")
    rows = await world.failure_rows()
    assert len(rows) == 6
    assert {row.username_key for row in rows} == {signin_username_key("ana"), signin_username_key("bia")}
    assert "ana" not in str([tuple(row) for row in rows])  # the username only as a hash
    async with world.client("10.0.0.1") as http:
        assert (await sign_in(http, "ANA", PASSWORD)).status_code == 401  # counts for "ana"'s pair
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 429
        world.clock.advance(minutes=15)
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 303
    assert await world.failure_rows() == []  # the success cleared ana's, the attempt pruned the rest
    assert await fail(world, 4) == [401] * 4  # a fresh count after the success: not locked yet
    world.clock.advance(minutes=10)
    assert await fail(world, 1, username="carla") == [401]
    world.clock.advance(minutes=5, seconds=1)
    assert await fail(world, 1, username="davi") == [401]
    assert [row.username_key for row in await world.failure_rows()] == [
        signin_username_key("carla"), signin_username_key("davi")]


async def test_one_address_cannot_flood_the_table_with_made_up_usernames(world: Ui) -> None:
    world.app.state.ui_signin_limits = SigninLimits(per_pair=5, per_address=8)
    assert await fail(world, 1, "ana") + [
        (await fail(world, 1, f"inventado{n}"))[0] for n in range(7)] == [401] * 8
    async with world.client("10.0.0.1") as http:
        for username in ("outro-nome", "ana"):  # any username from that address now waits
            locked = await sign_in(http, username, PASSWORD)
            assert locked.status_code == 429 and "15 min" in locked.text
    assert len(await world.failure_rows()) == 8  # locked attempts write nothing
    async with world.client("10.0.0.2") as other:
        assert (await sign_in(other, "ana", PASSWORD)).status_code == 303


async def test_parallel_attempts_get_no_more_than_the_limit(world: Ui) -> None:
    clients = [world.client("10.0.0.7") for _ in range(12)]
    try:
        tokens = [csrf_of((await http.get("/entrar")).text) for http in clients]
        answers = await asyncio.gather(*(
            http.post("/entrar", data={"username": "ana", "password": "tentativa-errada",
                                       "csrf_token": token})
            for http, token in zip(clients, tokens, strict=True)))
    finally:
        for http in clients:
            await http.aclose()
    assert sorted(r.status_code for r in answers) == [401] * 5 + [429] * 7
    assert len(await world.failure_rows()) == 5


async def test_an_ipv6_client_is_counted_by_its_64_network(world: Ui) -> None:
    assert await fail(world, 5, address="2001:db8:1:2::1") == [401] * 5
    async with world.client("2001:db8:1:2:ffff::9") as same, world.client("2001:db8:1:3::1") as other:
        assert (await sign_in(same, "ana", PASSWORD)).status_code == 429
        assert (await sign_in(other, "ana", PASSWORD)).status_code == 303
    assert {row.address for row in await world.failure_rows()} == {"2001:db8:1:2::/64"}


# --- sessions -------------------------------------------------------------------------------------


async def test_sessions_slide_for_12_hours_and_are_touched_at_most_once_a_minute(world: Ui) -> None:
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        [row] = await world.session_rows()
        assert row.expires_at == world.clock.now + timedelta(hours=12)
        world.clock.advance(seconds=30)
        assert (await http.get("/_sonda")).status_code == 200
        [again] = await world.session_rows()
        assert again.last_seen_at == row.last_seen_at  # under a minute: no write
        world.clock.advance(hours=11)
        assert (await http.get("/_sonda")).status_code == 200  # slides
        world.clock.advance(hours=11)
        assert (await http.get("/_sonda")).status_code == 200  # 22 h after sign-in, 11 h idle
        world.clock.advance(hours=12, seconds=1)
        r = await http.get("/_sonda?x=1")
        assert r.status_code == 303 and r.headers["location"] == "/entrar?next=/_sonda%3Fx%3D1"
        htmx = await http.post("/_sonda/acao",
                               headers={"hx-request": "true", "referer": f"{BASE_URL}/_sonda"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/entrar?next=/_sonda"
        assert world.probe.runs == []


POLL = {"x-blingsync-poll": "1", "hx-request": "true"}


def poll_element(page: str) -> tuple[str, dict[str, str]]:
    """The live region's polling element of a page: its `hx-get` URL (with its `hx-vals`) and
    its `hx-headers`, as HTMX would send them."""
    [tag] = re.findall(r"<[^>]*hx-trigger=\"every 10s\"[^>]*>", page)
    attributes = {name: html.unescape(value) for name, value in re.findall(r"""([\w-]+)='([^']*)'""", tag)}
    attributes |= {name: html.unescape(value) for name, value in re.findall(r'([\w-]+)="([^"]*)"', tag)}
    url = attributes["hx-get"]
    if "hx-vals" in attributes:
        url += ("&" if "?" in url else "?") + urlencode(json.loads(attributes["hx-vals"]))
    return url, json.loads(attributes["hx-headers"])


async def test_a_background_poll_never_extends_the_session_and_an_expired_one_goes_to_sign_in(
        world: Ui) -> None:
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        [signed_in] = await world.session_rows()
        page = await http.get("/contas?q=x")
        url, headers = poll_element(page.text)
        assert headers == {"X-Blingsync-Poll": "1"}
        from_page = {**headers, "hx-request": "true", "hx-current-url": f"{BASE_URL}/contas?q=x"}
        world.clock.advance(hours=11)
        assert (await http.get(url, headers=from_page)).status_code in (200, 204)
        assert await world.session_rows() == [signed_in]  # not slid, nothing written

        assert (await http.get("/contas")).status_code == 200  # the operator's own view slides it
        [slid] = await world.session_rows()
        assert slid.expires_at == world.clock.now + timedelta(hours=12)

        world.clock.advance(hours=11, minutes=59)
        for _ in range(6 * 10):  # ten minutes of polls every 10 s: the end does not move
            world.clock.advance(seconds=10)
            await http.get(url, headers=from_page)
        assert await world.session_rows() == [slid]
        expired = await http.get(url, headers=from_page)
        assert expired.status_code == 401
        assert expired.headers["hx-redirect"] == "/entrar?next=/contas%3Fq%3Dx"
        assert (await http.get("/contas")).status_code == 303  # really over


async def test_a_poll_after_sign_out_goes_to_sign_in_with_the_page_to_return_to(world: Ui) -> None:
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        page = await http.get("/entregas")
        url, headers = poll_element(page.text)
        assert headers == {"X-Blingsync-Poll": "1"}
        assert (await http.post("/sair", data={"csrf_token": csrf_of(page.text)})).status_code == 303
        # HTMX names the page in HX-Current-URL; without it, the Referer says it
        for sent in ({"hx-current-url": f"{BASE_URL}/entregas"}, {"referer": f"{BASE_URL}/entregas"}):
            r = await http.get(url, headers={**POLL, **sent})
            assert r.status_code == 401 and r.headers["hx-redirect"] == "/entrar?next=/entregas"
        # another site's page is never a place to return to
        r = await http.get(url, headers={**POLL, "hx-current-url": "https://evil.example/entregas"})
        assert r.status_code == 401 and r.headers["hx-redirect"] == "/entrar"


def test_every_polling_element_marks_its_requests_as_polls() -> None:
    """A live region without the header would keep a session alive forever again."""
    polling = {}
    every = re.compile(r"<[^>]*\bhx-trigger=\"[^\"]*every [^>]*>")
    for template in ui.TEMPLATES_DIR.rglob("*.html"):
        for tag in every.findall(template.read_text(encoding="utf-8")):
            polling[template.relative_to(ui.TEMPLATES_DIR).as_posix()] = tag
    assert set(polling) >= {"accounts/_list_poll.html", "accounts/_detail_poll.html",
                            "orders/deliveries.html"}
    for name, tag in polling.items():
        assert """hx-headers='{"X-Blingsync-Poll": "1"}'""" in tag, name


async def test_a_session_ends_7_days_after_sign_in_however_much_it_is_used(world: Ui) -> None:
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        [row] = await world.session_rows()
        signed_in_at = row.created_at
        while world.clock.now + timedelta(hours=11) < signed_in_at + timedelta(days=7):
            world.clock.advance(hours=11)
            assert (await http.get("/_sonda")).status_code == 200
        [row] = await world.session_rows()
        assert row.expires_at == signed_in_at + timedelta(days=7)  # slid, but never past the 7 days
        async with world.service.store._write() as conn:  # a row from before the cap: its sign-in decides
            await conn.execute(ui_sessions.update().values(expires_at=signed_in_at + timedelta(days=30)))
        world.clock.now = signed_in_at + timedelta(days=7)
        assert (await http.get("/_sonda")).status_code == 303


async def test_every_sign_in_gets_a_new_token_and_drops_the_one_the_browser_had(world: Ui) -> None:
    async with world.client() as http:
        http.cookies.set("blingsync_session", "planted-by-an-attacker", domain="blingsync.test")
        await sign_in(http, "ana", PASSWORD)
        first = http.cookies["blingsync_session"]
        assert first != "planted-by-an-attacker"
    async with world.client() as victim:
        form = await victim.get("/entrar")  # the victim opens the form...
        # ...with a live token planted
        victim.cookies.set("blingsync_session", first, domain="blingsync.test")
        r = await victim.post("/entrar", data={"username": "ana", "password": PASSWORD,
                                               "csrf_token": csrf_of(form.text)})
        assert r.status_code == 303
        second = victim.cookies["blingsync_session"]
        assert second != first
        rows = await world.session_rows()
        assert [r.token_sha256 for r in rows] == [hashlib.sha256(second.encode()).hexdigest()]
    async with world.client() as stale:
        stale.cookies.set("blingsync_session", first, domain="blingsync.test")
        assert (await stale.get("/_sonda")).status_code == 303


async def test_only_hashes_are_stored(world: Ui) -> None:
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        token = http.cookies["blingsync_session"]
    async with world.service.store._read() as conn:
        [user] = (await conn.execute(select(users))).all()
        [session] = (await conn.execute(select(ui_sessions))).all()
    assert PASSWORD not in str(tuple(user)) and token not in str(tuple(session))
    assert re.fullmatch(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}", user.password_hash)
    assert session.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert verify_password(PASSWORD, user.password_hash)
    assert not verify_password(PASSWORD + "x", user.password_hash)
    assert not verify_password(PASSWORD, "scrypt$garbage") and not verify_password(PASSWORD, "")
    assert hash_password(PASSWORD) != user.password_hash  # salted


async def test_users_are_validated_and_disabling_or_a_new_password_ends_sessions(world: Ui) -> None:
    store = world.service.store
    with pytest.raises(WeakPassword):
        await store.create_user("curto", "x" * (MIN_PASSWORD_LENGTH - 1))
    with pytest.raises(UserExists):
        await store.create_user("ana", PASSWORD)
    with pytest.raises(ValueError, match="username"):
        await store.create_user("<b>eu</b>", PASSWORD)
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        await store.set_user_password("ana", "outra-senha-longa")
        assert (await http.get("/_sonda")).status_code == 303
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 401
        assert (await sign_in(http, "ana", "outra-senha-longa")).status_code == 303
        await store.disable_user("ana")
        assert (await http.get("/_sonda")).status_code == 303
        assert await world.session_rows() == []
        await store.enable_user("ana")
        assert (await sign_in(http, "ana", "outra-senha-longa")).status_code == 303


async def test_the_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path, db_url: str) -> None:
    async with open_ui(tmp_path, db_url, public_url="https://ops.example.com") as opened:
        await opened.service.store.create_user("ana", PASSWORD)
        async with opened.client() as http:
            form = await http.get("/entrar")
            [signin_cookie] = form.headers.get_list("set-cookie")
            assert "; Secure" in signin_cookie and "Path=/entrar" in signin_cookie
            token = csrf_of(form.text)
            # httpx keeps Secure cookies for https: the browser would send it back
            r = await http.post("/entrar",
                                data={"username": "ana", "password": PASSWORD, "csrf_token": token},
                                headers={"origin": "https://ops.example.com",
                                         "cookie": f"blingsync_entrar={token}"})
            [cookie] = [c for c in r.headers.get_list("set-cookie") if c.startswith("blingsync_session=")]
            assert r.status_code == 303 and "; Secure" in cookie and "HttpOnly" in cookie


# --- next -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("next_path", [
    "//evil.example/x", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
    "/\r\nSet-Cookie:x=1", "http:/evil.example", "evil.example", "/entrar", "/sair", " //evil.example",
    "/\t/evil.example",
])
async def test_next_never_leads_off_site(world: Ui, next_path: str) -> None:
    async with world.client() as http:
        form = await http.get("/entrar", params={"next": next_path})
        assert 'name="next" value="/contas"' in form.text
        r = await http.post("/entrar", data={"username": "ana", "password": PASSWORD, "next": next_path,
                                             "csrf_token": csrf_of(form.text)})
        assert r.status_code == 303 and r.headers["location"] == "/contas"


async def test_next_keeps_a_local_path_with_its_query(world: Ui) -> None:
    async with world.client() as http:
        r = await sign_in(http, "ana", PASSWORD, next_path="/pedidos?q=123&situacao=ok")
        assert r.headers["location"] == "/pedidos?q=123&situacao=ok"


# --- CSRF -----------------------------------------------------------------------------------------


async def test_a_post_without_the_right_token_is_refused_and_changes_nothing(world: Ui) -> None:
    await world.service.store.create_user("bia", PASSWORD)
    async with world.client() as http, world.client() as other:
        await sign_in(http, "ana", PASSWORD)
        await sign_in(other, "bia", PASSWORD)
        mine = csrf_of((await http.get("/_sonda")).text)
        theirs = csrf_of((await other.get("/_sonda")).text)
        assert mine != theirs
        refusals = {
            "no token": await http.post("/_sonda/acao"),
            "empty token": await http.post("/_sonda/acao", data={"csrf_token": ""}),
            "wrong token": await http.post("/_sonda/acao", data={"csrf_token": mine[:-2] + "xx"}),
            "another session's token": await http.post("/_sonda/acao", data={"csrf_token": theirs}),
            "another session's token in the header": await http.post(
                "/_sonda/acao", headers={"x-csrf-token": theirs}),
            "another site's Origin": await http.post("/_sonda/acao", data={"csrf_token": mine},
                                                     headers={"origin": "https://evil.example"}),
            "a null Origin": await http.post("/_sonda/acao", data={"csrf_token": mine},
                                             headers={"origin": "null"}),
            "another site's Referer": await http.post("/_sonda/acao", data={"csrf_token": mine},
                                                      headers={"referer": "https://evil.example/page"}),
            "sign-out without a token": await http.post("/sair"),
        }
        for why, r in refusals.items():
            assert r.status_code == 403, (why, r.status_code)
            assert "Ação recusada" in r.text and "Nada foi alterado." in r.text, why
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert world.probe.runs == []
        assert len(await world.session_rows()) == 2  # sign-out refused: both sessions live

        accepted = [
            await http.post("/_sonda/acao", data={"csrf_token": mine}),
            await http.post("/_sonda/acao", headers={"x-csrf-token": mine, "hx-request": "true"}),
            await http.post("/_sonda/acao", data={"csrf_token": mine}, headers={"origin": BASE_URL}),
            await http.post("/_sonda/acao", data={"csrf_token": mine},
                            headers={"origin": "http://127.0.0.1:8000"}),  # the public URL's host
            await http.post("/_sonda/acao", data={"csrf_token": mine}, headers={"referer": f"{BASE_URL}/x"}),
        ]
        assert [r.status_code for r in accepted] == [303] * 5
        assert world.probe.runs == ["ana"] * 5
        assert (await http.post("/_sonda/acao", data={"csrf_token": mine})).status_code == 303


async def test_a_post_while_signed_out_is_401_and_runs_nothing(world: Ui) -> None:
    async with world.client() as http:
        r = await http.post("/_sonda/acao", data={"csrf_token": "whatever"})
        assert r.status_code == 401 and "Sessão encerrada" in r.text
    assert world.probe.runs == []


async def test_the_sign_in_form_has_its_own_csrf_token(world: Ui) -> None:
    async with world.client() as http:
        form = await http.get("/entrar")
        token = csrf_of(form.text)
        http.cookies.set("blingsync_entrar", "forged", domain="blingsync.test", path="/entrar")
        no_cookie = await http.post("/entrar",
                                    data={"username": "ana", "password": PASSWORD, "csrf_token": token})
        assert no_cookie.status_code == 403 and "O formulário expirou" in no_cookie.text
        form = await http.get("/entrar")
        cross = await http.post("/entrar", data={"username": "ana", "password": PASSWORD,
                                                 "csrf_token": csrf_of(form.text)},
                                headers={"origin": "https://evil.example"})
        assert cross.status_code == 403
        assert "blingsync_session" not in http.cookies
    assert await world.session_rows() == []


# --- escaping, messages and headers ----------------------------------------------------------------


async def test_what_the_sign_in_form_echoes_is_escaped(world: Ui) -> None:
    async with world.client() as http:
        form = await http.get("/entrar", params={"next": "/x" + XSS})
        assert_escaped(form.text)
        r = await http.post("/entrar", data={"username": XSS, "password": "qualquer-coisa",
                                             "next": "/" + XSS, "csrf_token": csrf_of(form.text)})
        assert r.status_code == 401
        assert_escaped(r.text)
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in r.text  # shown back, as text


async def test_a_flash_is_shown_once_and_escaped(world: Ui) -> None:
    async with world.client() as http:
        await sign_in(http, "ana", PASSWORD)
        token = csrf_of((await http.get("/_sonda")).text)
        r = await http.post("/_sonda/aviso", params={"text": XSS}, data={"csrf_token": token})
        assert r.status_code == 303
        page = await http.get("/_sonda")
        assert 'class="flash flash--warn"' in page.text
        assert "Conectado como &#34;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;" in page.text
        assert_escaped(page.text)
        assert "flash--warn" not in (await http.get("/_sonda")).text


async def test_pages_errors_and_redirects_carry_the_security_headers(world: Ui) -> None:
    async with world.client() as http:
        answers = [await http.get("/entrar"), await http.get("/"), await http.get("/_sonda"),
                   await http.get("/nao-existe", headers={"accept": "text/html"}),
                   await http.get("/static/app.css")]
        for r in answers:
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, r.url
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
        assert answers[1].status_code == 303 and answers[1].headers["location"] == "/contas"
        missing = answers[3]
        assert missing.status_code == 404 and "Página não encontrada" in missing.text
        assert missing.headers["content-type"].startswith("text/html")
        api = await http.get("/api/v1/nao-existe")  # the API keeps its JSON and its own headers
        assert api.status_code in (401, 404) and api.headers["content-type"] == "application/json"
        assert "content-security-policy" not in api.headers


async def test_create_app_installs_the_error_pages_and_headers(tmp_path: Path, db_url: str) -> None:
    """`create_app` itself (not the test's `ui.install`) gives browsers the pt-BR pages."""
    async with Service.open(make_settings(tmp_path, db_url), warn=lambda _: None) as service:
        app = create_app(service)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
            r = await http.get("/nao-existe", headers={"accept": "text/html"})
        assert getattr(app.state, "ui_installed", False), "create_app must call ui.install(app)"
        assert r.status_code == 404 and "Página não encontrada" in r.text


async def test_signed_in_client_helper_signs_in_through_the_form(world: Ui) -> None:
    http = await signed_in_client(world.app, world.service.store)
    try:
        page = await http.get("/_sonda")
        assert page.status_code == 200 and csrf_of(page.text)
        assert (await http.post("/_sonda/acao", data={"csrf_token": csrf_of(page.text)})).status_code == 303
    finally:
        await http.aclose()
    assert OPERATOR_PASSWORD not in page.text


# --- the catalogue -------------------------------------------------------------------------------


def test_the_formats_are_pt_br() -> None:
    from datetime import UTC, date, datetime
    from decimal import Decimal

    assert i18n.money(Decimal("1234.5")) == "R$\u00a01.234,50"
    assert i18n.money(Decimal("-0.5")) == "-R$\u00a00,50"
    assert i18n.money(None) == "—"
    assert i18n.number_br(1234567) == "1.234.567"
    assert i18n.number_br(Decimal("1234.125"), 2) == "1.234,13"
    assert i18n.number_br(Decimal("0.10")) == "0,10"
    assert i18n.number_br("x") == "—"
    assert i18n.datetime_br(datetime(2026, 11, 20, 13, 5, tzinfo=UTC)) == "20/11/2026 10:05"
    assert i18n.date_br(datetime(2026, 11, 21, 1, 0, tzinfo=UTC)) == "20/11/2026"
    assert i18n.date_br(date(2026, 1, 2)) == "02/01/2026"
    assert i18n.t("nav.signed_in_as", username="<b>") == "Conectado como <b>"  # escaping is the page's
    assert i18n.t("nav.signed_in_as") == "Conectado como {username}"
    assert i18n.t("no.such.key") == "no.such.key"


def test_the_catalogue_loads_and_refuses_a_key_defined_twice(tmp_path: Path) -> None:
    assert i18n.load_catalogue()  # every pt_BR file parses, no key twice
    (tmp_path / "pt_BR.a.json").write_text('{"x": {"y": "um"}}')
    (tmp_path / "pt_BR.b.json").write_text('{"x.y": "dois"}')
    with pytest.raises(i18n.CatalogueError, match="defined twice"):
        i18n.load_catalogue(directory=tmp_path)


_KEY_IN_TEMPLATE = re.compile(r"""\bt\(\s*["']([^"']+)["']\s*([,)~])""")
_KEY_LITERAL = re.compile(r"""["']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)["']""")


def test_every_message_key_the_dashboard_uses_exists() -> None:
    """Templates: every `t("key")`, and for a key built from parts (`t("a.b." ~ x)`), that some
    key starts with the literal part. Python modules of the dashboard: every string literal
    shaped like a key of an area the catalogue has (`accounts.badge.ok`), or the stem of such keys."""
    catalogue = i18n.load_catalogue()
    areas = {key.split(".", 1)[0] for key in catalogue}

    def known(key: str, *, stem: bool) -> bool:
        return key in catalogue or (stem and any(k.startswith(key) for k in catalogue))

    missing: set[str] = set()
    for template in ui.TEMPLATES_DIR.rglob("*.html"):
        for key, after in _KEY_IN_TEMPLATE.findall(template.read_text(encoding="utf-8")):
            if not known(key, stem=after == "~"):
                missing.add(f"{template.relative_to(ui.TEMPLATES_DIR)}: {key}")
    for module in Path(ui.__file__).parent.glob("*.py"):
        if module.name == "i18n.py":  # its docstring's examples
            continue
        for key in _KEY_LITERAL.findall(module.read_text(encoding="utf-8")):
            if key.split(".", 1)[0] in areas and not key.endswith((".html", ".json", ".css", ".js")) \
                    and not known(key, stem=False) and not known(key + ".", stem=True):
                missing.add(f"{module.name}: {key}")
    assert not missing, "keys missing from web/ui/messages/pt_BR.*.json:\n" + "\n".join(sorted(missing))


# --- the CLI --------------------------------------------------------------------------------------


def blingsync(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BLINGSYNC_DATA_DIR": str(data_dir), "BLINGSYNC_SECRET_KEY": "", "COLUMNS": "200"}
    env.pop("BLINGSYNC_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-c", "from blingsync.cli import main; main()", *args],
                          env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False)


async def test_the_users_cli_creates_lists_disables_and_resets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    short = blingsync(data, "users", "create", "--username", "ana", "--password-stdin", stdin="curta\n")
    assert short.returncode == 2 and "A senha deve ter pelo menos 10 caracteres." in short.stderr
    differ = blingsync(data, "users", "create", "--username", "ana", stdin=f"{PASSWORD}\noutra-coisa-1\n")
    assert differ.returncode == 2 and "As senhas não conferem." in differ.stderr
    created = blingsync(data, "users", "create", "--username", "ana", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert created.returncode == 0, created.stderr
    assert "created operator ana" in created.stdout and PASSWORD not in created.stdout + created.stderr
    again = blingsync(data, "users", "create", "--username", "ana", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = blingsync(data, "users", "create", "--username", "a b", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert bad.returncode == 2
    listed = blingsync(data, "users", "list")
    assert listed.returncode == 0 and "ana" in listed.stdout and "never" in listed.stdout
    assert "active" in listed.stdout

    db_url = f"sqlite+aiosqlite:///{data / 'blingsync.db'}"
    async with open_ui(tmp_path, db_url) as opened, opened.client() as http:
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 303
        assert (await http.get("/_sonda")).status_code == 200
        reset = blingsync(data, "users", "password", "ana", "--password-stdin", stdin="nova-senha-longa\n")
        assert reset.returncode == 0, reset.stderr
        assert (await http.get("/_sonda")).status_code == 303  # signed out everywhere
        assert (await sign_in(http, "ana", "nova-senha-longa")).status_code == 303
        disabled = blingsync(data, "users", "disable", "ana")
        assert disabled.returncode == 0 and "disabled" in disabled.stdout
        assert (await http.get("/_sonda")).status_code == 303
        assert (await sign_in(http, "ana", "nova-senha-longa")).status_code == 401
    listed = blingsync(data, "users", "list")
    assert "disabled" in listed.stdout and "never" not in listed.stdout
    missing = blingsync(data, "users", "disable", "ninguem")
    assert missing.returncode == 3 and "no operator named 'ninguem'" in missing.stderr
