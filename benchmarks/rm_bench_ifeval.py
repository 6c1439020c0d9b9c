"""Reward models on IFEval's own phrasing: an experiment's arms scored on the IFEval-phrased pairs table.

Builds the benchmark table once (`mapl rm-bench build`'s code, configs/rm_bench_ifeval.yaml), trains the
experiment's arms for one seed where their model folders are missing (benchmarks/rm_quality.py, the same
folders that experiment keeps), and scores them with `mapl rm-bench score`'s code: accuracy per group with
prompt-resampled 95% intervals, each arm minus the baseline paired on the same pairs, the pairs the
experiment's own families decide, and what a length rule alone gets on the same pairs. Each model reads the
pairs as it was trained to (its max length and truncation rule) and, since IFEval's answers are long, also at
MiniLM's full 512 tokens.

    .venv/bin/python benchmarks/rm_bench_ifeval.py [--experiment configs/experiments/rm_quality_lexical.yaml]
        [--arms baseline,mapl-mirrored] [--seed 0] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

from mapl_core.evaluation.ifeval_pairs import IfevalPairsConfig
from mapl_core.evaluation.rm_benchmark import build_benchmark, record_table, score_benchmark
from mapl_core.evaluation.stats import cluster_bootstrap, points
from mapl_core.experiments.recipe import Experiment
from mapl_core.files import atomic_output
from mapl_core.storage.delta_tables import DatasetStore, TableRef

RM_ROOT = Path(".mapl/bench/rm_quality")  # where benchmarks/rm_quality.py keeps its model folders


def model_folders(exp_path: Path, exp: Experiment, arms: list[str], seed: int) -> dict[str, Path]:
    """Each arm's model folder for `seed`, trained by benchmarks/rm_quality.py where it is missing."""
    folders = {arm: RM_ROOT / "models" / f"{exp.name}-{arm}-s{seed}" / "model" for arm in arms}
    missing = [arm for arm, folder in folders.items() if not (folder / "model.safetensors").is_file()]
    if missing:
        cmd = [sys.executable, "benchmarks/rm_quality.py", "--config", str(exp_path), "--only", ",".join(missing),
               "--seeds", "1", "--first-seed", str(seed), "--out", str(RM_ROOT / f"rm_bench_arms.{exp.name}.json")]  # fmt: skip
        subprocess.run(cmd, check=True)
    return folders


def length_rule(store: DatasetStore, table: str) -> dict[str, float]:
    """Accuracy of "the longer response is better" on the pairs (ties count half): the length prior's score."""
    df = store.to_pandas(table)
    right = [
        1.0 if c > r else 0.5 if c == r else 0.0
        for c, r in zip(df.chosen_chars, df.rejected_chars, strict=True)
    ]
    low, high = cluster_bootstrap(right, df.key.tolist())
    return {"accuracy": sum(right) / len(right), "low": low, "high": high}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=Path("configs/rm_bench_ifeval.yaml"))
    ap.add_argument("--experiment", type=Path, default=Path("configs/experiments/rm_quality_lexical.yaml"))
    ap.add_argument(
        "--arms", default="baseline,mapl-mirrored", help="the experiment's arms (first: reference)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--readings",
        default="trained,512",
        help="max lengths to read the pairs at: 'trained' (each model's own) and/or token counts",
    )
    ap.add_argument("--root", type=Path, default=Path(".mapl"), help="the data root of the benchmark table")
    ap.add_argument(
        "--out", type=Path, help="the record (default benchmarks/results/rm_bench_ifeval.<exp>.json)"
    )
    args = ap.parse_args()
    from data_contracts.ifeval_pairs import validate_pairs

    store = DatasetStore(args.root)
    bench = build_benchmark(IfevalPairsConfig.from_yaml(args.bench), store, validate_pairs)
    table = str(TableRef(bench.version.name, bench.version.version))
    exp = Experiment.from_yaml(args.experiment)
    arms = args.arms.split(",")
    folders = model_folders(args.experiment, exp, arms, args.seed)
    subsets = {f"decided by the {exp.name} families": set(exp.build.families)} if exp.build.families else {}
    models = {a: str(f) for a, f in folders.items()}
    record = {"date": str(date.today()), "machine": platform.machine(), "experiment": exp.name,
              "seed": args.seed, "table": table, "table_stats": bench.stats,
              "length_rule": length_rule(store, table), "readings": {}}  # fmt: skip
    for reading in args.readings.split(","):
        length = None if reading == "trained" else int(reading)
        scored = score_benchmark(store, table, models, arms[0], subsets, max_length=length)
        record["readings"][reading] = scored
        lines = record_table(scored)
        what = "as trained" if length is None else f"at max length {length}"
        print(f"\n# rm_bench_ifeval: {exp.name} arms (seed {args.seed}) on {table}, read {what}\n")
        print("| " + " | ".join(lines[0]) + " |\n|---|" + "---:|" * (len(lines[0]) - 1))
        print("\n".join("| " + " | ".join(cells) + " |" for cells in lines[1:]))
    rule = record["length_rule"]
    print(
        f"\nthe longer response preferred, on all pairs: {points(rule['accuracy'], rule['low'], rule['high'])}"
    )
    out = args.out or Path(f"benchmarks/results/rm_bench_ifeval.{exp.name.removeprefix('rmq-')}.json")
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
