#!/usr/bin/env bash
# Static checks, as the test command and the git hooks run them: lint (with the complexity rule,
# C901 at 15), format, types (core/, ui/, app_pages/, app.py).
#   scripts/check.sh          check only (exit 1 on any finding)
#   scripts/check.sh --fix    fix what ruff can fix and reformat, then check
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[check]\033[0m %s\n' "$*"; }
if [ "${1:-}" = "--fix" ]; then
  .venv/bin/ruff check --fix .
  .venv/bin/ruff format .
fi
say "ruff check"
.venv/bin/ruff check .
say "ruff format --check"
.venv/bin/ruff format --check .
say "mypy (core/, ui/, app_pages/, app.py)"
.venv/bin/mypy
