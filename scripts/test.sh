#!/usr/bin/env bash
# The whole test suite: lint, type check, tests. Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
bin="$root/.venv/bin"
echo "== ruff"
"$bin/ruff" check src tests bench
echo "== mypy (strict, src/)"
"$bin/mypy"
echo "== pytest"
"$bin/python" -m pytest "$@"
