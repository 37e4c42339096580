#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/pytest "$@"
