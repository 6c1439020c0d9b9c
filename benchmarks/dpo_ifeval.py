"""The DPO experiment on IFEval: untrained policy vs baseline DPO vs MAPL-DPO, in one resumable command.

Steps: build the recipe's tables → train the baseline and the MAPL arm (same steps, comparisons, seed, LoRA and
schedule; only the levels differ) → generate and score every arm on the IFEval prompts (greedy, chat
template, the recipe's token cap) → paired statistics per prompt. Each finished step is kept in the record
(--out, rewritten atomically after every step) with what it wrote; a second call with the same settings
skips the finished steps, a training stopped midway resumes from its last checkpoint, and a generation
stopped midway from the generation cache. So the experiment can run over several sittings.

    .venv/bin/python benchmarks/dpo_ifeval.py [--config configs/experiments/dpo_ifeval.yaml] [--out FILE]
        [--steps N] [--limit N]      # a short run: fewer training steps / IFEval prompts; the record says so
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any

from mapl_core.evaluation.stats import points
from mapl_core.experiments.dpo_ifeval import (
    ARMS,
    DpoExperiment,
    arm_metrics,
    by_group,
    cap_share,
    paired,
    read_verdicts,
)
from mapl_core.files import atomic_output


def build_tables(exp: DpoExperiment, root: Path) -> dict[str, Any]:
    """The recipe's tables, contract-checked (reused when this build already committed them)."""
    from data_contracts import CONTRACTS
    from mapl_core.build import table_name
    from mapl_core.pipeline.stages import construct_stage, ingest_stage
    from mapl_core.storage.delta_tables import DatasetStore

    store = DatasetStore(root)
    ingested = ingest_stage(exp.build, store, CONTRACTS)
    original = table_name(exp.build, "original")
    constructed = construct_stage(
        exp.build, store, CONTRACTS, (original, ingested["tables"][original]), workers=2
    )
    tables = {original: ingested["tables"][original], **constructed["tables"]}
    versions = {name.removeprefix(f"{exp.build.name}_"): v for name, v in tables.items()}
    return {"data_versions": versions, "rows": {**ingested["rows"], **constructed["rows"]}}


def train_arm(exp: DpoExperiment, arm: str, root: Path, data_versions: dict[str, int]) -> dict[str, Any]:
    from mapl_core.pipeline.stages import train_stage
    from mapl_core.storage.delta_tables import DatasetStore

    cfg = exp.trainings()[arm]
    record = train_stage(cfg, DatasetStore(root), data_versions, root / "models" / cfg.name)
    return {k: record[k] for k in ("model_dir", "metrics", "steps", "train_seconds", "resumed_from")}


def evaluate_arm(exp: DpoExperiment, model: str, root: Path, arm: str) -> dict[str, Any]:
    from mapl_core.pipeline.stages import evaluate_policy_stage, policy_folder
    from mapl_core.storage.delta_tables import DatasetStore

    out_dir = root / "eval" / exp.name / arm
    record = evaluate_policy_stage(model, exp.evaluation, DatasetStore(root), out_dir)
    tokenizer = record["model"] if arm == "untrained" else str(policy_folder(Path(model)))
    share = cap_share(out_dir / "responses.jsonl", tokenizer, exp.evaluation.max_new_tokens)
    return {"model": record["model"], "engine": record["engine"], "verdicts": str(out_dir / "verdicts.jsonl"),
            "generated": record["generated"], "from_cache": record["from_cache"], "at_cap_share": share}  # fmt: skip


def still_there(name: str, result: dict[str, Any]) -> bool:
    """A kept step counts only while what it wrote is still there."""
    path = result.get("model_dir") or result.get("verdicts")
    return path is None or Path(path).exists()


class Record:
    """The experiment's record: its settings and every finished step, rewritten after each step."""

    def __init__(self, out: Path, settings: dict[str, Any]):
        self.out, self.settings = out, settings
        previous = json.loads(out.read_text()) if out.is_file() else {}
        kept = previous.get("steps", {}) if previous.get("settings") == settings else {}
        self.steps = {k: v for k, v in kept.items() if still_there(k, v)}

    def step(self, name: str, fn) -> dict[str, Any]:
        if name in self.steps:
            print(f"{name}: kept from {self.out}", flush=True)
            return self.steps[name]
        t0 = time.perf_counter()
        result = {**fn(), "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{name}: done in {result['seconds']:.0f} s", flush=True)
        self.steps[name] = result
        self.write(complete=False)
        return result

    def write(self, **fields: Any) -> None:
        body = {"date": str(date.today()), "machine": platform.machine(), "settings": self.settings,
                "steps": self.steps, **fields}  # fmt: skip
        with atomic_output(self.out) as tmp:
            tmp.write_text(json.dumps(body, indent=2) + "\n")


