"""Sessions and the live regions in a real browser: Debian's Chromium, driven by Playwright,
against the app on uvicorn, the service on a clock the test moves. The Contas page refreshes its
table every 10 s; those background requests must not keep the session alive, and once the
session has ended the page must go to the sign-in form by itself (HTMX following
`HX-Redirect`), which brings the operator back to the page after signing in.

The browser is Debian's Chromium, never a downloaded one (`tests/e2e/conftest.py`); without it
this test skips and says so."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from blingsync.config import Settings
from blingsync.service import Service
from blingsync.store.tables import ui_sessions
from blingsync.web.app import create_app
from tests.e2e.conftest import needs_chromium
from tests.integration.store_fixtures import Clock
from tests.ui_support import free_port, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = needs_chromium

PASSWORD = "senha-da-operadora-1"
POLL_WAIT_MS = 15_000
"""The table refreshes every 10 s: a poll (or the redirect it causes) comes within this."""


@dataclass(frozen=True)
class Served:
    service: Service
    clock: Clock
    url: str

    async def session_expiry(self) -> object:
        async with self.service.store.engine.connect() as conn:
            return (await conn.execute(select(ui_sessions.c.expires_at))).scalar_one()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'blingsync.db'}",
                        secret_key=None, bling_url="http://127.0.0.1:9/Api/v3",
                        bling_v2_url="http://127.0.0.1:9/Api/v2", public_url=url)
    clock = Clock()
    async with Service.open(settings, warn=lambda _: None, now=clock) as service, \
            serving(create_app(service), port):
        yield Served(service, clock, url)


async def sign_in(page: Page) -> None:
    await page.get_by_label("Usuário").fill("ana")
    await page.get_by_label("Senha").fill(PASSWORD)
    await page.get_by_role("button", name="Entrar").click()


async def test_a_polling_page_left_idle_signs_out_by_itself_and_returns_after_sign_in(
        served: Served, browser: Browser, tmp_path: Path) -> None:
    await served.service.store.create_user("ana", PASSWORD)
    page = await browser.new_page()
    await page.goto(f"{served.url}/contas")
    await page.wait_for_url(re.compile(r"/entrar\?next=/contas$"))
    await sign_in(page)
    await page.wait_for_url(re.compile(r"/contas$"))
    signed_in_until = await served.session_expiry()

    served.clock.advance(hours=11)  # idle, the tab open: the table keeps refreshing
    async with page.expect_response(lambda r: "/contas/_vivo" in r.url, timeout=POLL_WAIT_MS) as polled:
        pass
    poll = await polled.value
    assert poll.status in (200, 204)
    assert (await poll.request.all_headers()).get("x-blingsync-poll") == "1"
    assert await served.session_expiry() == signed_in_until  # the poll did not slide it

    served.clock.advance(hours=1, seconds=1)  # 12 hours idle: the next poll finds no session
    await page.wait_for_url(re.compile(r"/entrar\?next=/contas$"), timeout=POLL_WAIT_MS)
    await page.screenshot(path=str(tmp_path / "session-ended.png"))
    assert "Entre para continuar." in await page.locator("main").inner_text()
    await sign_in(page)
    await page.wait_for_url(re.compile(r"/contas$"))
    assert await served.session_expiry() == served.clock.now + timedelta(hours=12)
