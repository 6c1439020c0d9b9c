"""Thin Prefect tasks over `mapl_core.pipeline.stages`: each one runs a stage, publishes its artifacts and
returns the stage's JSON record (persisted, so it is the cached result). Options (cache key, retries,
result storage under the data root, asset keys) are attached per run by `stage_task`, because they depend
on the data root the flow was given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task
from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize

from mapl_core.config import BuildConfig
from mapl_core.evaluation.ifeval_pairs import IfevalPairsConfig
from mapl_core.pipeline import stages
from mapl_core.pipeline.config import EvaluationConfig
from mapl_core.storage.delta_tables import DatasetStore, TableRef
from mapl_core.training.config import TrainConfig
from tasks.artifacts import (
    publish_contracts,
    publish_rm_benchmark,
    publish_tables,
    publish_training,
    table_uri,
)
from tasks.policies import stage_options


def stage_task(fn: Callable, root: str, key_fn: Callable[[dict[str, Any]], str] | None,
               assets: list[Asset] | None = None, retries: bool = True, **extra: Any):  # fmt: skip
    """`fn` as a Prefect task (a materializing one when it writes `assets`) for data root `root`."""
    opts = {**stage_options(root, key_fn, retries), **extra}
    if assets:
        return materialize(*assets, **opts)(fn)
    return task(fn, **opts)


def table_asset(root: str, name: str, description: str) -> Asset:
    return Asset(key=table_uri(root, name), properties=AssetProperties(name=name, description=description))


def _note_assets(root: str, record: dict[str, Any]) -> None:
    for name, version in record.get("tables", {}).items():
        add_asset_metadata(table_uri(root, name), {"version": version, "rows": record["rows"].get(name),
                                                   "stage_key": record.get("key")})  # fmt: skip


def ingest(cfg: BuildConfig, root: str, pipeline: str, refresh: bool = False) -> dict[str, Any]:
    """Ingest: the source's valid pairs → `<name>_original`, bad rows with reasons → `<name>_quarantine`."""
    from data_contracts import CONTRACTS

    record = stages.ingest_stage(cfg, DatasetStore(root), CONTRACTS, refresh)
    _note_assets(root, record)
    publish_tables(pipeline, "ingest", record, root, read=[])
    return record


def propose(cfg: BuildConfig, root: str, original: str, pipeline: str) -> dict[str, Any]:
    """Prompt-condition generation: the LLM (vLLM) proposes instruction arguments from each response."""
    return stages.propose_stage(cfg, DatasetStore(root), TableRef.parse(original))


def record_tables(record: dict[str, Any], root: str) -> dict[str, int]:
    """Mark the construction sub-flow's committed tables as materialized assets (with version and rows); returns
    a new mapping of them (not `record` itself, which would take over the sub-flow's place in the run graph)."""
    _note_assets(root, record)
    return dict(record["tables"])


def contracts(root: str, tables: dict[str, int], pipeline: str) -> dict[str, Any]:
    """Data contracts: every version about to be trained on has a passing great-expectations result."""
    gate = stages.contract_gate(DatasetStore(root), tables)
    publish_contracts(pipeline, gate)
    return gate


def train(cfg: TrainConfig, root: str, data_versions: dict[str, int], role: str, pipeline: str,
          refresh: bool = False) -> dict[str, Any]:  # fmt: skip
    """Train a reward model or a DPO policy (MAPL objectives on TRL) on pinned table versions."""
    output = Path(root).resolve() / "models" / cfg.name
    record = stages.train_stage(cfg, DatasetStore(root), data_versions, output, refresh)
    add_asset_metadata(f"file://{record['model_dir']}", {"steps": record["steps"], "data": data_versions,
                                                         "metrics": record["metrics"]})  # fmt: skip
    publish_training(pipeline, role, record)
    return record


def evaluate(model: str, cfg: EvaluationConfig, root: str, label: str, pipeline: str) -> dict[str, Any]:
    """Benchmark evaluation of one policy on IFEval-style verifiable prompts."""
    out = Path(root).resolve() / "eval" / pipeline / label
    return {"label": label, **stages.evaluate_policy_stage(model, cfg, DatasetStore(root), out)}


def rm_pairs(cfg: IfevalPairsConfig, root: str, pipeline: str, refresh: bool = False) -> dict[str, Any]:
    """The reward-model benchmark on IFEval's phrasing: sampled responses, labelled, paired, contract-checked."""
    from data_contracts.ifeval_pairs import validate_pairs

    record = stages.rm_pairs_stage(cfg, DatasetStore(root), validate_pairs, refresh)
    _note_assets(root, record)
    publish_tables(pipeline, "reward-model benchmark", record, root, read=[])
    return record


def evaluate_reward_models(root: str, table: str, models: dict[str, str], pipeline: str) -> dict[str, Any]:
    """Reward models (MAPL and baseline) scored on the IFEval-phrased pairs."""
    record = stages.evaluate_reward_models_stage(DatasetStore(root), table, models)
    publish_rm_benchmark(pipeline, record)
    return record
