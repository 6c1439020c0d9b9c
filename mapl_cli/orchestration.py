"""`mapl run`, `mapl stage`, `mapl serve` and `mapl ui`: the pipeline on Prefect.

With no `PREFECT_API_URL`, Prefect starts its embedded local server for each run; its database lives in
`<data root>/prefect/home`, so `mapl ui` later shows every run made against this data root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mapl_core.paths import REPO_ROOT, data_root
from mapl_core.pipeline.config import NIGHTLY

console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 140)  # logs keep whole rows
err = Console(stderr=True, soft_wrap=True)
DEFAULT_CONFIG = REPO_ROOT / "configs" / "pipeline_small.yaml"
STAGES = ("ingest", "construct", "train", "evaluate")  # the names `mapl run --refresh` takes too
RENAMED = {"build": "construct"}  # earlier names, still accepted


def running_server(root: Path) -> str | None:
    """The API URL of the server `mapl ui` runs for this data root, if it is up and healthy, else None. Why:
    without a server each command starts Prefect's temporary one (about 20 s on a 2-core CPU)."""
    import json
    import urllib.request

    try:
        record = json.loads((root / "prefect" / "server.json").read_text())
        os.kill(int(record["pid"]), 0)  # raises when no such process
        urllib.request.urlopen(f"{record['api']}/health", timeout=2).read()
    except (OSError, ValueError, KeyError):
        return None
    return str(record["api"])


def prefect_env(root: Path, use_server: bool = True) -> None:
    """Prefect settings for mapl (before Prefect is imported); a user's own settings win. A server that
    `mapl ui` runs for this data root is used when the user named none (PREFECT_API_URL)."""
    if use_server and "PREFECT_API_URL" not in os.environ and (api := running_server(root)):
        os.environ["PREFECT_API_URL"] = api
        err.print(f"using the Prefect server of `mapl ui` at {api.removesuffix('/api')}")
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect" / "home"))
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for key, value in (("VLLM_CPU_KVCACHE_SPACE", "1"), ("VLLM_NO_USAGE_STATS", "1"), ("DO_NOT_TRACK", "1")):
        os.environ.setdefault(key, value)


def _fail(exc: BaseException) -> None:
    err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", highlight=False)
    err.print("Finished stages are cached: fix the cause and run the same command again to resume.")
    raise typer.Exit(1)


def ui_hint(flow_run_id: str | None) -> str:
    api = os.environ.get("PREFECT_API_URL")
    if api:
        base = api.removesuffix("/api")
        return f"{base}/runs/flow-run/{flow_run_id}" if flow_run_id else base
    page = f" → http://127.0.0.1:4200/runs/flow-run/{flow_run_id}" if flow_run_id else ""
    return f"mapl ui (Prefect's UI on this data root's run history){page}"


def print_summary(result: dict[str, Any], flow_run_id: str | None, seconds: float) -> None:
    console.rule(f"mapl pipeline {result['name']} finished in {seconds / 60:.1f} min")
    t = Table(title="Dataset versions")
    for col in ("table", "version"):
        t.add_column(col)
    for name, version in sorted(result["tables"].items()):
        t.add_row(name, str(version))
    console.print(t)
    m = Table(title="Models")
    for col in ("role", "steps", "folder"):
        m.add_column(col)
    for role, r in result["trained"].items():
        m.add_row(role, str(r["steps"]), r["model_dir"])
    console.print(m)
    from tasks.artifacts import display_rows

    shown = display_rows(result["comparison"])
    c = Table(title="Baseline vs MAPL (accuracy in %, 95% intervals, n rows or prompts)")
    for col in shown[0] if shown else ():
        c.add_column(col, justify="left" if col in ("model", "metric", "reads") else "right")
    for r in shown:
        c.add_row(*r.values())
    console.print(c)
    console.print(f"summary: {write_summary(result, flow_run_id, seconds)}")
    console.print(f"data root: {result['data_root']}")
    console.print(f"in the UI: {ui_hint(flow_run_id)}")


def write_summary(result: dict[str, Any], flow_run_id: str | None, seconds: float) -> Path:
    """`<data root>/reports/<pipeline>/run-summary.json`: the run's tables, models and baseline-vs-MAPL rows
    (with their n and intervals), for scripts and for comparing runs; rewritten whole by every run."""
    import json

    from mapl_core.files import atomic_output
    from mapl_core.names import inside

    path = inside(result["data_root"], "reports", result["name"], "run-summary.json")
    record = {"pipeline": result["name"], "flow_run_id": flow_run_id, "seconds": round(seconds, 1),
              "tables": result["tables"], "models": {role: {"steps": r["steps"], "folder": r["model_dir"]}
                                                     for role, r in result["trained"].items()},
              "comparison": result["comparison"]}  # fmt: skip
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


