"""One flow per stage, each runnable alone against chosen input versions (`mapl stage construct --input
hh_original@3`). They call the same cached tasks as the end-to-end flow, so a stage run alone and the same
stage inside the pipeline share their cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows import steps
from flows.steps import DEFAULT_CONFIG, load_config
from mapl_core.storage.delta_tables import DatasetStore, TableRef, parse_ref
from mapl_core.training.run import TABLE_KINDS


def _latest(root: str, name: str) -> int:
    return DatasetStore(root).versions(name)[-1].version


def _checked(root: str, name: str, version: int | None) -> int:
    """`version` of table `name` (None: the latest), or a ValueError naming the versions that exist."""
    existing = [v.version for v in DatasetStore(root).versions(name)]
    if version is None:
        return existing[-1]
    if version not in existing:
        raise ValueError(f"--input {name}@{version}: no such version (versions of {name}: {existing})")
    return version


def _original(root: str, build_name: str, inputs: list[str]) -> str:
    for ref in inputs:
        name, version = parse_ref(ref)
        if name in ("original", f"{build_name}_original"):
            full = f"{build_name}_original" if name == "original" else name
            return str(TableRef(full, _checked(root, full, version)))
    return str(TableRef(f"{build_name}_original", _latest(root, f"{build_name}_original")))


def data_versions(root: str, build_name: str, inputs: list[str]) -> dict[str, int]:
    """Pinned versions from `inputs` (`intra@3` or `hh_intra@3`), the latest for every other table."""
    pinned = {}
    for ref in inputs:
        name, version = parse_ref(ref)
        kind = name.removeprefix(f"{build_name}_")
        if kind not in TABLE_KINDS:
            raise ValueError(f"--input {ref}: not one of the training tables {', '.join(TABLE_KINDS)}")
        pinned[kind] = _checked(root, f"{build_name}_{kind}", version)
    return {k: pinned.get(k, _latest(root, f"{build_name}_{k}")) for k in TABLE_KINDS}


@flow(name="mapl-stage-ingest", log_prints=True)
def ingest_flow(
    config: str = DEFAULT_CONFIG, data_root: str = ".mapl", refresh: bool = False
) -> dict[str, Any]:
    """Ingest the recipe's source into the original and quarantine tables."""
    cfg, root = load_config(config), str(Path(data_root).resolve())
    return dict(steps.ingest(cfg, root, refresh))


@flow(name="mapl-stage-construct", log_prints=True)
def construct_stage_flow(
    config: str = DEFAULT_CONFIG,
    data_root: str = ".mapl",
    inputs: list[str] | None = None,
    refresh: bool = False,
) -> dict:
    """Prompt-condition generation and instruction-combination sampling over an original table version."""
    cfg, root = load_config(config), str(Path(data_root).resolve())
    original = _original(root, cfg.build.name, inputs or [])
    proposed = steps.propose(cfg, root, original, [])
    constructed = steps.construct(cfg, root, original, [proposed], refresh)
    name, version = parse_ref(original)
    steps.contracts(cfg, root, {name: version, **constructed["tables"]}, [constructed])
    return dict(constructed)


@flow(name="mapl-stage-train", log_prints=True)
def train_flow(config: str = DEFAULT_CONFIG, data_root: str = ".mapl", role: str = "rm",
               inputs: list[str] | None = None, refresh: bool = False) -> dict[str, Any]:  # fmt: skip
    """Train one model of the recipe (rm, rm_baseline, policy, policy_baseline) on chosen table versions."""
    cfg, root = load_config(config), str(Path(data_root).resolve())
    if role not in cfg.trainings():
        raise ValueError(f"role {role!r} is not in this recipe (roles: {', '.join(cfg.trainings())})")
    versions = data_versions(root, cfg.build.name, inputs or [])
    tables = {f"{cfg.build.name}_{k}": v for k, v in versions.items()}
    gate = steps.contracts(cfg, root, tables, [])
    return dict(steps.train(cfg, root, role, versions, [gate], refresh))


@flow(name="mapl-stage-evaluate", log_prints=True)
def evaluate_flow(config: str = DEFAULT_CONFIG, data_root: str = ".mapl", model: str = "default",
                  label: str = "policy", refresh: bool = False) -> dict[str, Any]:  # fmt: skip
    """IFEval-style evaluation of one policy folder (or 'default', the untrained policy)."""
    cfg, root = load_config(config), str(Path(data_root).resolve())
    if cfg.evaluation is None:
        raise ValueError("this recipe has no evaluation section")
    return dict(steps.evaluate(cfg, root, label, model, [], refresh))


STAGE_FLOWS = {
    "ingest": ingest_flow,
    "construct": construct_stage_flow,
    "train": train_flow,
    "evaluate": evaluate_flow,
}
