#!/usr/bin/env bash
# Runs `blingsync demo` after making sure the project is installed in .venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/blingsync" demo "$@"
