"""The reward-model quality experiment: the arms of an experiment recipe, trained by `mapl train`'s own code.

An experiment (configs/experiments/rm_quality_*.yaml) names its builds, shared training settings, held-out sets
and arms (configs/experiments/variants.yaml). Each arm and seed is a `TrainConfig` trained by
`mapl_core.training.run.train` into `<root>/models/`, whose model folder is then scored on the held-out columns
(`mapl_core.experiments.held_out`). Prints the table (mean ± 95% t-interval over seeds), each arm minus the
baseline, and the paired difference seed by seed.

The record (--out) is rewritten after every finished run; a call with the same --out and settings keeps the
runs it holds and trains only the rest, so a stopped experiment resumes. `--merge` joins records of separate
calls (e.g. seeds run apart with --first-seed) into one table, refusing records whose settings differ.

    .venv/bin/python benchmarks/rm_quality.py --config configs/experiments/rm_quality_lexical.yaml \
        [--seeds N] [--first-seed K] [--only ARMS] [--steps N] [--workers N] [--out FILE]
    .venv/bin/python benchmarks/rm_quality.py --merge A.json B.json [...] --out C.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import time
from datetime import date
from pathlib import Path

from mapl_core.evaluation.stats import t_interval
from mapl_core.experiments.held_out import COLUMNS, held_out_sets, inter_makeup, makeup_line, reader_bound
from mapl_core.experiments.recipe import Experiment

BASELINE = "baseline"
PER_ARM = {"name", "levels", "seed", "output_dir", "level_shares", "curriculum", "data"}


def build_tables(exp: Experiment, root: Path):
    """Both builds under `root` (once, contract-checked): the independent build's tables, the mirrored intra."""
    from data_contracts import CONTRACTS
    from mapl_core.build import build
    from mapl_core.paths import shared_data_dir
    from mapl_core.storage.delta_tables import DatasetStore

    store = DatasetStore(root)
    for intra in ("independent", "mirrored"):
        if f"{exp.data_name(intra)}_intra" not in store.names():
            build(exp.build_config(intra, shared_data_dir()), store, contracts=CONTRACTS, workers=2)
    kinds = ("original", "intra", "inter", "inter_comparisons")
    tables = {k: store.to_pandas(f"{exp.data_name('independent')}_{k}") for k in kinds}
    return tables, store.to_pandas(f"{exp.data_name('mirrored')}_intra")


def run_arm(exp: Experiment, root: Path, job: tuple[str, int], overrides: dict, held_out, groups) -> dict:
    """Train one arm and seed with `training.run.train`, then score its model folder on the held-out sets."""
    from mapl_core.evaluation.reward_model import score_reward_model
    from mapl_core.storage.delta_tables import DatasetStore
    from mapl_core.training.run import train

    variant, seed = job
    cfg = exp.train_config(variant, seed, root / "models" / f"{exp.name}-{variant}-s{seed}", **overrides)
    outcome = train(cfg, DatasetStore(root), fresh=True)
    t0 = time.perf_counter()
    metrics = score_reward_model(outcome.model_dir, held_out, groups, cfg.max_length, cfg.truncation)
    shutil.rmtree(outcome.output / "checkpoints", ignore_errors=True)  # the model folder stays
    return {"variant": variant, "seed": seed, "seconds": outcome.train_seconds,
            "eval_seconds": time.perf_counter() - t0, "train_comparisons": outcome.steps * cfg.batch_size,
            "accuracy": {c: m["accuracy"] for c, m in metrics.items()},
            "rows": {c: m["rows"] for c, m in metrics.items()}}  # fmt: skip


