"""`mapl stage` / `mapl run` as users run them (subprocesses) against a real `prefect server start`:
pinned inputs, `kill -9` during construction and during training, concurrent runs, and the UI in Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from pipeline_support import tiny_recipe

from mapl_core.storage.delta_tables import DatasetStore

MAPL = str(Path(sys.executable).with_name("mapl"))
DOCS = Path(__file__).resolve().parents[1] / "docs"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Prefect server (API + UI) on 127.0.0.1, with its own PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
    }  # the UI's own calls go to this port
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("prefect server did not become healthy in 120 s")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _env(server: str, root: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": f"{server}/api", "MAPL_DATA_ROOT": str(root),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1"}  # fmt: skip


def _recipe(tmp_path: Path, tiny: Path, **overrides) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(str(tiny), **overrides)))
    return path


def _mapl(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([MAPL, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _json_tail(stdout: str) -> dict:
    """The stage's record: the JSON object `mapl stage` prints last (training logs print dicts before it)."""
    start = 0 if stdout.startswith("{\n") else stdout.rindex("\n{\n") + 1
    return json.loads(stdout[start : stdout.rindex("}") + 1])


def _kill_when(cmd: list[str], env: dict[str, str], ready, timeout: float = 300, stdout=subprocess.DEVNULL,
               step_from=None) -> None:  # fmt: skip
    """Start `cmd` (its output, stderr included, to `stdout`), wait until `ready()` holds, then kill -9 its whole
    process group. With `step_from`, once that holds the group runs in ~1 ms slices and is killed frozen inside
    the state `ready()` describes (`_step_until`)."""
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    if step_from is not None:
        _step_until(proc.pid, step_from, ready, deadline)
    while not ready():
        assert proc.poll() is None, "the command finished before it could be killed"
        assert time.time() < deadline, "the kill point was never reached"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_stage_commands_run_against_pinned_input_versions(server, tiny, tmp_path) -> None:
    env = _env(server, tmp_path / "root")
    recipe = _recipe(tmp_path, tiny, rows=30)
    first = _mapl(["stage", "ingest", "--config", str(recipe)], env)
    assert first.returncode == 0, first.stderr
    assert _json_tail(first.stdout)["tables"] == {"t_original": 0, "t_quarantine": 0}
    _mapl(["stage", "ingest", "--config", str(recipe)], env)  # cached: no new version
    refreshed = _mapl(["stage", "ingest", "--config", str(recipe), "--refresh"], env)
    assert refreshed.returncode == 0, refreshed.stderr
    assert _json_tail(refreshed.stdout)["tables"] == {"t_original": 1, "t_quarantine": 1}  # ingested again
    unknown = _mapl(["run", "--config", str(recipe), "--refresh", "contracts"], env)
    assert unknown.returncode == 2 and "cannot refresh contracts" in unknown.stderr
    built = _mapl(["stage", "construct", "--config", str(recipe), "--input", "original@0"], env)
    assert built.returncode == 0, built.stderr
    record = _json_tail(built.stdout)
    assert record["input"] == "t_original@0" and record["tables"]["t_intra"] == 0
    store = DatasetStore(tmp_path / "root")
    assert [v.version for v in store.versions("t_original")] == [0, 1]
    assert store.to_pandas("t_original@1").equals(store.to_pandas("t_original@0"))
    bad = _mapl(["stage", "construct", "--config", str(recipe), "--input", "original@7"], env)
    assert bad.returncode == 1 and "t_original@7" in bad.stderr + bad.stdout


def test_kill_during_construction_leaves_no_partial_version(server, tiny, tmp_path) -> None:
    root = tmp_path / "root"
    env = _env(server, root)
    recipe = _recipe(tmp_path, tiny, rows=400)
    assert _mapl(["stage", "ingest", "--config", str(recipe)], env).returncode == 0
    staging = root / "staging"

    def staging_has_rows() -> bool:
        return staging.is_dir() and any(p.stat().st_size > 0 for p in staging.glob("*intra*"))

    _kill_when([MAPL, "stage", "construct", "--config", str(recipe)], env, staging_has_rows)
    store = DatasetStore(root)
    assert "t_intra" not in store.names()  # nothing half-written is visible
    again = _mapl(["stage", "construct", "--config", str(recipe)], env)
    assert again.returncode == 0, again.stderr
    for kind in ("intra", "inter", "inter_comparisons"):
        versions = store.versions(f"t_{kind}")
        assert [v.version for v in versions] == [0]
        assert json.loads(versions[0].metadata["contract"])["success"]


