#!/usr/bin/env bash
# Sets up (scripts/bootstrap.sh) and runs the checks: ruff, then the test suite on both cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q -p no:cacheprovider -n 2 "$@"
