"""The construction stage as a flow of its own, so its batches can run on another task runner: by default
`workers` local processes build the batches; with a Dask task runner every batch is a Prefect task on the
cluster (results gathered in order, so the tables are identical to a serial build)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from mapl_core.build import construct_job
from mapl_core.config import BuildConfig
from mapl_core.pipeline import stages
from mapl_core.storage.delta_tables import DatasetStore, TableRef
from tasks.policies import RETRIES, is_transient


@task(name="construct-batch", cache_policy=NO_CACHE, persist_result=False)
def construct_batch(job: tuple) -> dict[str, Any]:
    """Intra and inter rows (and their row-level contract checks) for one batch of pairs."""
    return construct_job(job)


def task_batch_map(window: int):
    """`build(batch_map=...)` that submits each batch to the flow's task runner, at most `window` at once."""

    def run(jobs: Iterator) -> Iterator[dict[str, Any]]:
        pending: deque = deque()
        for job in jobs:
            pending.append(construct_batch.submit(job))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    return run


@flow(name="mapl-construct", flow_run_name="instruction-combination sampling", log_prints=True)
def construct_flow(
    cfg: BuildConfig,
    root: str,
    original: str,
    workers: int = 2,
    on_task_runner: bool = False,
    refresh: bool = False,
) -> dict[str, Any]:
    """Instruction-combination sampling over `original` (`name@version`) → intra, inter, comparisons."""
    from data_contracts import CONTRACTS

    batch_map = task_batch_map(window=2 * workers) if on_task_runner else None
    # the sub-flow retries what the stage tasks retry (a killed worker, a lost commit race), nothing else
    return stages.construct_stage(cfg, DatasetStore(root), CONTRACTS, TableRef.parse(original), workers=workers,
                                  batch_map=batch_map, refresh=refresh, retry_if=is_transient,
                                  attempts=RETRIES + 1)  # fmt: skip


def dask_runner(workers: int):
    """A Dask LocalCluster of `workers` single-threaded worker processes (construction is CPU-bound Python)."""
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})  # fmt: skip
