"""The reward-model benchmark on IFEval's phrasing, end to end: build its table (once per recipe, model and
code), and score reward-model folders on a pinned version of it. What `mapl rm-bench` and the pipeline's
evaluate stage call.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mapl_core.build import source_fingerprint
from mapl_core.evaluation.ifeval_files import prompts_path
from mapl_core.evaluation.ifeval_pairs import (
    IfevalPairsConfig,
    PairsOutcome,
    Validate,
    build_pairs,
    isolated_sampler,
)
from mapl_core.evaluation.pair_scoring import accuracy_rows, pair_comparisons, reward_margins
from mapl_core.generation.revision import model_revision
from mapl_core.storage.delta_tables import DatasetStore, TableRef


def pairs_key(cfg: IfevalPairsConfig) -> str:
    """What decides the table: the recipe, the prompt file's content, the sampling model's revision, the code."""
    from mapl_core.generation.default_model import resolve_model
    from mapl_core.pipeline.keys import stage_key

    return stage_key("rm_pairs", config=cfg.config_hash(), prompts=source_fingerprint(str(prompts_path(cfg.prompts))),
                     model=model_revision(resolve_model(cfg.model)))  # fmt: skip


def build_benchmark(cfg: IfevalPairsConfig, store: DatasetStore, validate: Validate,
                    refresh: bool = False) -> PairsOutcome:  # fmt: skip
    """The benchmark table's latest version for this recipe: reused when already built, else sampled (in a
    child process, through `<root>/cache/generations.jsonl`, so an interrupted build resumes where the
    cache ends), labelled, paired, checked and committed."""
    out = store.cache_dir() / "rm_bench" / f"{cfg.name}-responses.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    generate = isolated_sampler(cfg, store.cache_dir() / "generations.jsonl", out)
    return build_pairs(cfg, store, validate, pairs_key(cfg), generate, refresh=refresh)


def score_benchmark(
    store: DatasetStore,
    table: str | TableRef,
    models: dict[str, str | Path],
    reference: str | None = None,
    subsets: dict[str, set[str]] | None = None,
    max_length: int | None = None,
    truncation: str | None = None,
    batch_size: int = 32,
) -> dict[str, Any]:
    """A record: the table version scored, each model's folder, revision and encoding, and the accuracy rows
    (`pair_scoring.accuracy_rows`); `reference` names the model the others are compared with."""
    ref = TableRef.parse(table)
    version = ref.version if ref.version is not None else store.versions(ref.name)[-1].version
    df = store.read(ref.name, version).to_pandas()
    if df.empty:
        raise ValueError(f"{TableRef(ref.name, version)} has no pairs")
    comparisons = pair_comparisons(df)
    margins, encodings = {}, {}
    for name, folder in models.items():
        margins[name], encodings[name] = reward_margins(
            folder, comparisons, max_length, truncation, batch_size
        )
    described = {
        n: {"folder": str(f), "revision": model_revision(str(f)), "encoding": encodings[n]}
        for n, f in models.items()
    }
    return {
        "table": str(TableRef(ref.name, version)),
        "date": dt.date.today().isoformat(),
        "models": described,
        "reference": reference,
        "subsets": {k: sorted(v) for k, v in (subsets or {}).items()},
        "rows": accuracy_rows(df, margins, reference, subsets),
    }


def record_table(record: dict[str, Any]) -> list[list[str]]:
    """The record as table lines (header first): accuracy per model, and the difference from the reference,
    in points with their 95% intervals rounded to what they support."""
    from mapl_core.evaluation.stats import points

    models = list(record["models"])
    ref = record.get("reference")
    diffs = [f"{m} − {ref}" for m in models if ref is not None and m != ref]
    lines = [["group", "pairs", "prompts", *models, *diffs]]
    for row in record["rows"]:
        cells = [row["group"], str(row["pairs"]), str(row["prompts"])]
        cells += [points(row[m]["accuracy"], row[m]["low"], row[m]["high"]) for m in models]
        cells += [points(row[d]["difference"], row[d]["low"], row[d]["high"], signed=True) for d in diffs]
        lines.append(cells)
    return lines
