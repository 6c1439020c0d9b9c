#!/usr/bin/env bash
# On the GPU machine, from the repository root, with .gpu/ made by prepare.sh beside the working tree:
# installs the carried wheels over the machine's torch, then runs the training tests and bench_train.py on
# the GPU. Everything printed is also written to $OUT (or ./gpu_check_out).
set -uo pipefail
out=${OUT:-gpu_check_out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export MAPL_SHARED_DATA=$PWD/.gpu/shared_data MAPL_TEST_TABLES=$PWD/.gpu/tables NLTK_DATA=$PWD/.gpu/shared_data/nltk_data
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -m pip list 2>/dev/null | grep -i -E "^(torch|pyarrow|pandas|numpy|accelerate|safetensors) "
  python3 -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'transformers', transformers.__version__, 'trl', trl.__version__)"
} 2>&1 | tee "$out/env.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_training_rm.py tests/test_training_dpo.py "$@" 2>&1 \
  | tee "$out/tests.txt"
for precision in "" --bf16; do
  python3 benchmarks/bench_train.py --random-init $precision --rm-model .gpu/models/minilm \
    --dpo-model .gpu/models/smollm2 --pairs 512 --rm-steps 100 --rm-batch 32 --dpo-steps 32 --dpo-batch 8 \
    2>"$out/bench_train${precision:+_bf16}.log" | grep -v "^{" | tee "$out/bench_train${precision:+_bf16}.md"
done
