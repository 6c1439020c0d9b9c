"""Generation: transformers and vLLM backends on a tiny real model, the resumable cache, the default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import HH_TEST, IFEVAL_PROMPTS

from mapl_core.generation.cache import GenerationCache
from mapl_core.generation.engines import SamplingConfig, TransformersGenerator
from mapl_core.generation.responses import generate_responses, read_prompts

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    {"prompt": p} for p in ("def add(a, b):", "import os", "class Foo:", "for i in range(3):", "print(")
]


def test_transformers_outputs_do_not_depend_on_the_batch(tiny: Path) -> None:
    gen = TransformersGenerator(str(tiny))
    params = SamplingConfig(max_new_tokens=12, temperature=0.9, seed=3)
    convs = [[{"role": "user", "content": p["prompt"]}] for p in PROMPTS]
    together = gen.generate(convs, params)
    alone = [gen.generate([c], params)[0] for c in reversed(convs)][::-1]
    assert together == alone
    assert len(set(together)) > 1 and all(isinstance(t, str) for t in together)
    other_seed = gen.generate(convs, SamplingConfig(max_new_tokens=12, temperature=0.9, seed=4))
    assert other_seed != together


def test_cache_resumes_and_survives_a_torn_line(tiny: Path, tmp_path: Path) -> None:
    gen = TransformersGenerator(str(tiny))
    params = SamplingConfig(max_new_tokens=8)
    cache_path = tmp_path / "cache.jsonl"
    cache = GenerationCache(cache_path)
    first = generate_responses(PROMPTS[:3], gen, params, cache, tmp_path / "a.jsonl", batch_size=2)
    cache.close()
    assert (first.generated, first.from_cache) == (3, 0)
    with cache_path.open("a") as fh:
        fh.write('{"key": "abc", "te')  # a crash in the middle of a write
    cache = GenerationCache(cache_path)
    second = generate_responses(PROMPTS, gen, params, cache, tmp_path / "b.jsonl", batch_size=2)
    cache.close()
    assert (second.generated, second.from_cache) == (2, 3)
    a = [json.loads(line)["response"] for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(line)["response"] for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert b[:3] == a


def test_read_prompts_accepts_ifeval_jsonl_and_text_lines(tmp_path: Path) -> None:
    rows = read_prompts(IFEVAL_PROMPTS)
    assert len(rows) == 541 and set(rows[0]) == {"key", "prompt"}
    (tmp_path / "p.txt").write_text("first prompt\n\nsecond prompt\n")
    assert read_prompts(tmp_path / "p.txt") == [{"prompt": "first prompt"}, {"prompt": "second prompt"}]


@pytest.mark.slow
def test_vllm_engine_generates_ifeval_responses_that_the_evaluator_scores(tiny: Path, tmp_path: Path) -> None:
    # Seeded sampling on a batch whose prompts (836 tokens with the tiny tokenizer) exceed one engine step's
    # budget (the tiny model's 512-token context): with chunked prefill, vLLM split a prompt across steps and
    # its CPU engine died rewinding the seeded generator ("CPU Generator does not use offset").
    # One prompt far longer than the model's context: vLLM refuses the whole batch for it, which failed the batch
    # again on every resume (issue 32). It is written with an empty response and its error; the rest generate.
    env = {**os.environ, "MAPL_DATA_ROOT": str(tmp_path / "root"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "responses.jsonl"
    prompts = tmp_path / "prompts.jsonl"
    lines = IFEVAL_PROMPTS.read_text().splitlines()[:6]
    overlong = {**json.loads(lines[0]), "key": 999_999, "prompt": "Describe this. " + "word " * 3000}
    prompts.write_text("\n".join([*lines[:3], json.dumps(overlong), *lines[3:]]) + "\n")
    cmd = [sys.executable, "-m", "mapl_cli.main", "generate", "--prompts", str(prompts), "--out", str(out),
           "--model", str(tiny), "--backend", "vllm", "--max-new-tokens", "16", "--temperature", "0.8"]  # fmt: skip
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "6 generated with vllm-" in first.stdout and "refused 1 prompt" in first.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and "key" in rows[0]
    assert rows[3]["response"] == "" and "maximum context length is 512" in rows[3]["error"]
    assert all(r["response"] and "error" not in r for r in rows[:3] + rows[4:])
    # a second run takes everything from the cache (and so gives the same text); the refused prompt is tried
    # once more, alone, and refused at once
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 generated" in again.stdout and "6 from the cache" in again.stdout
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    scored = subprocess.run([sys.executable, "-m", "mapl_cli.main", "evaluate-responses", "--prompts", str(prompts), "--responses", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert scored.returncode == 0 and "prompt-level accuracy" in scored.stdout


@pytest.fixture(scope="module")
def default_model(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, default model folder), converted once for this module's tests."""
    from mapl_core.generation.default_model import prepare_default_model

    root = tmp_path_factory.mktemp("default-root")
    # what failed conversions left before (issue 32): a half-written folder of the old naming, and a dead
    # writer's temporary; converting removes both
    models = root / "models"
    (models / ".smollm2-135m-instruct.0123456789abcdef0123456789abcdef").mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (models / f".smollm2-135m-instruct.{gone.stdout.strip()}.deadbeef.tmp").mkdir()
    return root, prepare_default_model(root)


