"""The DPO version of the quality experiment: SmolLM2-135M-Instruct with LoRA, trained baseline (original
pairs only) and MAPL (original + intra + inter) for the same steps, then IFEval prompt- and instruction-level
accuracy of the untrained policy, the baseline and MAPL (greedy, through vLLM when installed), and held-out
per-level accuracy of each policy's implicit reward. Prints one Markdown table and writes JSON.

On a 2-core CPU a step at batch 2 takes about 8 s and generation runs at about 90 tokens/s, so the defaults
(300 steps, all 541 prompts) take hours: run it on a GPU (`--steps 300 --batch 8`). The small CPU run in
docs/experiments/dpo_quality.md (`--steps 30 --prompts 80 --limit-per-level 15 --eval-limit-per-level 8 --max-new-tokens
256`) took 29 min (reference log-probs of every selected comparison are computed first).

    .venv/bin/python benchmarks/dpo_quality.py [--steps 300] [--batch 2] [--prompts 541] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

from mapl_core.training.config import LevelWeights, LoraSettings, TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--prompts", type=int, default=541, help="IFEval prompts scored (the first N)")
    ap.add_argument("--pairs", type=int, default=2312)
    ap.add_argument("--limit-per-level", type=int, default=None, help="training comparisons per level (all)")
    ap.add_argument("--eval-limit-per-level", type=int, default=100, help="held-out comparisons per level")
    ap.add_argument("--max-new-tokens", type=int, default=512, help="IFEval generation length")
    ap.add_argument("--root", type=Path, default=Path(".mapl/bench/dpo_quality"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/dpo_quality.json"))
    args = ap.parse_args()

    from data_contracts import CONTRACTS
    from mapl_core.build import build
    from mapl_core.config import BuildConfig, IngestConfig
    from mapl_core.paths import shared_data_dir
    from mapl_core.pipeline.config import EvaluationConfig
    from mapl_core.pipeline.stages import evaluate_policy_stage, train_stage
    from mapl_core.storage.delta_tables import DatasetStore
    from mapl_core.training.run import resolve_training_model

    t_all = time.perf_counter()
    store = DatasetStore(args.root)
    if "dq_intra" not in store.names():
        source = shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz"
        build(BuildConfig(name="dq", source=str(source), ingest=IngestConfig(limit=args.pairs), batch_size=500),
              store, contracts=CONTRACTS, workers=2)  # fmt: skip
    versions = {
        k: store.versions(f"dq_{k}")[-1].version for k in ("original", "intra", "inter", "inter_comparisons")
    }
    evaluation = EvaluationConfig(limit=args.prompts, max_new_tokens=args.max_new_tokens)
    common = dict(kind="dpo", model="default", data="dq", max_steps=args.steps, batch_size=args.batch,
                  learning_rate=args.lr, max_length=args.max_length, eval_split="test", eval_limit_per_level=args.eval_limit_per_level,
                  lora=LoraSettings(), limit_per_level=args.limit_per_level, save_steps=max(50, args.steps // 4), logging_steps=10)  # fmt: skip
    variants = {
        "baseline (original only)": TrainConfig(
            name="dq-baseline", levels=LevelWeights(intra=0, inter=0), **common
        ),
        "MAPL (original + intra + inter)": TrainConfig(name="dq-mapl", **common),
    }
    rows = {"untrained policy": {"ifeval": evaluate_policy_stage(resolve_training_model("default", "dpo"),
                                                                 evaluation, store, args.root / "eval" / "base")}}  # fmt: skip
    for label, cfg in variants.items():
        trained = train_stage(cfg, store, versions, args.root / "models" / cfg.name)
        scored = evaluate_policy_stage(trained["model_dir"], evaluation, store, args.root / "eval" / cfg.name)
        rows[label] = {"train": trained, "ifeval": scored}

    print(f"\n# dpo_quality — {date.today()} — {platform.machine()}, SmolLM2-135M + LoRA, {args.steps} steps × "
          f"batch {args.batch}, lr {args.lr}, {args.prompts} IFEval prompts\n")  # fmt: skip
    print(
        "| policy | IFEval prompt strict | prompt loose | inst strict | held-out original | intra | inter | margin |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in rows.items():
        e, m = r["ifeval"], r.get("train", {}).get("metrics", {})
        acc = [m.get(lv, {}).get("accuracy") for lv in ("original", "intra", "inter", "inter_margin")]
        cells = [f"{100 * v:.1f}" if v is not None else "—" for v in acc]
        print(f"| {label} | {100 * e['prompt_level_strict']:.1f} | {100 * e['prompt_level_loose']:.1f} | "
              f"{100 * e['inst_level_strict']:.1f} | " + " | ".join(cells) + " |")  # fmt: skip
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": str(date.today()), "args": {k: str(v) for k, v in vars(args).items()},
                                    "results": rows}, indent=2, default=str) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