def run_all(exp, root, jobs, overrides, held_out, groups, workers: int):
    """Yields each run's result as it finishes: in this process, or in `workers` spawned processes."""
    if workers <= 1:
        yield from (run_arm(exp, root, job, overrides, held_out, groups) for job in jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        futures = [ex.submit(run_arm, exp, root, j, overrides, held_out, groups) for j in jobs]
        for fut in as_completed(futures):
            yield fut.result()


def report(results: list[dict], header: str, makeup: dict | None, order: list[str]) -> dict:
    """Print the runs as one table, each arm minus the baseline, and the paired differences; return the
    summary. Sorts `results` in place by arm (catalog order) and seed, the order they are saved in."""
    results.sort(key=lambda r: (order.index(r["variant"]), r["seed"]))
    print(f"\n{header}\nheld-out comparisons: " + ", ".join(f"{c} {results[0].get('rows', {}).get(c, '?')}" for c in COLUMNS))  # fmt: skip
    print((makeup_line(makeup) if makeup else "") + "\n")
    print("| arm | seeds | " + " | ".join(COLUMNS) + " |\n|---|---:|" + "---:|" * len(COLUMNS))
    summary: dict[str, dict] = {}
    for name in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == name]
        summary[name] = {}
        for c in COLUMNS:
            mean, half = t_interval([acc(r, c) for r in runs])
            summary[name][c] = {"mean": mean, "ci95": half}
        print(f"| {name} | {len(runs)} | " + " | ".join(cell(summary[name][c]) for c in COLUMNS) + " |")
    if BASELINE not in summary or len(summary) == 1:
        return summary
    base = summary[BASELINE]
    if makeup:
        bound = reader_bound(makeup, base["inter_decided"]["mean"])
        print(f"\na perfect instruction reader, no better than the baseline on undecided rows, gains at most "
              f"{bound:+.1f} points on all inter rows (decided share × (100 − the baseline's decided accuracy))")  # fmt: skip
    print("\nminus the baseline (points):")
    for name, other in summary.items():
        if name != BASELINE:
            diffs = (f"{c} {100 * (other[c]['mean'] - base[c]['mean']):+.1f}" for c in COLUMNS)
            print(f"- {name}: " + ", ".join(diffs))
    paired_table(results, summary)
    return summary


def acc(run: dict, column: str) -> float:
    """A run's accuracy on a column; NaN where its held-out set had no such rows (older records, tiny builds)."""
    return run["accuracy"].get(column, math.nan)


def cell(stat: dict) -> str:
    if math.isnan(stat["mean"]):
        return "—"
    return f"{100 * stat['mean']:.1f}" + ("" if math.isnan(stat["ci95"]) else f" ± {100 * stat['ci95']:.1f}")


def paired_table(results: list[dict], summary: dict) -> None:
    """Each arm minus the baseline of the same seed, and the mean of those with its paired 95% interval."""
    base_by_seed = {r["seed"]: r["accuracy"] for r in results if r["variant"] == BASELINE}
    paired = [r for r in results if r["variant"] != BASELINE and r["seed"] in base_by_seed]
    if not paired:
        return
    print("\nminus the baseline of the same seed (points):\n")
    print("| arm | seed | " + " | ".join(COLUMNS) + " |\n|---|---:|" + "---:|" * len(COLUMNS))
    for r in paired:
        b = base_by_seed[r["seed"]]
        diffs = (f"{100 * (acc(r, c) - b.get(c, math.nan)):+.1f}" for c in COLUMNS)
        print(f"| {r['variant']} | {r['seed']} | " + " | ".join(diffs) + " |")
    for name in summary:
        runs = [r for r in paired if r["variant"] == name]
        if len(runs) < 2:
            continue
        cells = []
        for c in COLUMNS:
            mean, half = t_interval([acc(r, c) - base_by_seed[r["seed"]].get(c, math.nan) for r in runs])
            summary[name][c]["minus_baseline_paired"] = {"mean": mean, "ci95": half, "seeds": len(runs)}
            cells.append(f"{100 * mean:+.1f} ± {100 * half:.1f}")
        print(f"| {name} | mean of {len(runs)} | " + " | ".join(cells) + " |")


def settings_of(exp: Experiment, overrides: dict) -> dict:
    """What must agree for runs to be one experiment: the builds, the shared training settings, the held-out
    sets (a resumed record and every merged one must hold the same)."""
    shared = exp.train_config(BASELINE, 0, Path("."), **overrides).model_dump(mode="json", exclude=PER_ARM)
    return {"experiment": exp.name, "build": exp.build.model_dump(mode="json"), "train": shared,
            "held_out": exp.held_out.model_dump(mode="json")}  # fmt: skip


def header(settings: dict, what: str) -> str:
    t = settings["train"]
    return (f"# rm_quality {settings['experiment']} — {what}: MiniLM-L6, {t['max_steps']} steps × batch "
            f"{t['batch_size']}, max length {t['max_length']} ({t['truncation']}), lr {t['learning_rate']} "
            f"({t['scheduler']}), mix {t['level_mix']}")  # fmt: skip