@pytest.mark.slow
def test_default_model_is_converted_once_and_answers(default_model) -> None:
    from mapl_core.generation.default_model import prepare_default_model

    root, folder = default_model
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert sorted(p.name for p in folder.parent.iterdir()) == [".smollm2-135m-instruct.lock", folder.name]
    mtime = (folder / "model.safetensors").stat().st_mtime
    assert prepare_default_model(root) == folder and (folder / "model.safetensors").stat().st_mtime == mtime
    answer = TransformersGenerator(str(folder)).generate(
        [[{"role": "user", "content": "What is the capital of France?"}]], SamplingConfig(max_new_tokens=16)
    )
    assert "Paris" in answer[0]


@pytest.mark.slow
def test_build_with_default_model_proposals_records_them_and_reuses_the_cache(default_model) -> None:
    """The default model, served by vLLM, proposes words and end phrases; rows record which arguments came
    from it; the contracts pass; a rebuild takes every answer from the cache and gives the same tables."""
    from mapl_core.storage.delta_tables import DatasetStore

    root, folder = default_model
    env = {**os.environ, "MAPL_DATA_ROOT": str(root), "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "ERROR"}
    cmd = [sys.executable, "-m", "mapl_cli.main", "build", "--source", str(HH_TEST), "--limit", "16",
           "--name", "prop", "--propose-with", str(folder)]  # fmt: skip
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "model-proposed arguments" in first.stdout
    store = DatasetStore(root)
    intra, inter = store.to_pandas("prop_intra"), store.to_pandas("prop_inter")
    from_model = sum(
        list(s).count("model") for col in (intra.sources_w, intra.sources_l, inter.sources) for s in col
    )
    assert from_model >= 1
    meta = json.loads(store.versions("prop_intra")[-1].metadata["proposals"])
    assert meta["revision"] and meta["engine"].startswith("vllm-") and meta["generated"] == 32
    assert json.loads(store.versions("prop_intra")[-1].metadata["contract"])["success"] is True

    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    versions = store.versions("prop_intra")
    assert json.loads(versions[-1].metadata["proposals"])["generated"] == 0
    assert versions[-1].metadata["fingerprint"] == versions[-2].metadata["fingerprint"]


def test_model_revision_tells_fine_tunes_of_one_base_apart(tiny, tmp_path) -> None:
    """Same config, tokenizer and file sizes, different weights (a fine-tune saved like its base): the
    revision — part of every generation cache key — must differ, or one model's cached answers would be
    served for the other."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from mapl_core.generation.engines import model_revision

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(tiny, a)
    shutil.copytree(tiny, b)
    assert model_revision(str(a)) == model_revision(str(b))
    weights = b / "model.safetensors"
    tensors = load_file(weights)
    tensors = {k: v + 0.01 * torch.ones_like(v) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    assert weights.stat().st_size == (a / "model.safetensors").stat().st_size
    assert model_revision(str(a)) != model_revision(str(b))
