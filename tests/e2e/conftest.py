"""What the browser tests share: Debian's Chromium driven by Playwright, launched as
`blingsync.simulator.chromium` says (the screenshots launch it the same way).

Without Chromium, or without Playwright, the browser tests skip and say so (`needs_chromium`).
Every page opens as a Brazilian operator's browser would: Chromium in pt-BR and each context in
the pt-BR locale and America/Sao_Paulo's time zone (`CONTEXT`), unless a test asks for another."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from blingsync.simulator.chromium import CHROMIUM, CHROMIUM_ARGS, CONTEXT, INSTALL, chromium_env

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page


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
                                                    headless=True, env=chromium_env())
        try:
            yield _in_brazil(launched)
        finally:
            await launched.close()
