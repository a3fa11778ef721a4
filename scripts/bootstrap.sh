#!/usr/bin/env bash
# Creates .venv with the project and its dev dependencies, once per pyproject change.
# Needs only a Python 3.11+ on PATH (as python3) and access to PyPI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
venv="$root/.venv"
stamp="$venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
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
