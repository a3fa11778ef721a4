#!/usr/bin/env bash
# Creates .venv with the project and its dev dependencies, once per pyproject change.
# Needs only a Python 3.11+ on PATH (as python3) and access to PyPI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-}"
if [ -z "$py" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            py="$candidate"
            break
        fi
    done
fi
if [ -z "$py" ]; then
    echo "error: blingsync needs Python 3.11 or newer; none found on PATH (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
venv="$root/.venv"
stamp="$venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
    if ! "$py" -m venv "$venv"; then
        rm -rf "$venv"
        echo "error: '$py -m venv' failed; on Debian/Ubuntu install the python3-venv package" >&2
        exit 1
    fi
fi
if [ ! -f "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
# The third-party JavaScript client that tests/thirdparty drives against the simulator. Optional:
# without npm, or if the install fails, those tests skip and say which command installs it.
js="$root/tests/thirdparty"
if command -v npm >/dev/null 2>&1 && [ -f "$js/package-lock.json" ] &&
    { [ ! -d "$js/node_modules/bling-erp-api" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; }; then
    if ! npm ci --silent --no-audit --no-fund --prefix "$js"; then
        echo "warning: npm ci in tests/thirdparty failed; the bling-erp-api test will skip" >&2
    fi
fi
# Debian's Chromium for the browser tests (tests/e2e): Playwright launches /usr/bin/chromium and
# never downloads a browser of its own; with its language packs (chromium-l10n), so that a date
# field reads dd/mm/aaaa in pt-BR (without them Chromium draws mm/dd/yyyy whatever the page's
# language). Optional and never fatal: installed only as root on a system with apt-get; otherwise,
# or if the install fails, the browser tests skip and name this script (and without the language
# packs only the date fields of the screenshots look American).
l10n_missing() { ! dpkg-query -W -f='${Status}' chromium-l10n 2>/dev/null | grep -q "ok installed"; }
if { [ ! -x /usr/bin/chromium ] || l10n_missing; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
    }
    apt_install_updating() { apt_install "$@" || { apt-get update -qq >/dev/null 2>&1 && apt_install "$@"; }; }
    if [ ! -x /usr/bin/chromium ] && ! apt_install_updating chromium chromium-driver; then
        echo "warning: apt-get install chromium chromium-driver failed; the browser tests (tests/e2e) will skip" >&2
    fi
    if [ -x /usr/bin/chromium ] && l10n_missing && ! apt_install_updating chromium-l10n; then
        echo "warning: apt-get install chromium-l10n failed; Chromium's date fields will read mm/dd/yyyy" >&2
    fi
fi
