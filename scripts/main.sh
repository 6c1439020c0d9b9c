#!/usr/bin/env bash
# The main job: set up, then `mapl run` — the whole MAPL pipeline on Prefect's embedded server with the
# data root ./.mapl, the default models, the shipped HH-RLHF split and IFEval prompts, and small step counts
# (configs/pipeline_small.yaml). A second run is served from the cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1
.venv/bin/mapl run "$@"
