"""Training throughput: the MAPL trainers against TRL's stock trainers, same model, pairs and batch, one run.

Reward model (MiniLM-L6): `MaplRewardTrainer` vs `trl.RewardTrainer` on the same original HH pairs.
DPO (SmolLM2-135M-Instruct, or --dpo-model): `MaplDPOTrainer` vs `trl.DPOTrainer` (with its reference model
in memory, TRL's default), then a second MAPL-DPO run whose reference log-probs come from the on-disk cache.
Pairs/s counts original preference pairs (the MAPL trainers see exactly the stock trainers' data here).

    .venv/bin/python benchmarks/bench_train.py [--rm-steps 30] [--dpo-steps 4] [--pairs 64]

On a GPU the trainers run there (TRL's default); `--bf16` trains in bf16 mixed precision as the GPU recipes
do. `--random-init` draws the weights from each model's config instead of loading them: the same
architecture and the same work per step, for a machine that has the configs and tokenizers but not the
weights (a lent GPU machine without internet, benchmarks/gpu_check/). Its pairs/s are comparable; its
losses are not. On a GPU every trainer first runs a few untimed steps: the first CUDA run of a process pays
kernel selection and allocator growth, which would otherwise be billed to whichever trainer runs first.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

WARMUP_STEPS = 3


def original_pairs(n: int):
    from mapl_core.config import IngestConfig
    from mapl_core.data.ingest import IngestReport, Pair, ingest
    from mapl_core.data.readers import read_rows
    from mapl_core.paths import shared_data_dir
    from mapl_core.training.examples import Comparison

    source = str(shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz")
    items = ingest(read_rows(source, limit=2 * n), source, "auto", IngestConfig(), IngestReport(source))
    pairs = [p for p in items if isinstance(p, Pair)][:n]
    return [
        Comparison("original", ((p.prompt, p.chosen, 1.0), (p.prompt, p.rejected, -1.0)), p.pair_id)
        for p in pairs
    ]


def timed_train(trainer) -> float:
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0


def load(auto_class, path: str, random_init: bool, **kw):
    """The model at `path` in float32 (mixed precision is the trainer's), or one of its architecture with
    weights drawn from its config (seeded, so every trainer starts from the same ones)."""
    import torch
    from transformers import AutoConfig

    torch.manual_seed(0)
    if random_init:
        config = AutoConfig.from_pretrained(path, **kw)
        return auto_class.from_config(config, dtype=torch.float32)
    return auto_class.from_pretrained(path, dtype=torch.float32, **kw)


def bench_rm(
    comps, steps: int, batch: int, max_length: int, path: str, flags: dict, tmp: Path
) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from mapl_core.training.encoding import encode_comparisons
    from mapl_core.training.reward import MaplRewardTrainer

    tok = AutoTokenizer.from_pretrained(path)
    cols, _ = encode_comparisons(comps, tok, max_length)
    stock_cols = {
        "chosen_ids": [s[0] for s in cols["seq_ids"]],
        "rejected_ids": [s[1] for s in cols["seq_ids"]],
    }

    def config(name, max_steps=steps):
        return RewardConfig(output_dir=str(tmp / name), max_steps=max_steps, per_device_train_batch_size=batch,
                            bf16=flags["bf16"], gradient_checkpointing=False, report_to=[], save_strategy="no",
                            logging_steps=steps, disable_tqdm=True, seed=0, dataloader_pin_memory=False)  # fmt: skip

    def model():
        return load(AutoModelForSequenceClassification, path, flags["random_init"], num_labels=1)

    out = {}
    names = ("stock", "mapl", "stock again", "mapl again")  # interleaved: both see the same machine state
    if torch.cuda.is_available():
        names = ("stock warm-up", "mapl warm-up", *names)
    for name in names:
        args = config(name, WARMUP_STEPS if "warm-up" in name else steps)
        if name.startswith("stock"):
            t = RewardTrainer(model=model(), args=args, train_dataset=Dataset.from_dict(stock_cols),
                              processing_class=tok)  # fmt: skip
        else:
            t = MaplRewardTrainer(model=model(), args=args, train_dataset=Dataset.from_dict(cols),
                                  processing_class=tok, level_weights={"original": 1.0})  # fmt: skip
        seconds = timed_train(t)
        if "warm-up" not in name:
            out[name] = steps * batch / seconds
    return {"TRL RewardTrainer": (out["stock"] + out["stock again"]) / 2,
            "MAPL RewardTrainer": (out["mapl"] + out["mapl again"]) / 2}  # fmt: skip


def bench_dpo(
    comps, steps: int, batch: int, max_length: int, path: str, flags: dict, tmp: Path
) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from mapl_core.generation.engines import model_revision
    from mapl_core.training.dpo import MaplDPOTrainer, ref_cache_key
    from mapl_core.training.encoding import encode_comparisons

    tok = AutoTokenizer.from_pretrained(path)
    cols, report = encode_comparisons(comps, tok, max_length)
    if report.truncated:
        raise SystemExit(f"--dpo-max-length {max_length} truncates {report.truncated} sequences; raise it")
    stock_rows = {  # TRL's conversational format, tokenized by TRL (to the same tokens, as the tests check)
        "prompt": [c.sides[0][0] for c in comps],
        "chosen": [[{"role": "assistant", "content": c.sides[0][1]}] for c in comps],
        "rejected": [[{"role": "assistant", "content": c.sides[1][1]}] for c in comps],
    }

    def config(name, max_steps=steps):
        return DPOConfig(output_dir=str(tmp / name), max_steps=max_steps, per_device_train_batch_size=batch, bf16=flags["bf16"],
                         gradient_checkpointing=False, report_to=[], save_strategy="no", logging_steps=steps,
                         disable_tqdm=True, seed=0, dataloader_pin_memory=False, max_length=None)  # fmt: skip

    def model():
        return load(AutoModelForCausalLM, path, flags["random_init"])

    key = ref_cache_key(model_revision(path), "bench_train", tok, max_length)
    cache = tmp / "ref"
    pairs = steps * batch
    out = {}
    if torch.cuda.is_available():  # untimed, with a cache of its own: the timed first MAPL run still computes
        policy = model()
        DPOTrainer(model=policy, ref_model=copy.deepcopy(policy), args=config("warm-up", WARMUP_STEPS),
                   processing_class=tok, train_dataset=Dataset.from_dict(stock_rows)).train()  # fmt: skip
        MaplDPOTrainer(model=model(), args=config("warm-up", WARMUP_STEPS), processing_class=tok,
                       train_dataset=Dataset.from_dict(cols), level_weights={"original": 1.0},
                       ref_cache_dir=tmp / "ref-warm-up", ref_cache_keys={"train": key}).train()  # fmt: skip
    policy = model()
    t0 = time.perf_counter()
    stock = DPOTrainer(model=policy, ref_model=copy.deepcopy(policy), args=config("stock"), processing_class=tok,
                       train_dataset=Dataset.from_dict(stock_rows))  # fmt: skip
    stock_total = (time.perf_counter() - t0) + (train := timed_train(stock))
    out["TRL DPOTrainer (reference model in memory)"] = (pairs / train, stock_total)
    for name in ("MAPL DPOTrainer (reference log-probs computed, stored)",
                 "MAPL DPOTrainer (reference log-probs from the cache)"):  # fmt: skip
        t0 = time.perf_counter()
        mapl = MaplDPOTrainer(model=model(), args=config(name[:10]), processing_class=tok, train_dataset=Dataset.from_dict(cols),
                              level_weights={"original": 1.0}, ref_cache_dir=cache, ref_cache_keys={"train": key})  # fmt: skip
        init = time.perf_counter() - t0
        train = timed_train(mapl)
        out[name] = (pairs / train, init + train)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--rm-steps", type=int, default=30)
    ap.add_argument("--rm-batch", type=int, default=8)
    ap.add_argument("--dpo-steps", type=int, default=4)
    ap.add_argument("--dpo-batch", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=128, help="reward model")
    ap.add_argument("--dpo-max-length", type=int, default=4096)
    ap.add_argument("--rm-model", default="minilm", help="minilm (the shipped MiniLM-L6) or a model folder")
    ap.add_argument("--dpo-model", default="default")
    ap.add_argument("--bf16", action="store_true", help="bf16 mixed precision (needs a GPU)")
    ap.add_argument(
        "--random-init", action="store_true", help="weights drawn from the configs (pairs/s only)"
    )
    args = ap.parse_args()
    import torch

    from mapl_core.training.run import resolve_training_model

    flags = {"bf16": args.bf16, "random_init": args.random_init}
    rm_path = resolve_training_model(args.rm_model, "rm")
    dpo_path = resolve_training_model(args.dpo_model, "dpo")
    comps = original_pairs(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        rm = bench_rm(comps, args.rm_steps, args.rm_batch, args.max_length, rm_path, flags, Path(tmp))
        dpo = bench_dpo(comps[: args.dpo_steps * args.dpo_batch], args.dpo_steps, args.dpo_batch,
                        args.dpo_max_length, dpo_path, flags, Path(tmp))  # fmt: skip
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{os.cpu_count()} CPU cores"
    weights = "random weights from the configs" if args.random_init else "pretrained weights"
    print(f"# bench_train — {date.today()} — {platform.machine()}, {device}, "
          f"{'bf16' if args.bf16 else 'float32'}, {weights}, max length {args.max_length}")  # fmt: skip
    print()
    print(
        f"Reward model (MiniLM-L6), {args.rm_steps} steps × batch {args.rm_batch}, two interleaved runs each:"
    )
    print()
    print("| trainer | pairs/s | ratio |")
    print("|---|---:|---:|")
    base = rm["TRL RewardTrainer"]
    for name, rate in rm.items():
        print(f"| {name} | {rate:.2f} | {rate / base:.2f}× |")
    print()
    print(f"DPO ({Path(dpo_path).name}), {args.dpo_steps} steps × batch {args.dpo_batch}, untruncated pairs:")
    print()
    print("| trainer | pairs/s (training) | set-up + training s | ratio (pairs/s) |")
    print("|---|---:|---:|---:|")
    base = next(iter(dpo.values()))[0]
    for name, (rate, total) in dpo.items():
        print(f"| {name} | {rate:.3f} | {total:.1f} | {rate / base:.2f}× |")
    first, second = list(dpo.values())[1:]
    print()
    print(f"Reusing stored reference log-probs: the second MAPL-DPO run took {second[1]:.1f} s against "
          f"{first[1]:.1f} s ({first[1] / second[1]:.2f}× faster end to end).")  # fmt: skip


if __name__ == "__main__":
    main()
