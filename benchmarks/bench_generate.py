"""Output tokens/s: vLLM's offline engine against transformers' batched `generate`, same model and prompts.

Both run greedy decoding with a fixed number of new tokens (EOS ignored) on the same IFEval prompts, in one
run; start-up (model load, engine start) is reported separately from generation. vLLM runs twice, each in its
own process: with vLLM's own CPU threads (one core kept for its scheduler) and with mapl's
(`mapl_core.generation.cpu_threads`: every usable CPU computes), unless the environment already names them.

    .venv/bin/python benchmarks/bench_generate.py [--model default] [--batch 64] [--new-tokens 96]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date

from mapl_core.generation.default_model import resolve_model
from mapl_core.generation.responses import read_prompts
from mapl_core.paths import shared_data_dir


def run_transformers(model: str, prompts: list[str], new_tokens: int) -> tuple[float, float, int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model, padding_side="left")
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    startup = time.perf_counter() - t0
    texts = [
        tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
        for p in prompts
    ]
    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = lm.generate(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                          pad_token_id=tok.pad_token_id or tok.eos_token_id)  # fmt: skip
    seconds = time.perf_counter() - t0
    return startup, seconds, int((out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0])


def run_vllm(model: str, prompts: list[str], new_tokens: int) -> tuple[float, float, int]:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs to stdout; keep the table readable
    t0 = time.perf_counter()
    from vllm import LLM, SamplingParams

    llm = LLM(model=model, dtype="float32", enforce_eager=True, seed=0, max_model_len=2048)
    startup = time.perf_counter() - t0
    params = SamplingParams(max_tokens=new_tokens, min_tokens=new_tokens, temperature=0.0, ignore_eos=True)
    convs = [[{"role": "user", "content": p}] for p in prompts]
    t0 = time.perf_counter()
    outputs = llm.chat(convs, params, use_tqdm=False)
    seconds = time.perf_counter() - t0
    return startup, seconds, sum(len(o.outputs[0].token_ids) for o in outputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=96)
    ap.add_argument("--vllm-only", action="store_true", help="internal: one vLLM run, its figures as JSON")
    args = ap.parse_args()
    model = resolve_model(args.model)
    prompts = [r["prompt"] for r in read_prompts(shared_data_dir() / "ifeval" / "input_data.jsonl")][
        : args.batch
    ]
    if args.vllm_only:
        print(json.dumps(run_vllm(model, prompts, args.new_tokens)))
        return
    from mapl_core.generation.cpu_threads import vllm_cpu_threads

    rows = {"transformers generate": run_transformers(model, prompts, args.new_tokens)}
    threads = vllm_cpu_threads()
    arms = {"vLLM offline engine, its own CPU threads": {}}
    if threads:
        arms[f"vLLM offline engine, mapl's CPU threads ({threads['VLLM_CPU_OMP_THREADS_BIND']})"] = threads
    for name, extra in arms.items():  # each in a process of its own: vLLM reads the variables at start
        argv = [sys.executable, __file__, "--vllm-only", "--model", args.model, "--batch", str(args.batch),
                "--new-tokens", str(args.new_tokens)]  # fmt: skip
        done = subprocess.run(argv, env={**os.environ, **extra}, capture_output=True, text=True, check=True)
        figures = next(line for line in reversed(done.stdout.splitlines()) if line.startswith("["))
        rows[name] = tuple(json.loads(figures))  # vLLM logs to stdout too, some of it after the figures
    base = rows["transformers generate"][2] / rows["transformers generate"][1]
    cores = os.cpu_count() or 1
    print(f"# bench_generate — {date.today()} — {platform.machine()}, {cores} cores, model {args.model}, "
          f"batch {args.batch}, {args.new_tokens} new tokens, greedy")  # fmt: skip
    print()
    print("| engine | start-up s | generation s | output tokens | tokens/s | tokens/s per core | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (startup, seconds, tokens) in rows.items():
        rate = tokens / seconds
        print(
            f"| {name} | {startup:.1f} | {seconds:.1f} | {tokens} | {rate:.1f} | {rate / cores:.1f} | {rate / base:.2f}× |"
        )


if __name__ == "__main__":
    main()
