"""`mapl build`: construction invariants, determinism, versions, contracts, crash safety, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from corpus import HH_TEST, IFEVAL_PROMPTS
from typer.testing import CliRunner

from data_contracts import CONTRACTS, validate
from mapl_cli.main import app
from mapl_core.build import ContractFailed, IngestFailed, build
from mapl_core.config import BuildConfig, ConstructionConfig, IngestConfig
from mapl_core.instructions import conflict_free, get_family
from mapl_core.storage.delta_tables import DatasetStore

ROOT = Path(__file__).resolve().parents[1]


def cfg_for(limit: int = 60, **kw) -> BuildConfig:
    return BuildConfig(name="t", source=str(HH_TEST), ingest=IngestConfig(limit=limit), batch_size=25, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[DatasetStore, object]:
    store = DatasetStore(tmp_path_factory.mktemp("root"))
    return store, build(cfg_for(), store, contracts=CONTRACTS)


def test_intra_rows_meet_their_condition_and_labels_reverify(built) -> None:
    store, _ = built
    rows = store.read("t_intra").to_pylist()
    assert len(rows) >= 100 and {r["condition"] for r in rows} == {1, 2}
    for r in rows:
        fw, fl = r["follows_w"], r["follows_l"]
        assert (all(fw) and not all(fl)) if r["condition"] == 1 else (any(fw) and not any(fl))
        assert r["instructions_w"] == r["instructions_l"] and conflict_free(r["instructions_w"])
        assert 1 <= r["k"] <= 3
        for ids, kws, follows in (
            (r["instructions_w"], r["kwargs_w"], fw),
            (r["instructions_l"], r["kwargs_l"], fl),
        ):
            assert [
                get_family(i).check(r["response"], json.loads(k)) for i, k in zip(ids, kws, strict=True)
            ] == follows
        # the history is kept and the instructions are appended to the last user turn
        assert r["prompt_w"][:-1] == r["prompt_l"][:-1]
        assert r["prompt_w"][-1]["role"] == "user" and r["texts_w"][-1] in r["prompt_w"][-1]["content"]
        assert r["response"] not in r["prompt_w"][-1]["content"]


def test_mirrored_intra_rows_share_their_two_prompts_swapped(tmp_path: Path, built) -> None:
    """construction.intra_pairing: mirrored — each pair's two responses are ranked under the same couple of
    prompts in opposite orders, so no prompt-only rule can rank both rows right; the contract passes and
    the build stays deterministic. The original and inter tables equal the independent build's."""
    _, independent = built
    store = DatasetStore(tmp_path / "m")
    cfg = cfg_for(construction=ConstructionConfig(intra_pairing="mirrored"))
    outcome = build(cfg, store, contracts=CONTRACTS)
    rows = store.read("t_intra").to_pylist()
    by_pair: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_pair.setdefault(r["pair_id"], {})[r["response_side"]] = r
    assert len(by_pair) >= 50 and all(set(twin) == {"chosen", "rejected"} for twin in by_pair.values())
    assert {r["condition"] for r in rows} == {1, 2}
    originals = {r["pair_id"]: r for r in store.read("t_original").to_pylist()}
    for pair_id, twin in by_pair.items():
        c, r = twin["chosen"], twin["rejected"]
        assert (
            c["response"] == originals[pair_id]["chosen"] and r["response"] == originals[pair_id]["rejected"]
        )
        assert (c["prompt_w"], c["prompt_l"]) == (r["prompt_l"], r["prompt_w"])
        assert (c["kwargs_w"], c["kwargs_l"]) == (r["kwargs_l"], r["kwargs_w"])
        for row in (c, r):  # every instruction separates the two responses; both conditions hold
            assert all(row["follows_w"]) and not any(row["follows_l"])
            assert row["instructions_w"] == row["instructions_l"] and conflict_free(row["instructions_w"])
            for side in ("w", "l"):
                ids, kws = row[f"instructions_{side}"], row[f"kwargs_{side}"]
                assert [
                    get_family(i).check(row["response"], json.loads(k)) for i, k in zip(ids, kws, strict=True)
                ] == row[f"follows_{side}"]
    for kind in ("original", "inter", "inter_comparisons"):
        assert (
            outcome.versions[kind].metadata["fingerprint"]
            == independent.versions[kind].metadata["fingerprint"]
        ), kind
    again = build(cfg, DatasetStore(tmp_path / "again"), workers=2)
    assert (
        again.versions["intra"].metadata["fingerprint"] == outcome.versions["intra"].metadata["fingerprint"]
    )

    # the contract checks the twins as a whole-table property: a lone row and a broken twin fail it
    table = store.read("t_intra")
    rows = table.to_pylist()
    lone, broken = rows[0], rows[2]
    broken["prompt_l"] = rows[4]["prompt_l"]
    dropped = next(t for t in rows if t["pair_id"] == lone["pair_id"] and t is not lone)
    kept = [r for r in rows if r is not dropped]
    staged = store.stage("t_intra", table.schema, [pa.RecordBatch.from_pylist(kept, schema=table.schema)])
    result = validate("intra", staged, cfg, tmp_path / "reports")
    store.discard(staged)
    assert not result.success
    failure = next(f for f in result.failures if f["expectation"].startswith("mirrored twins"))
    assert {lone["row_id"], broken["row_id"]} <= set(failure["examples"])