def test_kill_during_training_resumes_from_the_last_checkpoint(server, tiny, tmp_path) -> None:
    root = tmp_path / "root"
    env = _env(server, root)
    recipe = _recipe(tmp_path, tiny, rows=30)
    cfg = yaml.safe_load(recipe.read_text())
    cfg["reward_model"].update(max_steps=600, save_steps=20, limit_per_level=None)
    recipe.write_text(yaml.safe_dump(cfg))
    assert _mapl(["stage", "ingest", "--config", str(recipe)], env).returncode == 0
    built = _mapl(["stage", "construct", "--config", str(recipe)], env)
    assert built.returncode == 0, built.stderr[-3000:]
    checkpoints = root / "models" / "rm-t" / "checkpoints"

    def has_checkpoint() -> bool:
        return any((p / "trainer_state.json").is_file() for p in checkpoints.glob("checkpoint-*"))

    _kill_when([MAPL, "stage", "train", "--config", str(recipe), "--role", "rm"], env, has_checkpoint)
    assert not (root / "models" / "rm-t" / "model").exists()
    again = _mapl(["stage", "train", "--config", str(recipe), "--role", "rm"], env)
    assert again.returncode == 0, again.stderr
    record = _json_tail(again.stdout)
    assert record["resumed_from"] and "checkpoint-" in record["resumed_from"]
    assert record["steps"] == 600 and Path(record["model_dir"], "model.safetensors").is_file()