def run_command(
    config: Annotated[
        Path, typer.Option(help="A pipeline recipe (configs/pipeline_*.yaml).")
    ] = DEFAULT_CONFIG,
    task_runner: Annotated[
        str | None, typer.Option(help="Override the recipe: 'default' or 'dask' (construction on Dask).")
    ] = None,
    refresh: Annotated[
        list[str] | None,
        typer.Option(
            "--refresh",
            help="Run this stage again although the cache holds it: ingest, construct, train or evaluate "
            "(repeatable). The stages after it rerun where their inputs changed.",
        ),
    ] = None,
) -> None:
    """Run the whole pipeline: ingest → conditions → sampling → contracts → train RM → train DPO → evaluate.

    Finished stages come from the cache (keyed by input versions, config, model revision, mapl_core version and the stage's code):
    re-running after a failure executes only what failed and what depends on it."""
    import time

    root = data_root()
    prefect_env(root)
    from pydantic import ValidationError

    from mapl_core.pipeline.config import PipelineConfig

    try:
        cfg = PipelineConfig.from_yaml(config, task_runner=task_runner)
    except (OSError, ValidationError) as exc:
        err.print(f"[bold red]error:[/] invalid pipeline recipe {config}: {exc}")
        raise typer.Exit(2) from None
    from flows.pipeline import mapl_pipeline, refresh_set

    try:
        refresh_set(refresh)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] --refresh: {exc}")
        raise typer.Exit(2) from None
    t0 = time.perf_counter()
    state = mapl_pipeline(config=cfg.model_dump(mode="json"), data_root=str(root), refresh=refresh or [],
                          return_state=True)  # fmt: skip
    run_id = str(state.state_details.flow_run_id)
    try:
        result = state.result()
    except Exception as exc:  # the flow's own error, with the stage that raised it
        err.print(f"flow run {run_id}: {state.name}")
        err.print(f"in the UI: {ui_hint(run_id)}")
        _fail(exc)
    print_summary(result, run_id, time.perf_counter() - t0)


def stage_command(
    stage: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGES)}.")],
    config: Annotated[Path, typer.Option(help="A pipeline recipe.")] = DEFAULT_CONFIG,
    input: Annotated[
        list[str] | None,
        typer.Option("--input", help="Pin an input table version, e.g. original@3 or intra@2 (repeatable)."),
    ] = None,
    role: Annotated[str, typer.Option(help="train: rm, rm_baseline, policy or policy_baseline.")] = "rm",
    model: Annotated[str, typer.Option(help="evaluate: a policy folder, or 'default'.")] = "default",
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Run the stage again although the cache holds it.")
    ] = False,
) -> None:
    """Run one stage alone (cached like the same stage in `mapl run`), against chosen input versions."""
    if stage in RENAMED:
        err.print(f"note: stage {stage!r} is now called {RENAMED[stage]!r}")
        stage = RENAMED[stage]
    if stage not in STAGES:
        err.print(f"[bold red]error:[/] unknown stage {stage!r}; use one of {', '.join(STAGES)}")
        raise typer.Exit(2)
    root = data_root()
    prefect_env(root)
    import json

    from flows.stages import STAGE_FLOWS

    params: dict[str, Any] = {"config": str(config), "data_root": str(root), "refresh": refresh}
    if stage in ("construct", "train"):
        params["inputs"] = list(input or [])
    if stage == "train":
        params["role"] = role
    if stage == "evaluate":
        params["model"] = model
    state = STAGE_FLOWS[stage](**params, return_state=True)
    try:
        result = state.result()
    except Exception as exc:
        _fail(exc)
    console.print_json(json.dumps(result, default=str))


def serve_command(
    config: Annotated[Path, typer.Option(help="The recipe the deployments run.")] = DEFAULT_CONFIG,
    cron: Annotated[str, typer.Option(help="Schedule of the end-to-end pipeline (cron).")] = NIGHTLY,
) -> None:
    """Serve the scheduled pipeline and the per-stage deployments with Prefect's runner (this process runs
    them). Needs a Prefect server: `mapl ui` in another terminal, with PREFECT_API_URL pointing at it."""
    root = data_root()
    prefect_env(root)
    from prefect import serve

    from deployments.pipeline import deployments

    serve(*deployments(str(config.resolve()), str(root), cron))


def ui_command(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 4200,
) -> None:
    """Start Prefect's server and UI on this data root's run history (PREFECT_HOME under the data root)."""
    import json
    import sys

    root = data_root()
    os.environ.pop("PREFECT_API_URL", None)  # this process is the server, not a client of another one
    prefect_env(root, use_server=False)
    api = f"http://{host}:{port}/api"
    # what the CLI's commands on this data root read to use this server (this process becomes it: exec)
    (root / "prefect" / "server.json").write_text(json.dumps({"api": api, "pid": os.getpid()}) + "\n")
    console.print(
        f"Prefect UI: http://{host}:{port}  (mapl commands on {root} use this server while it runs)"
    )
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    os.execvpe(argv[0], argv, os.environ)