def summarize(exp: DpoExperiment, trained: dict, evals: dict) -> dict[str, Any]:
    """Per-arm metrics and the paired comparisons (MAPL − baseline, MAPL − untrained, baseline − untrained)."""
    verdicts = {arm: read_verdicts(Path(evals[arm]["verdicts"])) for arm in ARMS}
    arms = {}
    for arm in ARMS:
        arms[arm] = {**arm_metrics(verdicts[arm]), "at_cap_share": evals[arm]["at_cap_share"]}
        if arm in trained:
            held = trained[arm]["metrics"].get("original", {})
            arms[arm]["held_out_original_accuracy"] = held.get("accuracy")
            arms[arm]["held_out_original_rows"] = held.get("rows")
    pairs = {f"{b} − {a}": paired(verdicts[a], verdicts[b])
             for a, b in (("baseline", "mapl"), ("untrained", "mapl"), ("untrained", "baseline"))}  # fmt: skip
    groups = {arm: by_group(json.loads(Path(evals[arm]["verdicts"]).with_name("summary.json").read_text())
                            ["per_instruction"]) for arm in ARMS}  # fmt: skip
    return {"arms": arms, "paired": pairs, "by_group": groups}


def print_tables(summary: dict[str, Any], exp: DpoExperiment) -> None:
    e = exp.evaluation
    print(f"\n# dpo_ifeval {exp.name}: {summary['arms']['mapl']['prompts']} IFEval prompts, greedy, "
          f"{e.max_new_tokens} new tokens\n")  # fmt: skip
    print(
        "| arm | prompt strict | inst strict | prompt loose | inst loose | at the cap | held-out original |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for arm, m in summary["arms"].items():
        held = m.get("held_out_original_accuracy")
        held_cell = "—" if held is None else f"{100 * held:.1f} (n={m['held_out_original_rows']})"
        print(f"| {arm} | {points(m['prompt_level_strict'], *m['prompt_level_strict_ci95'])} | "
              f"{points(m['inst_level_strict'], *m['inst_level_strict_ci95'])} | {100 * m['prompt_level_loose']:.1f} | "
              f"{100 * m['inst_level_loose']:.1f} | {100 * m['at_cap_share']:.1f}% | {held_cell} |")  # fmt: skip
    print("\n| comparison | Δ prompt strict | Δ inst strict | only first / only second follow | McNemar p |")
    print("|---|---:|---:|---:|---:|")
    for name, p in summary["paired"].items():
        ps, ins = p["prompt_level_strict"], p["inst_level_strict"]
        print(f"| {name} | {points(ps['difference'], ps['low'], ps['high'], signed=True)} | "
              f"{points(ins['difference'], ins['low'], ins['high'], signed=True)} | "
              f"{p['only_first_follows']} / {p['only_second_follows']} | {p['mcnemar_p']:.3g} |")  # fmt: skip
    groups = summary["by_group"]
    print("\nInstruction-level strict accuracy by IFEval group, in %:\n")
    print("| IFEval group | instructions | " + " | ".join(groups) + " |")
    print("|---|---:|" + "---:|" * len(groups))
    first = next(iter(groups.values()))
    for g in sorted(first, key=lambda g: -first[g]["instructions"]):
        cells = " | ".join(f"{100 * groups[arm][g]['inst_level_strict']:.1f}" for arm in groups)
        print(f"| {g} | {first[g]['instructions']} | {cells} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/experiments/dpo_ifeval.yaml"))
    ap.add_argument("--root", type=Path, default=Path(".mapl/bench/dpo_ifeval"))
    ap.add_argument("--out", type=Path, help="the record (default benchmarks/results/dpo_ifeval.cpu.json)")
    ap.add_argument("--steps", type=int, help="override the training steps (a short run)")
    ap.add_argument("--limit", type=int, help="only the first N IFEval prompts (a short run)")
    args = ap.parse_args()
    overrides = {"policy": {"max_steps": args.steps}} if args.steps else {}
    if args.limit:
        overrides["evaluation"] = {"limit": args.limit}
    exp = DpoExperiment.from_yaml(args.config, **overrides)
    subject = args.config.stem.removeprefix("dpo_ifeval").lstrip("_") or "cpu"
    out = args.out or Path(f"benchmarks/results/dpo_ifeval.{subject}.json")
    os.environ.setdefault("TQDM_DISABLE", "1")
    root = args.root.resolve()
    record = Record(out, {**exp.model_dump(mode="json"), "overrides": overrides})

    build = record.step("build", lambda: build_tables(exp, root))
    trained = {arm: record.step(f"train {arm}", lambda arm=arm: train_arm(exp, arm, root, build["data_versions"]))
               for arm in exp.trainings()}  # fmt: skip
    from mapl_core.training.run import resolve_training_model

    models = {"untrained": resolve_training_model(exp.policy.model, "dpo"),
              **{arm: t["model_dir"] for arm, t in trained.items()}}  # fmt: skip
    evals = {arm: record.step(f"evaluate {arm}", lambda arm=arm: evaluate_arm(exp, models[arm], root, arm))
             for arm in ARMS}  # fmt: skip
    summary = summarize(exp, trained, evals)
    print_tables(summary, exp)
    record.write(complete=True, summary=summary)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
