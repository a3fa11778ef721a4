"""What the browser tests share: Debian's Chromium driven by Playwright, and a free port.

Playwright never downloads a browser here (no `playwright install`): it launches
/usr/bin/chromium, which `bash scripts/bootstrap.sh` installs from Debian's packages when it runs
as root. Without it, or without Playwright, the browser tests skip and say so (`needs_chromium`)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL = "bash scripts/bootstrap.sh as root (it runs: apt-get install chromium chromium-driver)"


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for one test, closed after it."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                    headless=True)
        try:
            yield launched
        finally:
            await launched.close()
