"""The browser the e2e tests drive reads like a Brazilian operator's: pt-BR and São Paulo time,
for every context and page the `browser` fixture opens (and a test may still ask for another),
and a date field in the order people write dates here, dd/mm/aaaa."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from blingsync.simulator.chromium import PT_BR_PAK
from tests.e2e.conftest import needs_chromium

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = needs_chromium

PROBE = """() => ({
    language: navigator.language,
    zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    epoch: new Date(0).toLocaleString(),
})"""


async def probe(page: Page) -> dict[str, str]:
    await page.set_content("<!doctype html><html lang='pt-BR'><body><input type='date'></body></html>")
    found: dict[str, str] = await page.evaluate(PROBE)
    return found


async def test_pages_and_contexts_open_in_pt_br_and_sao_paulo_time(browser: Browser) -> None:
    expected = {"language": "pt-BR", "zone": "America/Sao_Paulo", "epoch": "31/12/1969, 21:00:00"}
    assert await probe(await browser.new_page()) == expected
    context = await browser.new_context(viewport={"width": 375, "height": 800})
    assert await probe(await context.new_page()) == expected
    other = await browser.new_context(locale="en-US", timezone_id="UTC")
    assert await probe(await other.new_page()) == {"language": "en-US", "zone": "UTC",
                                                    "epoch": "1/1/1970, 12:00:00 AM"}


@pytest.mark.skipif(not os.path.exists(PT_BR_PAK),
                    reason=f"{PT_BR_PAK} is missing: bash scripts/bootstrap.sh (as root) installs it")
async def test_a_date_field_reads_day_month_year(browser: Browser) -> None:
    """What the operator sees in Pedidos' "Emitida de": dd/mm/aaaa, not mm/dd/yyyy (the field's
    parts, in order, as the accessibility tree names them)."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.set_content("<!doctype html><html lang='pt-BR'><body><input type='date'></body></html>")
    session = await context.new_cdp_session(page)
    tree = await session.send("Accessibility.getFullAXTree")
    parts = [node.get("name", {}).get("value", "").split()[0] for node in tree["nodes"]
             if node.get("role", {}).get("value") == "spinbutton"]
    assert parts == ["Dia", "Mês", "Ano"]
