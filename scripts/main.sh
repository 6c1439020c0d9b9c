#!/usr/bin/env bash
# The main job (for now): score responses on the shipped IFEval prompts with mapl's evaluator.
# Until generation lands, the responses are the instruction-blind HH-RLHF baseline (see README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1
.venv/bin/mapl baseline-responses --out .mapl/eval/hh_baseline.jsonl
.venv/bin/mapl evaluate-responses --prompts ../shared/data/ifeval/input_data.jsonl \
  --responses .mapl/eval/hh_baseline.jsonl --out .mapl/eval/hh_baseline
