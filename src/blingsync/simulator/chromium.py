"""Debian's Chromium as the browser tests (`tests/e2e`, the CSP check) and the screenshots
(`scripts/screenshots.py`) launch it: one definition, so the pages checked and the pages shown
are rendered by the same browser in the same language. Development tooling shipped beside the
simulator's launcher (`simulator/process.py`) for the same reason: scripts and tests share it.

Playwright never downloads a browser here (no `playwright install`): it launches the binary that
`bash scripts/bootstrap.sh` installs from Debian (`chromium`, `chromium-l10n`).

A Brazilian operator's browser: Chromium's UI language pt-BR, which on Linux comes from the
LANGUAGE variable, not from `--lang` (with chromium-l10n's pack a date field reads dd/mm/aaaa),
and every context in the pt-BR locale and America/Sao_Paulo's time zone."""

from __future__ import annotations

import os
from typing import Any, Final

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--lang=pt-BR")
PT_BR_PAK: Final = "/usr/lib/chromium/locales/pt-BR.pak"
"""Chromium's pt-BR language pack (Debian's chromium-l10n): without it the browser is in English."""
CONTEXT: Final[dict[str, Any]] = {"locale": "pt-BR", "timezone_id": "America/Sao_Paulo"}
"""What a browser context opens with: the operator's locale and time zone."""
INSTALL: Final = ("bash scripts/bootstrap.sh as root "
                  "(it runs: apt-get install chromium chromium-driver chromium-l10n)")


def chromium_env() -> dict[str, str | float | bool]:
    """Chromium's environment: ours, with its language pt-BR."""
    return {**os.environ, "LANGUAGE": "pt_BR"}