def test_inter_rows_and_comparisons(built) -> None:
    store, _ = built
    inter = store.read("t_inter").to_pylist()
    comps = store.read("t_inter_comparisons").to_pylist()
    by_id = {r["row_id"]: r for r in inter}
    assert any(r["consistent"] for r in inter) and any(not r["consistent"] for r in inter)
    for r in inter:
        assert r["degree"] == (sum(r["follows_chosen"]) - sum(r["follows_rejected"])) / r["k"]
    for c in comps:
        strong, weak = by_id[c["stronger_row_id"]], by_id[c["weaker_row_id"]]
        assert strong["pair_id"] == weak["pair_id"] and strong["degree"] > weak["degree"]


def test_commit_metadata_records_lineage(built) -> None:
    store, outcome = built
    v = outcome.versions["intra"]
    for key in ("config_hash", "code_version", "seed", "inputs", "rows", "fingerprint", "contract"):
        assert key in v.metadata
    assert json.loads(v.metadata["inputs"])["t_original"] == outcome.versions["original"].version
    assert json.loads(v.metadata["contract"])["success"] is True
    assert (Path(store.root) / "reports" / "t").is_dir()


def test_same_input_config_and_seed_give_identical_tables_serial_or_parallel(tmp_path: Path, built) -> None:
    store, outcome = built
    again = build(cfg_for(), DatasetStore(tmp_path / "a"), workers=2)
    for kind, v in outcome.versions.items():
        assert again.versions[kind].metadata["fingerprint"] == v.metadata["fingerprint"], kind
    # byte-identical exports, too
    runner = CliRunner()
    exports = []
    for root in (store.root, str(tmp_path / "a")):
        target = tmp_path / f"export-{len(exports)}.parquet"
        assert (
            runner.invoke(
                app, ["datasets", "pull", "t_inter", "--to", str(target), "--data-root", root]
            ).exit_code
            == 0
        )
        exports.append(target.read_bytes())
    assert exports[0] == exports[1]
    other_seed = build(cfg_for(seed=1), DatasetStore(tmp_path / "b"))
    assert (
        other_seed.versions["intra"].metadata["fingerprint"]
        != outcome.versions["intra"].metadata["fingerprint"]
    )


