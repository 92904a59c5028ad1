#!/usr/bin/env bash
# Set up (first time only) and start Offline Coder. Arguments go to `python -m app`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m app "$@"
