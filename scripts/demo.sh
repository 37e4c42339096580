#!/usr/bin/env bash
# Runs wasup on its embedded WhatsApp Web simulator, installing what is missing first.
# Open http://127.0.0.1:8080/ for the status page. Control routes need an API key: unless
# WASUP_API_KEY is set already, the demo uses "demo" (loopback only; never in production).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WASUP_API_KEY="${WASUP_API_KEY:-demo}"
echo "demo: status page http://127.0.0.1:8080/ ; API key for control routes: \$WASUP_API_KEY" >&2
exec .venv/bin/wasup run --config conf/demo.yaml "$@"
