#!/usr/bin/env bash
# Runs wasup on its embedded WhatsApp Web simulator, installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wasup run --config conf/demo.yaml "$@"
