"""The Prefect pipeline on a real (temporary) Prefect server, with the tiny model and a few HH rows."""

from __future__ import annotations

import pytest

pytest.importorskip("prefect")

from pipeline_support import tiny_recipe

from mapl_core.storage.delta_tables import DatasetStore


@pytest.fixture(scope="module")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _task_states(flow_run_id) -> dict[str, str]:
    """Task run name → state name, for every task run of a flow run (and its sub-flows)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        ids = [flow_run_id]
        subs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        ids += [s.id for s in subs]
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        return {r.name: r.state.name for r in runs}


def _versions(root) -> dict[str, list[int]]:
    store = DatasetStore(root)
    return {n: [v.version for v in store.versions(n)] for n in store.names()}


def test_pipeline_runs_end_to_end_and_a_rerun_is_fully_cached(prefect_server, tiny, tmp_path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.pipeline import mapl_pipeline

    recipe = tiny_recipe(str(tiny))
    state = mapl_pipeline(config=recipe, data_root=str(tmp_path), return_state=True)
    first = state.result()
    assert set(first["tables"]) == {"t_original", "t_intra", "t_inter", "t_inter_comparisons"}
    assert set(first["trained"]) == {"rm", "rm_baseline", "policy", "policy_baseline"}
    for record in first["trained"].values():
        assert (tmp_path / "models").is_dir() and record["steps"] == 2
    assert set(first["evaluations"]) == {"base", "baseline", "mapl"}
    # each policy answered for itself (none was served another model's cached answers)
    assert all(e["generated"] == 3 and e["from_cache"] == 0 for e in first["evaluations"].values())
    metrics = {r["metric"] for r in first["comparison"]}
    assert {"held-out original accuracy", "held-out intra accuracy", "IFEval prompt_level_strict"} <= metrics
    # the reward models scored on the IFEval-phrased pairs, a table version of its own
    bench = first["reward_model_benchmark"]
    assert bench["table"] == "t_ifeval_pairs@0" and set(bench["models"]) == {"mapl", "baseline"}
    assert "IFEval pairs: all pairs" in metrics
    states = _task_states(state.state_details.flow_run_id)
    assert states["ingest"] == "Completed" and states["train rm"] == "Completed"
    with get_client(sync_client=True) as client:
        keys = {
            a.key
            for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="tiny-"))
            )
        }
    assert {
        "tiny-ingest-tables",
        "tiny-data-contracts",
        "tiny-rm-metrics",
        "tiny-baseline-vs-mapl",
        "tiny-summary",
    } <= keys

    versions = _versions(tmp_path)
    again = mapl_pipeline(config=recipe, data_root=str(tmp_path), return_state=True)
    second = again.result()
    assert _versions(tmp_path) == versions  # no table was written again
    assert second["comparison"] == first["comparison"]
    states = _task_states(again.state_details.flow_run_id)
    assert second["construction_reused"] and not first["construction_reused"]
    # the construction sub-flow's wrapper run completes at once: it found its tables already committed
    cached = {n: s for n, s in states.items() if n != "data contracts" and not n.startswith("mapl-construct")}
    assert cached and all(s == "Cached" for s in cached.values()), sorted(states.items())


def test_rerun_after_a_failure_executes_only_what_failed(prefect_server, tiny, tmp_path, monkeypatch) -> None:
    import mapl_core.pipeline.stages as stages
    from flows.pipeline import mapl_pipeline

    real = stages.train_stage
    calls: list[str] = []

    def failing(cfg, *args, **kwargs):
        calls.append(cfg.name)
        if cfg.kind == "dpo":
            raise RuntimeError("injected failure in policy training")
        return real(cfg, *args, **kwargs)

    recipe = tiny_recipe(str(tiny), evaluation=None, baselines=False)
    monkeypatch.setattr(stages, "train_stage", failing)
    state = mapl_pipeline(config=recipe, data_root=str(tmp_path), return_state=True)
    assert state.is_failed()
    assert calls == ["rm-t", "dpo-t"]  # a permanent error: no retries
    versions = _versions(tmp_path)

    calls.clear()
    monkeypatch.setattr(
        stages, "train_stage", lambda cfg, *a, **k: (calls.append(cfg.name), real(cfg, *a, **k))[1]
    )
    again = mapl_pipeline(config=recipe, data_root=str(tmp_path), return_state=True)
    assert again.result()["trained"]["policy"]["steps"] == 2
    assert calls == ["dpo-t"]  # the reward model came from the cache
    assert _versions(tmp_path) == versions  # ingest and construction did not run again
    states = _task_states(again.state_details.flow_run_id)
    assert (
        states["ingest"] == "Cached"
        and states["train rm"] == "Cached"
        and states["train policy"] == "Completed"
    )

    # --refresh train: both trainings run again from step 0 (not their finished checkpoints); no table changes
    calls.clear()
    fresh = mapl_pipeline(config=recipe, data_root=str(tmp_path), refresh=["train"], return_state=True)
    trained = fresh.result()["trained"]
    assert calls == ["rm-t", "dpo-t"] and _versions(tmp_path) == versions
    assert all(t["resumed_from"] is None and t["steps"] == 2 for t in trained.values())
    states = _task_states(fresh.state_details.flow_run_id)
    assert states["ingest"] == "Cached" and states["train rm"] == "Completed"

    # --refresh construct: new versions of the constructed tables, equal to the old ones (deterministic);
    # training reruns because its inputs changed, the original table stays
    calls.clear()
    rebuilt = mapl_pipeline(config=recipe, data_root=str(tmp_path), refresh=["construct"]).get("tables")
    after = _versions(tmp_path)
    assert after["t_original"] == versions["t_original"] and calls == ["rm-t", "dpo-t"]
    store = DatasetStore(tmp_path)
    for name in ("t_intra", "t_inter", "t_inter_comparisons"):
        assert after[name] == [*versions[name], versions[name][-1] + 1] and rebuilt[name] == after[name][-1]
        assert store.to_pandas(f"{name}@{after[name][-1]}").equals(
            store.to_pandas(f"{name}@{after[name][-2]}")
        )


def test_refresh_names_only_stages_that_cache() -> None:
    from flows.pipeline import refresh_set

    assert refresh_set(["train", "construct"]) == {"train", "construct"} and refresh_set(None) == set()
    with pytest.raises(ValueError, match="cannot refresh contracts, propose"):
        refresh_set(["propose", "train", "contracts"])


def test_only_transient_failures_are_retried(prefect_server, tmp_path) -> None:
    from prefect import flow

    from mapl_core.build import ContractFailed
    from tasks.stages import stage_task

    attempts: list[str] = []

    def flaky(kind: str) -> str:
        attempts.append(kind)
        if kind == "connection" and len(attempts) < 3:
            raise ConnectionError("engine not up yet")
        if kind == "contract":
            raise ContractFailed("t_intra: expectation failed", [])
        return "ok"

    run = stage_task(flaky, str(tmp_path), None).with_options(retry_delay_seconds=0)

    @flow
    def one(kind: str):
        return run(kind)

    assert one("connection") == "ok" and attempts == ["connection"] * 3
    attempts.clear()
    with pytest.raises(ContractFailed):
        one("contract")
    assert attempts == ["contract"]


def test_construction_on_a_dask_cluster_matches_the_serial_build(prefect_server, tmp_path) -> None:
    from data_contracts import CONTRACTS
    from flows.construction import construct_flow, dask_runner
    from mapl_core.config import BuildConfig
    from mapl_core.pipeline.stages import ingest_stage

    cfg = BuildConfig.model_validate(tiny_recipe("unused", rows=60)["build"])
    roots = {}
    for label in ("serial", "dask"):
        root = tmp_path / label
        store = DatasetStore(root)
        ingest_stage(cfg, store, CONTRACTS)
        flow = construct_flow.with_options(task_runner=dask_runner(2)) if label == "dask" else construct_flow
        record = flow(cfg, str(root), "t_original@0", workers=2, on_task_runner=label == "dask")
        assert record["tables"] == {"t_intra": 0, "t_inter": 0, "t_inter_comparisons": 0}
        roots[label] = store
    for kind in ("intra", "inter", "inter_comparisons"):
        meta = [roots[label].versions(f"t_{kind}")[0].metadata for label in ("serial", "dask")]
        assert meta[0]["fingerprint"] == meta[1]["fingerprint"]
        assert roots["serial"].to_pandas(f"t_{kind}").equals(roots["dask"].to_pandas(f"t_{kind}"))


def test_deployments_register_with_their_schedule(prefect_server) -> None:
    from prefect.client.orchestration import get_client

    from deployments.pipeline import deployments

    deps = deployments(config="configs/pipeline_small.yaml", data_root="/data/mapl", cron="0 3 * * 1")
    ids = [d.apply() for d in deps]
    with get_client(sync_client=True) as client:
        got = [client.read_deployment(i) for i in ids]
    names = {(d.name, d.parameters["data_root"]) for d in got}
    assert ("scheduled", "/data/mapl") in names and len(got) == 5
    scheduled = next(d for d in got if d.name == "scheduled")
    assert [s.schedule.cron for s in scheduled.schedules] == ["0 3 * * 1"]


@pytest.mark.parametrize("recipe", ["pipeline_small.yaml", "pipeline_gpu_8b.yaml"])
def test_shipped_pipeline_recipes_validate(recipe) -> None:
    from pathlib import Path

    from mapl_core.pipeline.config import PipelineConfig

    cfg = PipelineConfig.from_yaml(Path(__file__).resolve().parents[1] / "configs" / recipe)
    assert set(cfg.trainings()) == {"rm", "rm_baseline", "policy", "policy_baseline"}
    assert cfg.trainings()["rm_baseline"].levels.active() == ("original",)
    assert cfg.trainings()["policy_baseline"].max_steps == cfg.policy.max_steps  # same budget


def test_a_recipe_whose_training_data_is_not_the_build_is_refused() -> None:
    from pydantic import ValidationError

    from mapl_core.pipeline.config import PipelineConfig

    recipe = tiny_recipe("unused")
    recipe["reward_model"]["data"] = "other"
    with pytest.raises(ValidationError, match="build is named 't'"):
        PipelineConfig.model_validate(recipe)


def test_work_pool_deployments_point_at_real_flows() -> None:
    """deployments/prefect.yaml (for `prefect deploy`): every entrypoint is a flow, every parameter one it takes."""
    import importlib
    import inspect
    from pathlib import Path

    import yaml
    from prefect import Flow

    from deployments.pipeline import prefect_yaml

    text = (Path(__file__).resolve().parents[1] / "deployments" / "prefect.yaml").read_text()
    assert text == prefect_yaml(), "regenerate it: python -m deployments.pipeline > deployments/prefect.yaml"
    spec = yaml.safe_load(text)
    assert {d["entrypoint"] for d in spec["deployments"]} >= {
        "flows/pipeline.py:mapl_pipeline",
        "flows/stages.py:train_flow",
    }
    for d in spec["deployments"]:
        path, name = d["entrypoint"].split(":")
        fl = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        assert isinstance(fl, Flow)
        assert set(d["parameters"]) <= set(inspect.signature(fl.fn).parameters), d["entrypoint"]


def test_artifacts_show_rounded_numbers() -> None:
    from tasks.artifacts import contract_rows, rounded

    gate = {"tables": [{"table": "t_intra@0", "rows": 3, "contracts": True,
                        "metrics": {"rows": 3, "arguments_from_model_share": 1 / 3, "condition_share": {"1": 2 / 3}}}]}  # fmt: skip
    (row,) = contract_rows(gate)
    assert row["metrics"] == "arguments_from_model_share=0.3333" and "0.33333" not in str(row)
    assert rounded({"a": [2 / 3, "x", 1], "b": 0.5}) == {"a": [0.6667, "x", 1], "b": 0.5}