def test_versions_stay_readable_and_pull_exports_them(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    first = build(cfg_for(30), store)
    second = build(cfg_for(30, seed=5), store)
    assert second.versions["intra"].version == first.versions["intra"].version + 1
    old = store.read("t_intra", first.versions["intra"].version)
    assert old.num_rows == first.versions["intra"].rows
    ds = store.to_dataset(f"t_intra@{first.versions['intra'].version}")
    assert len(ds) == old.num_rows and ds[0]["row_id"] == old.column("row_id")[0].as_py()
    runner = CliRunner()
    out = tmp_path / "pulled.jsonl"
    result = runner.invoke(
        app, ["datasets", "pull", "t_intra@0", "--to", str(out), "--data-root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["row_id"] for line in out.read_text().splitlines()] == old.column(
        "row_id"
    ).to_pylist()
    for view, columns in (
        ("trl", {"prompt", "chosen", "rejected", "level"}),
        ("two_sided", {"prompt_w", "response_w", "prompt_l", "response_l", "level"}),
    ):
        target = tmp_path / f"{view}.parquet"
        assert (
            runner.invoke(
                app,
                ["datasets", "pull", "t", "--view", view, "--to", str(target), "--data-root", str(tmp_path)],
            ).exit_code
            == 0
        )
        import pyarrow.parquet as pq

        assert columns <= set(pq.read_schema(target).names)


def test_a_failed_contract_commits_nothing_and_writes_reports(tmp_path: Path) -> None:
    # a source whose prompt is an IFEval benchmark prompt must not become training data
    bench = json.loads(IFEVAL_PROMPTS.read_text().splitlines()[0])["prompt"]
    rows = [{"prompt": bench, "chosen": "A long helpful answer about the topic.", "rejected": "No."}]
    rows += [
        {"prompt": f"Question number {i}?", "chosen": f"Answer {i} explained well.", "rejected": "I won't."}
        for i in range(30)
    ]
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = DatasetStore(tmp_path / "root")
    cfg = BuildConfig(name="c", source=str(src), construction=ConstructionConfig(k_max=2))
    with pytest.raises(ContractFailed) as info:
        build(cfg, store, contracts=CONTRACTS)
    assert "check_not_benchmark_prompt" in str(info.value) and '"source_row": "1"' in str(info.value)
    assert all(p.exists() for p in info.value.reports)
    assert store.names() == []


def test_corrupted_label_is_caught(tmp_path: Path, built) -> None:
    store, _ = built
    table = store.read("t_intra")
    rows = table.to_pylist()
    rows[3]["follows_w"] = [not f for f in rows[3]["follows_w"]]
    staged = store.stage("t_intra", table.schema, [pa.RecordBatch.from_pylist(rows, schema=table.schema)])
    result = validate("intra", staged, cfg_for(), tmp_path)
    store.discard(staged)
    assert not result.success
    failure = next(f for f in result.failures if "check_labels_verified" in f["expectation"])
    assert failure["unexpected_count"] >= 1 and failure["examples"][0]["row"] == 3


def test_too_many_bad_rows_fails_with_reasons_and_keeps_the_quarantine(tmp_path: Path) -> None:
    rows = [{"prompt": "q", "chosen": "same", "rejected": "same"}] * 3 + [
        {"prompt": "q2", "chosen": "a", "rejected": "b"}
    ]
    src = tmp_path / "bad.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = DatasetStore(tmp_path / "root")
    with pytest.raises(IngestFailed, match=r"3 of 4 rows are bad .* 3 × chosen is identical to rejected"):
        build(BuildConfig(name="q", source=str(src)), store)
    assert store.names() == ["q_quarantine"]
    assert store.read("q_quarantine").column("source_row").to_pylist() == [1, 2, 3]


def test_kill_9_mid_build_leaves_no_new_version(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = DatasetStore(root)
    build(cfg_for(20), store)
    before = {n: store.versions(n)[-1].version for n in store.names()}
    cmd = [
        sys.executable,
        "-m",
        "mapl_cli.main",
        "build",
        "--source",
        str(HH_TEST),
        "--name",
        "t",
        "--limit",
        "2000",
        "--data-root",
        str(root),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    staging = root / "staging"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        p.stat().st_size > 0 for p in staging.glob("t_intra-*.parquet")
    ):
        time.sleep(0.2)
    time.sleep(1.0)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert {n: store.versions(n)[-1].version for n in store.names()} == before
    again = build(cfg_for(20, seed=2), store)
    assert again.versions["intra"].version == before["t_intra"] + 1


def test_cli_build_then_pull_the_held_out_test_split(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["build", "--source", str(HH_TEST), "--name", "cli", "--limit", "120", "--data-root", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "cli_intra" in result.output and "passed" in result.output
    listed = runner.invoke(app, ["datasets", "list", "--data-root", str(tmp_path)])
    assert all(
        f"cli_{k}" in listed.output for k in ("original", "quarantine", "intra", "inter", "inter_comparisons")
    )
    shown = runner.invoke(app, ["datasets", "show", "cli_intra@0", "--data-root", str(tmp_path)])
    assert '"config_hash"' in shown.output and "follows_w" in shown.output
    target = tmp_path / "test.jsonl"
    pulled = runner.invoke(
        app,
        [
            "datasets",
            "pull",
            "cli_inter",
            "--split",
            "test",
            "--to",
            str(target),
            "--data-root",
            str(tmp_path),
        ],
    )
    assert pulled.exit_code == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows and {r["split"] for r in rows} == {"test"}
    missing = runner.invoke(
        app, ["build", "--source", str(tmp_path / "nope.jsonl"), "--data-root", str(tmp_path)]
    )
    assert missing.exit_code == 2 and "no such file" in (missing.stderr or missing.output)


def test_duplicate_rows_are_caught(tmp_path: Path, built) -> None:
    store, _ = built
    table = store.read("t_intra")
    rows = table.to_pylist()
    staged = store.stage(
        "t_intra", table.schema, [pa.RecordBatch.from_pylist([*rows, rows[0]], schema=table.schema)]
    )
    result = validate("intra", staged, cfg_for(), tmp_path)
    store.discard(staged)
    assert not result.success
    assert any(
        f["expectation"] == "unique(row_id)" and f["examples"] == [rows[0]["row_id"]] for f in result.failures
    )


def test_code_version_marks_a_checkout_with_uncommitted_changes(tmp_path: Path) -> None:
    from mapl_core import __version__
    from mapl_core.code_version import code_version

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip

    assert code_version(tmp_path) == __version__  # not a checkout
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-qm", "one")
    sha = git("rev-parse", "--short=12", "HEAD")
    assert code_version(tmp_path) == f"{__version__}+{sha}"
    (tmp_path / "notes.txt").write_text("untracked files do not change what the commit builds\n")
    assert code_version(tmp_path) == f"{__version__}+{sha}"
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path) == f"{__version__}+{sha}.dirty"