def write_record(out: Path, **fields) -> None:
    """Through a temporary file, so a stopped or killed run leaves the last whole record, never a torn one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"date": str(date.today()), **fields}, indent=2) + "\n")
    tmp.replace(out)


def merge(paths: list[Path], out: Path, order: list[str]) -> None:
    """One record and table from several, refused when their settings or held-out rows differ, or when they
    repeat a run."""
    records = [(p, json.loads(p.read_text())) for p in paths]
    (first_path, first), results, seen = records[0], [], {}
    for path, rec in records:
        for key in ("settings", "held_out_inter"):
            if rec.get(key) != first.get(key):
                raise SystemExit(f"{path}: its {key} differ from {first_path}'s")
        for r in rec["runs"]:
            if (r["variant"], r["seed"]) in seen:
                raise SystemExit(f"{path}: {r['variant']} seed {r['seed']} is also in {seen[r['variant'], r['seed']]}")  # fmt: skip
            seen[r["variant"], r["seed"]] = path
            results.append(r)
    what = f"merged from {len(records)} records"
    summary = report(results, header(first["settings"], what), first.get("held_out_inter"), order)
    write_record(out, machine=first["machine"], complete=True, merged_from=[str(p) for p in paths],
                 settings=first["settings"], held_out_inter=first.get("held_out_inter"), summary=summary, runs=results)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/experiments/rm_quality_lexical.yaml"))
    ap.add_argument("--seeds", type=int, help="seeds for every arm (default: the experiment's arms say)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run are K, K + 1, …")
    ap.add_argument("--only", help="these arms of the catalog (comma-separated names), not the experiment's")
    ap.add_argument("--steps", type=int, help="override max_steps (a short run); the record says so")
    ap.add_argument("--workers", type=int, default=1, help="runs in parallel processes (GPU or many cores)")
    ap.add_argument("--root", type=Path, default=Path(".mapl/bench/rm_quality"))
    ap.add_argument("--out", type=Path, help="the record (default benchmarks/results/rm_quality.<experiment>.json)")  # fmt: skip
    ap.add_argument("--merge", type=Path, nargs="+", metavar="RECORD", help="train nothing: join these records")  # fmt: skip
    args = ap.parse_args()
    exp = Experiment.from_yaml(args.config)
    order = list(exp.variants)
    args.out = args.out or Path(f"benchmarks/results/rm_quality.{args.config.stem.removeprefix('rm_quality_')}.json")  # fmt: skip
    if args.merge:
        return merge(args.merge, args.out, order)
    arms = {n: exp.arms.get(n, 1) for n in args.only.split(",")} if args.only else dict(exp.arms)
    if unknown := sorted(set(arms) - set(exp.variants)):
        ap.error(f"--only names unknown arms {unknown}; the catalog: {', '.join(order)}")
    os.environ.setdefault("TQDM_DISABLE", "1")
    overrides = {"max_steps": args.steps} if args.steps else {}
    settings = settings_of(exp, overrides)

    t_all = time.perf_counter()
    root = args.root.resolve()
    tables, mirrored_intra = build_tables(exp, root)
    held_out, groups = held_out_sets(tables, mirrored_intra, exp.held_out.splits, exp.held_out.per_level)
    sampled = [c.key for c, g in zip(held_out, groups, strict=True) if g == "inter"]
    makeup = inter_makeup(tables["inter"], exp.held_out.splits, sampled)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results = [r for r in previous.get("runs", []) if previous.get("settings") == settings]
    done = {(r["variant"], r["seed"]) for r in results}
    jobs = [
        (n, s) for n, k in arms.items() for s in range(args.first_seed, args.first_seed + (args.seeds or k))
    ]
    todo = [j for j in jobs if j not in done]
    print(f"setup {time.perf_counter() - t_all:.0f} s; {len(todo)} runs to train"
          + (f", {len(jobs) - len(todo)} kept from {args.out}" if len(todo) < len(jobs) else ""), flush=True)  # fmt: skip
    record = dict(machine=platform.machine(), settings=settings, held_out_inter=makeup)
    for r in run_all(exp, root, todo, overrides, held_out, groups, args.workers):
        print(f"  {r['variant']} seed {r['seed']}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["accuracy"].items())
              + f" ({r['seconds']:.0f} s training, {r['eval_seconds']:.0f} s scoring)", flush=True)  # fmt: skip
        results.append(r)
        write_record(args.out, complete=False, summary={}, runs=results, **record)
    summary = report(results, header(settings, f"{date.today()}, {platform.machine()}"), makeup, order)
    print(f"total {time.perf_counter() - t_all:.0f} s")
    write_record(args.out, complete=True, summary=summary, runs=results, **record)


if __name__ == "__main__":
    main()
