"""The pipeline's steps as the flows call them: each runs one cached stage task with its options (cache key,
retries, assets) and waits for what the caller names (`after`, Prefect's `wait_for`), so the run graph in
the UI draws the pipeline's edges. `flows.pipeline` chains them end to end; `flows.stages` runs one alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.utilities.annotations import quote

import tasks.stages as T
from flows.construction import construct_flow, dask_runner
from mapl_core.generation.engines import model_revision
from mapl_core.paths import REPO_ROOT
from mapl_core.pipeline.config import PipelineConfig
from mapl_core.pipeline.keys import stage_key
from mapl_core.pipeline.stages import ingest_key, train_key
from tasks.artifacts import publish_tables
from tasks.stages import stage_task, table_asset


class Done(dict):
    """A stage's record, with the state of the task run that made it: what a later step waits for."""

    state: Any = None


def _after(task, *args: Any, after: list) -> Done:
    """Run `task` on `args`, drawn in the run graph as depending on the steps in `after` alone.

    Why states and quoted arguments: left to itself, Prefect links a task to every earlier result whose `id`
    one of its arguments (or anything inside them) shares, and dicts and strings share ids by chance
    (interned strings, recycled addresses), which drew edges between unrelated stages. A step's own state
    names exactly one task run."""
    # the state with a stand-in for its data: Prefect looks inside the data for more ids to link, and reads
    # the data to check the state (None would read as a missing result)
    waits = [a.state.model_copy(update={"data": True}) if isinstance(a, Done) else a for a in after]
    state = task(*(quote(a) for a in args), wait_for=waits, return_state=True)
    done = Done(state.result())
    done.state = state
    return done


DEFAULT_CONFIG = str(REPO_ROOT / "configs" / "pipeline_small.yaml")
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


def ingest(cfg: PipelineConfig, root: str, refresh: bool = False) -> dict[str, Any]:
    """Ingest: the source's valid pairs and its quarantined rows, as table versions."""
    b = cfg.build
    assets = [table_asset(root, f"{b.name}_original", "valid preference pairs, with their split"),
              table_asset(root, f"{b.name}_quarantine", "source rows rejected at ingest, with the reason")]  # fmt: skip
    run = stage_task(T.ingest, root, lambda p: ingest_key(p["cfg"]), assets, task_run_name="ingest",
                     **_fresh(refresh))  # fmt: skip
    return _after(run, b, root, cfg.name, refresh, after=[])


def propose(cfg: PipelineConfig, root: str, original: str, after: list) -> dict[str, Any]:
    key = lambda p: stage_key("propose", config=p["cfg"].config_hash(), original=p["original"])  # noqa: E731
    run = stage_task(T.propose, root, key, task_run_name="prompt-condition generation")
    return _after(run, cfg.build, root, original, cfg.name, after=after)


def construct(
    cfg: PipelineConfig, root: str, original: str, after: list, refresh: bool = False
) -> dict[str, Any]:
    on_dask = cfg.task_runner == "dask"
    sub = (
        construct_flow.with_options(task_runner=dask_runner(cfg.dask_workers)) if on_dask else construct_flow
    )
    workers = cfg.dask_workers if on_dask else cfg.workers
    record = sub(cfg.build, root, original, workers, on_dask, refresh, wait_for=after)
    publish_tables(cfg.name, "instruction-combination sampling", record, root, read=[original])
    if not record["reused"]:  # newly committed: record them as materialized assets (lineage in the UI)
        assets = [table_asset(root, name, "MAPL comparison rows") for name in record["tables"]]
        run = stage_task(
            T.record_tables, root, None, assets, retries=False, task_run_name="constructed tables"
        )
        _after(run, record, root, after=[record])
    return record


def train(cfg: PipelineConfig, root: str, role: str, data_versions: dict[str, int], after: list,
           refresh: bool = False) -> dict[str, Any]:  # fmt: skip
    tcfg = cfg.trainings()[role]
    model_dir = Path(root).resolve() / "models" / tcfg.name / "model"
    asset = T.Asset(key=f"file://{model_dir}", properties=T.AssetProperties(name=tcfg.name, description=role))
    run = stage_task(T.train, root, lambda p: train_key(p["cfg"], p["data_versions"]), [asset],
                     task_run_name=f"train {role}", **_fresh(refresh))  # fmt: skip
    return _after(run, tcfg, root, data_versions, role, cfg.name, refresh, after=after)


def evaluate(
    cfg: PipelineConfig, root: str, label: str, model: str, after: list, refresh: bool = False
) -> dict[str, Any]:
    def key(p: dict[str, Any]) -> str:
        return stage_key("evaluate", model=model_revision(p["model"]), cfg=p["cfg"].model_dump(mode="json"))

    run = stage_task(T.evaluate, root, key, task_run_name=f"evaluate {label}", **_fresh(refresh))
    return _after(run, model, cfg.evaluation, root, label, cfg.name, after=after)


def contracts(cfg: PipelineConfig, root: str, tables: dict[str, int], after: list) -> dict[str, Any]:
    """The data-contract gate over the table versions about to be trained on."""
    gate = stage_task(T.contracts, root, None, retries=False, task_run_name="data contracts")
    return _after(gate, root, tables, cfg.name, after=after)


def rm_pairs(cfg: PipelineConfig, root: str, after: list, refresh: bool = False) -> dict[str, Any]:
    """The reward-model benchmark table (IFEval-phrased pairs), a materialized asset of its own."""
    from mapl_core.evaluation.rm_benchmark import pairs_key

    pcfg = cfg.evaluation.reward_models
    asset = table_asset(root, pcfg.name, "IFEval-phrased pairs of sampled responses, ranked by the checkers")
    run = stage_task(T.rm_pairs, root, lambda p: pairs_key(p["cfg"]), [asset],
                     task_run_name="reward-model benchmark table", **_fresh(refresh))  # fmt: skip
    return _after(run, pcfg, root, cfg.name, refresh, after=after)


def evaluate_reward_models(cfg: PipelineConfig, root: str, table: str, models: dict[str, str],
                           after: list) -> dict[str, Any]:  # fmt: skip
    def key(p: dict[str, Any]) -> str:
        return stage_key(
            "evaluate", table=p["table"], models={n: model_revision(m) for n, m in p["models"].items()}
        )

    run = stage_task(T.evaluate_reward_models, root, key, task_run_name="evaluate reward models")
    return _after(run, root, table, models, cfg.name, after=after)
