"""The end-to-end MAPL pipeline, reading like its diagram:

    ingest → prompt-condition generation → instruction-combination sampling → data contracts
           → train reward models → train policies → benchmark evaluation → summary

Every stage is a cached, persisted, retryable task (see `tasks.policies`); a re-run after a failure executes
only what failed and what depends on it. Construction runs as a sub-flow so its batches can go to Dask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

import tasks.stages as T
from flows.construction import construct_flow, dask_runner
from mapl_core.generation.engines import model_revision
from mapl_core.paths import REPO_ROOT
from mapl_core.pipeline.config import PipelineConfig
from mapl_core.pipeline.keys import stage_key
from mapl_core.pipeline.stages import ingest_key, train_key
from mapl_core.training.run import resolve_training_model
from tasks.artifacts import publish_comparison, publish_tables
from tasks.stages import stage_task, table_asset

DEFAULT_CONFIG = str(REPO_ROOT / "configs" / "pipeline_small.yaml")
LEVELS = ("original", "intra", "inter", "inter_margin")
# the stages `refresh` runs again although the cache holds them; what follows reruns where its inputs changed
REFRESHABLE = ("ingest", "construct", "train", "evaluate")


def refresh_set(stages: list[str] | None) -> frozenset[str]:
    """The stages to run again whatever their cache holds, or a ValueError naming the unknown ones."""
    unknown = sorted(set(stages or ()) - set(REFRESHABLE))
    if unknown:
        raise ValueError(
            f"cannot refresh {', '.join(unknown)}: the cached stages are {', '.join(REFRESHABLE)}"
        )
    return frozenset(stages or ())


def _fresh(refresh: bool) -> dict[str, Any]:
    """Task options under which Prefect computes the task again and overwrites its cached result."""
    return {"refresh_cache": True} if refresh else {}


def load_config(config: str | dict[str, Any]) -> PipelineConfig:
    return (
        PipelineConfig.model_validate(config)
        if isinstance(config, dict)
        else PipelineConfig.from_yaml(config)
    )


def _ingest(cfg: PipelineConfig, root: str, refresh: bool = False) -> dict[str, Any]:
    b = cfg.build
    assets = [table_asset(root, f"{b.name}_original", "valid preference pairs, with their split"),
              table_asset(root, f"{b.name}_quarantine", "source rows rejected at ingest, with the reason")]  # fmt: skip
    run = stage_task(T.ingest, root, lambda p: ingest_key(p["cfg"]), assets, task_run_name="ingest",
                     **_fresh(refresh))  # fmt: skip
    return run(b, root, cfg.name, refresh)


def _propose(cfg: PipelineConfig, root: str, original: str) -> dict[str, Any]:
    key = lambda p: stage_key("propose", config=p["cfg"].config_hash(), original=p["original"])  # noqa: E731
    run = stage_task(T.propose, root, key, task_run_name="prompt-condition generation")
    return run(cfg.build, root, original, cfg.name)


def _construct(cfg: PipelineConfig, root: str, original: str, refresh: bool = False) -> dict[str, Any]:
    on_dask = cfg.task_runner == "dask"
    sub = (
        construct_flow.with_options(task_runner=dask_runner(cfg.dask_workers)) if on_dask else construct_flow
    )
    record = sub(cfg.build, root, original, cfg.dask_workers if on_dask else cfg.workers, on_dask, refresh)
    publish_tables(cfg.name, "instruction-combination sampling", record, root, read=[original])
    if not record["reused"]:  # newly committed: record them as materialized assets (lineage in the UI)
        assets = [table_asset(root, name, "MAPL comparison rows") for name in record["tables"]]
        stage_task(T.record_tables, root, None, assets, retries=False, task_run_name="constructed tables")(
            record, root
        )
    return record


def _train(cfg: PipelineConfig, root: str, role: str, data_versions: dict[str, int],
           refresh: bool = False) -> dict[str, Any]:  # fmt: skip
    tcfg = cfg.trainings()[role]
    model_dir = Path(root).resolve() / "models" / tcfg.name / "model"
    asset = T.Asset(key=f"file://{model_dir}", properties=T.AssetProperties(name=tcfg.name, description=role))
    run = stage_task(T.train, root, lambda p: train_key(p["cfg"], p["data_versions"]), [asset],
                     task_run_name=f"train {role}", **_fresh(refresh))  # fmt: skip
    return run(tcfg, root, data_versions, role, cfg.name, refresh)


def _evaluate(
    cfg: PipelineConfig, root: str, label: str, model: str, refresh: bool = False
) -> dict[str, Any]:
    def key(p: dict[str, Any]) -> str:
        return stage_key("evaluate", model=model_revision(p["model"]), cfg=p["cfg"].model_dump(mode="json"))

    run = stage_task(T.evaluate, root, key, task_run_name=f"evaluate {label}", **_fresh(refresh))
    return run(model, cfg.evaluation, root, label, cfg.name)


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def comparison(trained: dict[str, dict], evals: dict[str, dict]) -> list[dict[str, Any]]:
    """Rows of the baseline-vs-MAPL table: held-out per-level accuracy, and IFEval prompt-level accuracy."""
    rows = []
    for kind in ("rm", "policy"):
        base, mapl = trained.get(f"{kind}_baseline"), trained.get(kind)
        if mapl is None:
            continue
        for lv in LEVELS:
            b = (base or {}).get("metrics", {}).get(lv, {}).get("accuracy")
            m = mapl["metrics"].get(lv, {}).get("accuracy")
            if m is None:
                continue
            rows.append({"model": "reward model" if kind == "rm" else "policy (implicit reward)",
                         "metric": f"held-out {lv} accuracy", "base model": None, "baseline": _r(b), "mapl": _r(m),
                         "delta": None if b is None else _r(m - b)})  # fmt: skip
    for metric in ("prompt_level_strict", "prompt_level_loose", "inst_level_strict"):
        if "mapl" in evals:
            b = evals.get("baseline", {}).get(metric)
            m = evals["mapl"][metric]
            rows.append({"model": "policy", "metric": f"IFEval {metric}", "base model": _r(evals.get("base", {}).get(metric)),
                         "baseline": _r(b), "mapl": _r(m), "delta": None if b is None else _r(m - b)})  # fmt: skip
    return rows


def _markdown(cfg: PipelineConfig, tables: dict[str, int], trained: dict, rows: list[dict]) -> str:
    def fmt(v: Any) -> str:
        return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"# mapl pipeline `{cfg.name}`", "", "## Dataset versions", ""]
    lines += [f"- `{n}@{v}`" for n, v in sorted(tables.items())]
    lines += ["", "## Models", ""] + [f"- {role}: `{r['model_dir']}`" for role, r in trained.items()]
    lines += [
        "",
        "## Baseline vs MAPL",
        "",
        "| model | metric | baseline | MAPL | Δ |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {r['model']} | {r['metric']} | {fmt(r['baseline'])} | {fmt(r['mapl'])} | {fmt(r['delta'])} |"
              for r in rows]  # fmt: skip
    return "\n".join(lines) + "\n"


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

    ingested = _ingest(cfg, root, "ingest" in fresh)
    original = f"{b.name}_original@{ingested['tables'][f'{b.name}_original']}"
    _propose(cfg, root, original)
    constructed = _construct(cfg, root, original, "construct" in fresh)
    tables = {
        **{n: v for n, v in ingested["tables"].items() if n.endswith("_original")},
        **constructed["tables"],
    }
    stage_task(T.contracts, root, None, retries=False, task_run_name="data contracts")(root, tables, cfg.name)
    data_versions = {name.removeprefix(f"{b.name}_"): v for name, v in tables.items()}

    trained = {role: _train(cfg, root, role, data_versions, "train" in fresh) for role in cfg.trainings()}
    evals: dict[str, dict] = {}
    if cfg.evaluation is not None and cfg.policy is not None:
        policies = {"baseline": trained.get("policy_baseline"), "mapl": trained["policy"]}
        if cfg.evaluation.base_model:
            base_model = resolve_training_model(cfg.policy.model, "dpo")
            evals["base"] = _evaluate(cfg, root, "base", base_model, "evaluate" in fresh)
        for label, record in policies.items():
            if record is not None:
                evals[label] = _evaluate(cfg, root, label, record["model_dir"], "evaluate" in fresh)

    rows = comparison(trained, evals)
    publish_comparison(cfg.name, rows, _markdown(cfg, tables, trained, rows))
    log.info("pipeline %s finished: %s", cfg.name, ", ".join(f"{n}@{v}" for n, v in sorted(tables.items())))
    return {"name": cfg.name, "data_root": root, "tables": tables, "construction_reused": constructed["reused"], "trained": trained, "evaluations": evals,
            "comparison": rows}  # fmt: skip
