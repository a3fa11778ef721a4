"""What the browser tests share: Debian's Chromium driven by Playwright, and a free port.

Playwright never downloads a browser here (no `playwright install`): it launches
/usr/bin/chromium, which `bash scripts/bootstrap.sh` installs from Debian's packages when it runs
as root. Without it, or without Playwright, the browser tests skip and say so (`needs_chromium`).

Every page opens as a Brazilian operator's browser would: Chromium in pt-BR (on Linux its
language is LANGUAGE's, and with its language packs, chromium-l10n, a date field reads
dd/mm/aaaa) and each context in the pt-BR locale and America/Sao_Paulo's time zone, unless a
test asks for another."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--lang=pt-BR"]
PT_BR_PAK = "/usr/lib/chromium/locales/pt-BR.pak"
"""Chromium's pt-BR language pack (Debian's chromium-l10n): without it the browser is in English."""
CONTEXT: dict[str, Any] = {"locale": "pt-BR", "timezone_id": "America/Sao_Paulo"}
"""What every browser context of these tests opens with, unless the test says otherwise."""
INSTALL = ("bash scripts/bootstrap.sh as root "
           "(it runs: apt-get install chromium chromium-driver chromium-l10n)")


def _missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:  # pragma: no cover - the dev dependencies include it
        return "playwright is not installed: pip install -e '.[dev]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: install it with {INSTALL}"
    return None


MISSING = _missing()
needs_chromium = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
"""Put on a browser test module: `pytestmark = needs_chromium`."""


def browser_env() -> dict[str, str | float | bool]:
    """Chromium's environment: ours, with its language pt-BR (Chromium on Linux takes its UI
    language, and the order of a date field's parts, from LANGUAGE, not from --lang)."""
    return {**os.environ, "LANGUAGE": "pt_BR"}


def _in_brazil(launched: Browser) -> Browser:
    """`launched`, whose `new_context` and `new_page` take `CONTEXT` as their defaults."""
    new_context, new_page = launched.new_context, launched.new_page

    async def context_in_brazil(**options: Any) -> BrowserContext:
        return await new_context(**{**CONTEXT, **options})

    async def page_in_brazil(**options: Any) -> Page:
        return await new_page(**{**CONTEXT, **options})

    launched.new_context = context_in_brazil  # type: ignore[method-assign]
    launched.new_page = page_in_brazil  # type: ignore[method-assign]
    return launched


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for one test, closed after it; its contexts and pages in pt-BR and
    America/Sao_Paulo (`CONTEXT`)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                    headless=True, env=browser_env())
        try:
            yield _in_brazil(launched)
        finally:
            await launched.close()
