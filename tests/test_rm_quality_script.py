"""benchmarks/rm_quality.py end to end on a tiny experiment: two builds, arms trained by `training.run.train`
(MiniLM, a few steps), scored on the held-out columns, a record that a second call resumes, and --merge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = """name: tiny
build: {pairs: 80, batch_size: 80}
train: {max_steps: 2, batch_size: 2, learning_rate: 1.0e-4, max_length: 64, logging_steps: 1, save_steps: 1,
        eval_limit_per_level: 4}
held_out: {splits: [test, validation], per_level: 12}
arms: {baseline: 1, mapl-mirrored: 1}
"""


def script(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "rm_quality.py"), "--root", str(tmp / "root"), *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rmq")
    shutil.copy(ROOT / "configs" / "experiments" / "variants.yaml", tmp / "variants.yaml")
    (tmp / "tiny.yaml").write_text(TINY)
    return tmp


def test_arms_train_through_the_product_and_a_second_call_resumes(experiment: Path) -> None:
    out = experiment / "a.json"
    done = script(experiment, "--config", str(experiment / "tiny.yaml"), "--out", str(out))
    record = json.loads(out.read_text())
    assert record["complete"] and [(r["variant"], r["seed"]) for r in record["runs"]] == [
        ("baseline", 0),
        ("mapl-mirrored", 0),
    ]
    for run in record["runs"]:
        assert {"original", "intra", "inter", "intra_mirrored"} <= set(run["accuracy"])
        assert run["train_comparisons"] == 2 * 2
        model = experiment / "root" / "models" / f"tiny-{run['variant']}-s0" / "model"
        card = json.loads((model / "metrics.json").read_text())  # the model folder `mapl train` writes
        assert card["steps"] == 2 and not (model.parent / "checkpoints").exists()
    assert record["settings"]["train"]["max_steps"] == 2 and sum(record["held_out_inter"]["pool"].values())
    assert "| mapl-mirrored | 1 |" in done.stdout and "minus the baseline of the same seed" in done.stdout
    again = script(experiment, "--config", str(experiment / "tiny.yaml"), "--out", str(out))
    assert "0 runs to train, 2 kept" in again.stdout
    assert json.loads(out.read_text())["runs"] == record["runs"]


def test_merge_joins_seeds_run_apart_and_refuses_other_settings(experiment: Path) -> None:
    cfg = str(experiment / "tiny.yaml")
    a, b, c = (experiment / f"{n}.json" for n in ("s1", "s2", "other"))
    script(experiment, "--config", cfg, "--only", "baseline", "--first-seed", "1", "--out", str(a))
    script(experiment, "--config", cfg, "--only", "baseline", "--first-seed", "2", "--out", str(b))
    merged = experiment / "m.json"
    done = script(experiment, "--config", cfg, "--merge", str(a), str(b), "--out", str(merged))
    record = json.loads(merged.read_text())
    assert [(r["variant"], r["seed"]) for r in record["runs"]] == [("baseline", 1), ("baseline", 2)]
    runs = [json.loads(p.read_text())["runs"][0]["accuracy"]["original"] for p in (a, b)]
    assert record["summary"]["baseline"]["original"]["mean"] == pytest.approx(sum(runs) / 2)
    assert "| baseline | 2 |" in done.stdout
    script(
        experiment,
        "--config",
        cfg,
        "--only",
        "baseline",
        "--first-seed",
        "1",
        "--steps",
        "1",
        "--out",
        str(c),
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    refused = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rm_quality.py"), "--config", cfg, "--merge", str(a), str(c),
         "--out", str(experiment / "no.json")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode != 0 and "settings differ" in refused.stderr
    assert not (experiment / "no.json").exists()
    repeated = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rm_quality.py"), "--config", cfg, "--merge", str(a), str(a),
         "--out", str(experiment / "no.json")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert repeated.returncode != 0 and "seed 1 is also in" in repeated.stderr
