"""The end-to-end MAPL pipeline, reading like its diagram:

    ingest → prompt-condition generation → instruction-combination sampling → data contracts
           → train reward models → train policies → benchmark evaluation → summary
    IFEval-phrased pairs ───────────────────────────┘ (reward models scored on them)

Every stage is a cached, persisted, retryable task (see `tasks.policies`); a re-run after a failure executes
only what failed and what depends on it. Construction runs as a sub-flow so its batches can go to Dask.
Each step waits for the one before it, so Prefect's run graph draws these edges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows import steps
from flows.steps import DEFAULT_CONFIG, load_config, refresh_set
from mapl_core.storage.delta_tables import TableRef
from mapl_core.training.run import resolve_training_model
from tasks.artifacts import comparison, publish_comparison, summary_markdown

__all__ = ["DEFAULT_CONFIG", "mapl_pipeline", "refresh_set"]


@flow(name="mapl-pipeline", log_prints=True)
def mapl_pipeline(config: str | dict[str, Any] = DEFAULT_CONFIG, data_root: str = ".mapl",
                  refresh: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Build MAPL data from a preference dataset, train reward models and policies, evaluate baseline vs MAPL.
    `refresh` names stages to run again although their cache holds them (`REFRESHABLE`)."""
    fresh = refresh_set(refresh)
    cfg = load_config(config)
    root = str(Path(data_root).resolve())
    log = get_run_logger()
    b = cfg.build

    ingested = steps.ingest(cfg, root, "ingest" in fresh)
    # each stage waits for the one before it (`wait_for`), so the run graph draws the pipeline's edges
    original = str(TableRef(f"{b.name}_original", ingested["tables"][f"{b.name}_original"]))
    proposed = steps.propose(cfg, root, original, [ingested])
    constructed = steps.construct(cfg, root, original, [ingested, proposed], "construct" in fresh)
    tables = {
        **{n: v for n, v in ingested["tables"].items() if n.endswith("_original")},
        **constructed["tables"],
    }
    gate = steps.contracts(cfg, root, tables, [ingested, constructed])
    data_versions = {name.removeprefix(f"{b.name}_"): v for name, v in tables.items()}

    trained = {
        role: steps.train(cfg, root, role, data_versions, [gate], "train" in fresh)
        for role in cfg.trainings()
    }
    evals: dict[str, dict] = {}
    if cfg.evaluation is not None and cfg.policy is not None:
        policies = {"baseline": trained.get("policy_baseline"), "mapl": trained["policy"]}
        if cfg.evaluation.base_model:
            base_model = resolve_training_model(cfg.policy.model, "dpo")
            evals["base"] = steps.evaluate(cfg, root, "base", base_model, [gate], "evaluate" in fresh)
        for label, record in policies.items():
            if record is not None:
                evals[label] = steps.evaluate(
                    cfg, root, label, record["model_dir"], [record], "evaluate" in fresh
                )

    rm_bench = _reward_model_benchmark(cfg, root, trained, "evaluate" in fresh)
    rows = comparison(trained, evals, rm_bench)
    publish_comparison(cfg.name, rows, summary_markdown(cfg.name, tables, trained, rows))
    log.info(
        "pipeline %s finished: %s",
        cfg.name,
        ", ".join(str(TableRef(n, v)) for n, v in sorted(tables.items())),
    )
    plain = lambda records: {k: dict(v) for k, v in records.items()}  # noqa: E731 (records without their states)
    return {"name": cfg.name, "data_root": root, "tables": tables, "construction_reused": constructed["reused"],
            "trained": plain(trained), "evaluations": plain(evals),
            "reward_model_benchmark": dict(rm_bench) if rm_bench else None, "comparison": rows}  # fmt: skip


def _reward_model_benchmark(cfg, root: str, trained: dict[str, dict], refresh: bool) -> dict[str, Any] | None:
    """The reward models scored on the IFEval-phrased pairs (`evaluation.reward_models`), or None."""
    if cfg.evaluation is None or cfg.evaluation.reward_models is None or "rm" not in trained:
        return None
    pairs = steps.rm_pairs(cfg, root, [], refresh)
    name = cfg.evaluation.reward_models.name
    table = str(TableRef(name, pairs["tables"][name]))
    roles = {"mapl": "rm", "baseline": "rm_baseline"}
    models = {label: trained[role]["model_dir"] for label, role in roles.items() if role in trained}
    after = [pairs, *(trained[role] for role in roles.values() if role in trained)]
    return steps.evaluate_reward_models(cfg, root, table, models, after)
