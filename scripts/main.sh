#!/usr/bin/env bash
# The main job (for now): build MAPL tables from the shipped HH-RLHF split, then score responses on the
# shipped IFEval prompts. Until generation lands, the responses are the instruction-blind HH-RLHF baseline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1
.venv/bin/mapl build --config configs/build_hh_small.yaml --workers 2
.venv/bin/mapl datasets list
.venv/bin/mapl baseline-responses --out .mapl/eval/hh_baseline.jsonl
.venv/bin/mapl evaluate-responses --prompts ../shared/data/ifeval/input_data.jsonl \
  --responses .mapl/eval/hh_baseline.jsonl --out .mapl/eval/hh_baseline
