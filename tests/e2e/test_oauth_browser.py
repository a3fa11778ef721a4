"""OAuth connect end to end in a real browser: Debian's Chromium, driven by Playwright, opens the
connect link, signs in to the simulated Bling (a separate `blingsync simulator` process), clicks
"Autorizar" on its consent page and lands on our callback page, served by a real uvicorn. Then
the account must be in the database with its tokens encrypted, and a sync must import its orders.

Bling and blingsync are on different sites here (`localhost` vs `127.0.0.1`), as in production,
so the session cookie has to survive a cross-site round trip (SameSite=Lax) for this to pass.

The browser is Debian's Chromium, never a downloaded one (`tests/e2e/conftest.py`); without it
these tests skip and say so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.config import Settings
from blingsync.domain import OrderStatus
from blingsync.service import Service
from blingsync.store.records import AccountSettings, V3Credentials
from blingsync.store.tables import accounts
from blingsync.web.app import create_app
from blingsync.web.oauth import connect_link
from tests.conftest import simulator_process
from tests.e2e.conftest import needs_chromium
from tests.ui_support import free_port, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = needs_chromium


@dataclass(frozen=True)
class Bling:
    """The simulator process as the browser and the service reach it (another site: localhost)."""

    base: str
    client_id: str
    client_secret: str
    danfe_notes: int  # NF-e de saída at Emitida DANFE: what a full first import must bring


@pytest.fixture(scope="module")
def public_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def bling(public_port: int) -> Iterator[Bling]:
    with simulator_process("--accounts", "1", "--invoices", "40", "--no-rate-limit", "--seed", "11") as base:
        account = httpx.get(f"{base}/_sim/accounts", timeout=10).json()["accounts"][0]
        client = account["clients"][0]
        # The app's one registered redirect URI, as the warehouse sets it in Bling's portal.
        r = httpx.patch(f"{base}/_sim/clients/{client['client_id']}", timeout=10,
                        json={"redirect_uri": f"http://127.0.0.1:{public_port}/oauth/bling/callback"})
        r.raise_for_status()
        yield Bling(base.replace("127.0.0.1", "localhost"), client["client_id"], client["client_secret"],
                    account["notes"].get("nfe:saida:EMITIDA_DANFE", 0))


@pytest.fixture
async def service(bling: Bling, public_port: int, tmp_path: Path) -> AsyncIterator[Service]:
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'blingsync.db'}", secret_key=None,
        bling_url=f"{bling.base}/Api/v3", bling_v2_url=f"{bling.base}/Api/v2",
        public_url=f"http://127.0.0.1:{public_port}", oauth_client_id=bling.client_id,
        oauth_client_secret=bling.client_secret, requests_per_second=1000)
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))
    async with Service.open(settings, warn=lambda _: None, registry=registry) as opened, \
            serving(create_app(opened), public_port):
        yield opened


async def test_a_brand_connects_in_the_browser_and_its_orders_are_imported(
        service: Service, browser: Browser, bling: Bling, tmp_path: Path) -> None:
    name = "Moda Exemplo"
    link = await connect_link(service, name, settings=AccountSettings(initial_lookback_days=120))
    page = await browser.new_page()
    await page.goto(link.url)
    await page.get_by_role("button", name="Continuar no Bling").click()
    await page.wait_for_url("**/oauth/authorize?**")
    assert page.url.startswith(f"{bling.base}/Api/v3/oauth/authorize?")  # at Bling, signed in
    await page.get_by_role("button", name="Autorizar").click()
    await page.wait_for_url("**/oauth/bling/callback?**")
    heading = await page.locator("h1").inner_text()
    body = await page.locator("main").inner_text()
    shot = tmp_path / "oauth-connected.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"result page: {shot}")
    assert heading == "Conta conectada ao Bling"
    assert f"A conta “{name}” está conectada" in body
    assert "Notas Fiscais" in body and "falta" not in body
    assert shot.stat().st_size > 0
    assert await page.context.cookies() == []  # the session cookie went with the attempt

    account = await service.store.account(name)
    credentials = await service.store.credentials(account.id)
    assert isinstance(credentials, V3Credentials) and credentials.tokens is not None
    async with service.store.engine.connect() as conn:
        blob: Any = (await conn.execute(
            select(accounts.c.credentials).where(accounts.c.id == account.id))).scalar_one()
    assert credentials.tokens.refresh_token.reveal().encode() not in blob
    assert credentials.tokens.access_token.reveal().encode()[:40] not in blob

    [outcome] = await service.sync([name])
    assert outcome.report is not None and outcome.report.error is None, outcome.report
    assert bling.danfe_notes > 0
    ready = await service.store.count_orders(account_id=account.id, status=OrderStatus.READY)
    assert ready == bling.danfe_notes


async def test_a_brand_that_clicks_cancel_is_told_and_nothing_is_stored(
        service: Service, browser: Browser, tmp_path: Path) -> None:
    link = await connect_link(service, "Outra Marca")
    page = await browser.new_page()
    await page.goto(link.url)
    await page.get_by_role("button", name="Continuar no Bling").click()
    await page.get_by_role("button", name="Cancelar").click()
    await page.wait_for_url("**/oauth/bling/callback?**")
    await page.screenshot(path=str(tmp_path / "oauth-denied.png"))
    assert await page.locator("h1").inner_text() == "Autorização cancelada"
    assert await page.get_by_role("link", name="Tentar de novo").count() == 1
    assert await service.store.accounts() == []