def test_concurrent_runs_do_not_corrupt_tables_or_the_cache(server, tiny, tmp_path) -> None:
    root = tmp_path / "root"
    env = _env(server, root)
    recipe = _recipe(tmp_path, tiny, rows=60)
    assert _mapl(["stage", "ingest", "--config", str(recipe)], env).returncode == 0
    procs = [subprocess.Popen([MAPL, "stage", "construct", "--config", str(recipe)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    store = DatasetStore(root)
    for kind in ("intra", "inter", "inter_comparisons"):
        versions = store.versions(f"t_{kind}")
        assert {v.metadata["fingerprint"] for v in versions} == {versions[0].metadata["fingerprint"]}
        for v in versions:
            assert len(store.to_pandas(f"t_{kind}@{v.version}")) == v.rows
    assert _mapl(["stage", "ingest", "--config", str(recipe)], env).returncode == 0  # the cache still reads


def test_the_ui_renders_the_run_artifacts(server, tiny, tmp_path) -> None:
    if shutil.which("chromium") is None:
        message = "Debian's chromium is missing (scripts/bootstrap.sh installs it: apt-get install chromium)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    env = _env(server, tmp_path / "root")
    recipe = _recipe(tmp_path, tiny, rows=30)
    done = _mapl(["run", "--config", str(recipe)], env)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("/runs/flow-run/")[1].split()[0]
    summary = json.loads((tmp_path / "root" / "reports" / "tiny" / "run-summary.json").read_text())
    assert summary["flow_run_id"] == run_id and summary["seconds"] > 0 and set(summary["models"]) == {
        "rm", "rm_baseline", "policy", "policy_baseline"}  # fmt: skip
    assert summary["comparison"] and all({"n", "mapl", "delta ci95"} <= set(r) for r in summary["comparison"])
    query = {"artifacts": {"key": {"any_": ["tiny-baseline-vs-mapl"]}, "flow_run_id": {"any_": [run_id]}}}
    request = urllib.request.Request(f"{server}/api/artifacts/filter", json.dumps(query).encode(),
                                     {"Content-Type": "application/json"})  # fmt: skip
    artifact_id = json.load(urllib.request.urlopen(request, timeout=30))[0]["id"]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,900"]  # fmt: skip

    def render(page: str, *expected: str) -> str:
        """The page's DOM once the UI has rendered `expected` (a loaded machine gets more time)."""
        dom = ""
        for budget in (20_000, 45_000, 90_000):
            dom = subprocess.run(["chromium", *flags, f"--virtual-time-budget={budget}", "--dump-dom", page],
                                 capture_output=True, text=True, timeout=300).stdout  # fmt: skip
            if all(e in dom for e in expected):
                break
        return dom

    # the run graph draws the pipeline's edges: ingest → construction → contracts → trainings → evaluations
    graph = json.load(urllib.request.urlopen(f"{server}/api/flow_runs/{run_id}/graph-v2", timeout=30))
    label = {node["id"]: node["label"] for _, node in graph["nodes"]}
    edges = {(label[p["id"]], node["label"]) for _, node in graph["nodes"] for p in node["parents"]}
    construct = "mapl-construct / instruction-combination sampling"  # the sub-flow
    expected_edges = {("ingest", "prompt-condition generation"), ("prompt-condition generation", construct),
                      ("ingest", construct), (construct, "constructed tables"), ("ingest", "data contracts"),
                      (construct, "data contracts"), ("constructed tables", "data contracts"),
                      ("data contracts", "evaluate base"), ("train policy", "evaluate mapl"),
                      ("train policy_baseline", "evaluate baseline"),
                      ("reward-model benchmark table", "evaluate reward models"),
                      ("train rm", "evaluate reward models"), ("train rm_baseline", "evaluate reward models")}  # fmt: skip
    expected_edges |= {
        ("data contracts", f"train {role}") for role in ("rm", "rm_baseline", "policy", "policy_baseline")
    }
    assert edges == expected_edges, "\n".join(map(str, sorted(edges)))  # and no edge between unrelated stages
    # the flow run with its stages' log lines (task names fill in later on a loaded machine)
    expected = ("mapl-pipeline", "Task runs", "pipeline tiny finished", "Completed")
    run_page = render(f"{server}/runs/flow-run/{run_id}", *expected)
    assert all(e in run_page for e in expected)
    wanted = ("tiny-baseline-vs-mapl", "tiny-data-contracts", "tiny-rm-metrics")
    listing = render(f"{server}/artifacts", *wanted)
    assert all(w in listing for w in wanted)
    page = f"{server}/artifacts/artifact/{artifact_id}"
    table = render(page, "held-out intra accuracy", "IFEval prompt_level_strict")
    assert "held-out intra accuracy" in table and "IFEval prompt_level_strict" in table, table[-2000:]
    shot = tmp_path / "artifact.png"
    subprocess.run(["chromium", *flags, "--virtual-time-budget=45000", f"--screenshot={shot}", page],
                   capture_output=True, timeout=300)  # fmt: skip
    assert shot.is_file() and shot.stat().st_size > 10_000
    if os.environ.get("MAPL_UPDATE_SCREENSHOT"):
        shutil.copy(shot, DOCS / "images" / "prefect-artifact-baseline-vs-mapl.png")


def test_cli_commands_use_the_server_mapl_ui_runs_for_their_data_root(tiny, tmp_path) -> None:
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(MAPL_DATA_ROOT=str(root), PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1")
    port = _free_port()
    ui = subprocess.Popen([MAPL, "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline and ui.poll() is None, "mapl ui did not come up"
                time.sleep(0.5)
        done = _mapl(["stage", "ingest", "--config", str(_recipe(tmp_path, tiny))], env)
        assert done.returncode == 0, done.stderr
        assert f"using the Prefect server of `mapl ui` at http://127.0.0.1:{port}" in done.stderr
        query = json.dumps({"flows": {"name": {"any_": ["mapl-stage-ingest"]}}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/flow_runs/filter", query,
                                         {"Content-Type": "application/json"})  # fmt: skip
        runs = json.load(urllib.request.urlopen(request, timeout=30))
        assert [r["state_type"] for r in runs] == ["COMPLETED"]  # the run went to that server
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    stale = _mapl(["stage", "ingest", "--config", str(_recipe(tmp_path, tiny))], env)  # its server is gone
    assert stale.returncode == 0 and "using the Prefect server" not in stale.stderr, stale.stderr


# --- the fault matrix (issue 32): kill -9 a whole `mapl run` at a point in each stage, run it again -----------

_FINISHED = re.compile(r"(?:Task|Flow) run '([^']+)' - Finished in state (\w+)")


# steps that run every time by design: construction reuses its committed tables by their stage key, and the
# contract gate and asset record read what is committed
_UNCACHED = {"instruction-combination sampling", "constructed tables", "data contracts"}


def _finished(log: Path) -> dict[str, str]:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return {name: state for name, state in _FINISHED.findall(text)}


def _cache_entries(root: Path) -> dict[str, str]:
    path = root / "cache" / "generations.jsonl"
    out = {}
    for line in path.read_bytes().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        out[row["key"]] = row["text"]
    return out


def _kill_points(root: Path, log: Path) -> dict:
    staging, checkpoints = root / "staging", root / "models" / "rm-t" / "checkpoints"
    seen: dict[str, int] = {}

    def generating() -> bool:  # a batch of the baseline policy's evaluation cached, the next under way
        if "evaluate base" not in _finished(log):
            return False
        seen.setdefault("at", len(_cache_entries(root)))
        return len(_cache_entries(root)) > seen["at"]

    return {
        "ingest": lambda: "Beginning flow run" in log.read_text(errors="replace"),
        "construction": lambda: (
            staging.is_dir() and any(p.stat().st_size > 0 for p in staging.glob("*intra*"))
        ),
        "contracts": lambda: "constructed tables" in _finished(log),
        "training": lambda: any(
            (p / "trainer_state.json").is_file() for p in checkpoints.glob("checkpoint-*")
        ),
        "evaluation": generating,
        # states of a few milliseconds, reached by stepping the run (`_step_until`)
        "checkpoint save": lambda: any(
            not (p / "trainer_state.json").is_file() for p in checkpoints.glob("checkpoint-*")
        ),
        "commit": lambda: (
            0
            < sum(
                (root / "tables" / f"t_{kind}" / "_delta_log" / f"{0:020d}.json").is_file()
                for kind in ("intra", "inter", "inter_comparisons")
            )
            < 3
        ),
    }


# kill points that last milliseconds, and when to start stepping towards them
_STEPPED = {
    "commit": lambda root: lambda: (root / "staging").is_dir() and any((root / "staging").glob("*intra*")),
    "checkpoint save": lambda root: lambda: (root / "models" / "rm-t" / "checkpoints").is_dir(),
}


def _step_until(pgid: int, start, ready, deadline: float) -> None:
    """Once `start()` holds, run the process group in slices of about a millisecond (SIGCONT, sleep, SIGSTOP)
    and check `ready()` while it stands still; return stopped inside the state `ready()` describes. For
    states that last a few milliseconds (the gap between two Delta commits), which polling a running process
    on a busy CPU misses."""
    while not start():
        assert time.time() < deadline, "the kill point's start was never reached"
        time.sleep(0.01)
    while True:
        os.killpg(pgid, signal.SIGSTOP)
        if ready():
            return
        assert time.time() < deadline, "the kill point was never reached"
        os.killpg(pgid, signal.SIGCONT)
        time.sleep(0.0005)


@pytest.mark.parametrize(
    "stage", ["ingest", "construction", "contracts", "commit", "training", "checkpoint save", "evaluation"]
)
def test_a_run_killed_in_any_stage_completes_when_run_again(server, tiny, tmp_path, stage: str) -> None:
    """kill -9 the whole `mapl run` (process group) inside `stage`, then run it again: the re-run completes, no
    table version is partial, no finished generation is lost from the cache, and exactly the stages the killed
    run had not finished execute again (the rest come from the cache)."""
    root = tmp_path / "root"
    env = _env(server, root)
    evaluation = {"limit": 24, "max_new_tokens": 16, "batch_size": 2, "backend": "transformers"}
    rm = {**tiny_recipe(str(tiny))["reward_model"], "max_steps": 40, "save_steps": 2}
    recipe = _recipe(
        tmp_path, tiny, rows=400 if stage == "construction" else 40, reward_model=rm, evaluation=evaluation
    )
    killed_log = tmp_path / "killed.log"
    ready = _kill_points(root, killed_log)[stage]
    with killed_log.open("w") as out:  # points of a few milliseconds are stepped to and frozen in
        step_from = _STEPPED[stage](root) if stage in _STEPPED else None
        _kill_when(
            [MAPL, "run", "--config", str(recipe)], env, ready, timeout=600, stdout=out, step_from=step_from
        )
    if stage in _STEPPED:
        assert ready(), "not killed inside the point: a half-saved checkpoint, or some tables committed"
    before_kill = _finished(killed_log)
    cached_before = _cache_entries(root)
    again = _mapl(["run", "--config", str(recipe)], env, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    rerun_log = tmp_path / "again.log"
    rerun_log.write_text(again.stdout + again.stderr)
    after = _finished(rerun_log)
    for name in before_kill:  # finished before the kill: served from the cache now
        if name in after and name not in _UNCACHED:
            assert after[name] == "Cached", f"{name} finished before the kill, yet ran again ({after[name]})"
    rerun = [n for n, s in after.items() if s == "Completed" and n not in _UNCACHED and n not in before_kill]
    assert rerun, f"nothing ran again after a kill in {stage}: {after}"  # the killed stage, at least
    store = DatasetStore(root)
    for name in store.names():
        for v in store.versions(name):  # every version whole: its row count reads back, its contract passed
            assert len(store.to_pandas(f"{name}@{v.version}")) == v.rows
            if "contract" in v.metadata:
                assert json.loads(v.metadata["contract"])["success"], f"{name}@{v.version}"
    cached_after = _cache_entries(root)
    assert all(cached_after.get(k) == t for k, t in cached_before.items())  # no finished entry lost


def test_two_runs_at_once_on_one_data_root_both_finish_and_agree(server, tiny, tmp_path) -> None:
    """Two `mapl run`s started together: each stage is computed once (the other waits on its lock, then reads
    the cache), both finish, and every table has one version per content."""
    root = tmp_path / "root"
    env = _env(server, root)
    recipe = _recipe(
        tmp_path, tiny, rows=40, evaluation={"limit": 3, "max_new_tokens": 8, "backend": "transformers"}
    )
    procs = [subprocess.Popen([MAPL, "run", "--config", str(recipe)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[-3000:] for o in outs]
    trained = [len(re.findall(r"Task run 'train \w+' - Finished in state Completed", o)) for o in outs]
    assert sum(trained) == 4, trained  # each of the four models trained once, by one of the runs
    store = DatasetStore(root)
    for name in store.names():  # built once: the run that waited found the other's tables
        assert [v.version for v in store.versions(name)] == [0], name
    assert json.loads((root / "reports" / "tiny" / "run-summary.json").read_text())["comparison"]
