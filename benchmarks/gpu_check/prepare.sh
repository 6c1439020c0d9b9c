#!/usr/bin/env bash
# Fills .gpu/ (git-ignored through .git/info/exclude) with what a GPU machine that has Python 3.12, torch and
# no internet needs to run the training tests and bench_train.py on its GPU (run.sh): wheels of the training
# stack at the lock's versions, Parquet exports of the tests' build, the shared data, and the two default
# models' configs and tokenizers (no weights: bench_train --random-init). About 30 MB; deltalake (52 MB) and
# the weights are left behind, which is why the tables travel as Parquet and the models as configs.
#   bash benchmarks/gpu_check/prepare.sh        # then send .gpu with the working tree, run run.sh there
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
py=.venv/bin/python
out=.gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.gpu/' >>.git/info/exclude; }
rm -rf "$out" && mkdir -p "$out/whl" "$out/tables" "$out/models"

pin() { grep -i -m1 "^$1==" requirements/lock-cpu.txt; }
platforms=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
# the lock's pins of what mapl's training imports, and of their needs that such a machine lacks or has older
for name in trl transformers tokenizers huggingface_hub hf-xet httpx2 httpcore2 truststore h11 anyio idna \
  certifi click datasets dill multiprocess fsspec pydantic pydantic_core annotated-types typing-inspection \
  typing_extensions nltk defusedxml regex peft httpx; do
  "$py" -m pip download -q --no-deps --only-binary=:all: "${platforms[@]}" -d "$out/whl" "$(pin "$name")"
done
"$py" -m pip wheel -q --no-deps -w "$out/whl" "$(pin langdetect)"  # an sdist only

"$py" - "$out" <<'PY'
import shutil
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, "tests")
from conftest import build_training_tables  # noqa: E402

from mapl_core.paths import shared_data_dir  # noqa: E402
from mapl_core.training.run import TABLE_KINDS, resolve_training_model  # noqa: E402

out = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:  # the build of tests/conftest.py's `tables` fixture
    store = build_training_tables(Path(tmp))
    for kind in TABLE_KINDS:
        pq.write_table(store.read(f"t_{kind}"), out / "tables" / f"{kind}.parquet")
shutil.copytree(shared_data_dir(), out / "shared_data")
for kind, name in (("rm", "minilm"), ("dpo", "smollm2")):
    src = Path(resolve_training_model("default", kind))
    (out / "models" / name).mkdir()
    for f in src.iterdir():
        if f.is_file() and f.suffix in (".json", ".txt", ".jinja", ".model"):
            shutil.copy2(f, out / "models" / name / f.name)
PY
du -sh "$out"
