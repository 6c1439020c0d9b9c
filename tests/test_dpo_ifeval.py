"""The DPO experiment command on a tiny model: end to end, killed and resumed, and its paired statistics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from corpus import HH_TEST

from mapl_core.evaluation.stats import mcnemar_exact, paired_ratio_bootstrap
from mapl_core.experiments.dpo_ifeval import DpoExperiment, paired

ROOT = Path(__file__).resolve().parents[1]


def test_mcnemar_exact_matches_the_binomial_tail() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(9, 1) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(3, 3) == 1.0


def test_paired_bootstrap_of_equal_arms_is_zero_and_of_a_shift_excludes_zero() -> None:
    same = [1.0, 0.0, 1.0, 0.0] * 10
    assert paired_ratio_bootstrap(same, same, [1.0] * 40) == (0.0, 0.0, 0.0)
    better = [1.0] * 40
    diff, low, high = paired_ratio_bootstrap(same, better, [1.0] * 40)
    assert diff == 0.5 and 0 < low <= diff <= high


def verdict(key: int, follows: list[bool]) -> dict:
    return {"key": key, "follow_all_strict": all(follows), "follow_instruction_list_strict": follows}


def test_paired_counts_discordant_prompts_in_both_directions() -> None:
    a = {str(k): verdict(k, [k < 3, True]) for k in range(10)}  # prompts 0-2 follow all
    b = {str(k): verdict(k, [k >= 1, True]) for k in range(10)}  # prompts 1-9 follow all
    p = paired(a, b)
    assert (p["only_first_follows"], p["only_second_follows"]) == (1, 7)
    assert p["prompt_level_strict"]["difference"] == pytest.approx(0.6)
    assert p["inst_level_strict"]["difference"] == pytest.approx(6 / 20)
    assert p["mcnemar_p"] == pytest.approx(mcnemar_exact(1, 7))


def test_recipe_refuses_a_schedule_that_never_peaks() -> None:
    raw = yaml.safe_load((ROOT / "configs/experiments/dpo_ifeval.yaml").read_text())
    DpoExperiment.model_validate(raw)
    raw["policy"]["warmup_steps"] = raw["policy"]["max_steps"]
    with pytest.raises(ValueError, match="reach its peak"):
        DpoExperiment.model_validate(raw)


def tiny_experiment(tiny: Path, folder: Path) -> Path:
    prompts = ROOT / "tests" / "ifeval_pairs_prompts.jsonl"
    recipe = {
        "name": "dpo-tiny",
        "build": {"name": "tb", "source": str(HH_TEST), "ingest": {"limit": 40}, "batch_size": 20},
        "policy": {"name": "p", "kind": "dpo", "model": str(tiny), "data": "tb", "max_steps": 3, "warmup_steps": 1,
                   "batch_size": 2, "max_length": 64, "limit_per_level": 8, "eval_limit_per_level": 4,
                   "save_steps": 1, "logging_steps": 1},
        "evaluation": {"prompts": str(prompts), "max_new_tokens": 8, "backend": "transformers"},
    }  # fmt: skip
    path = folder / "dpo_tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def run(config: Path, root: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "benchmarks/dpo_ifeval.py", "--config", str(config), "--root", str(root),
                             "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def test_experiment_runs_end_to_end_and_resumes_after_a_kill(tiny: Path, tmp_path: Path) -> None:
    config, root, out = tiny_experiment(tiny, tmp_path), tmp_path / "root", tmp_path / "record.json"
    first = run(config, root, out)
    deadline = time.time() + 600
    while time.time() < deadline:  # kill -9 once the first training is recorded
        steps = json.loads(out.read_text())["steps"] if out.is_file() else {}
        if "train baseline" in steps or first.poll() is not None:
            break
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    kept = json.loads(out.read_text())
    assert not kept.get("complete") and "train baseline" in kept["steps"]

    second = run(config, root, out)
    stdout, stderr = second.communicate(timeout=900)
    assert second.returncode == 0, stderr[-3000:]
    assert "build: kept" in stdout and "train baseline: kept" in stdout
    record = json.loads(out.read_text())
    assert record["complete"] and set(record["summary"]["arms"]) == {"untrained", "baseline", "mapl"}
    assert record["steps"]["train baseline"] == kept["steps"]["train baseline"]
    arms = record["summary"]["arms"]
    assert all(a["prompts"] == 6 and 0.0 <= a["at_cap_share"] <= 1.0 for a in arms.values())
    assert arms["mapl"]["held_out_original_accuracy"] is not None
    assert set(record["summary"]["paired"]) == {"mapl − baseline", "mapl − untrained", "baseline − untrained"}
    assert "| mapl − baseline |" in stdout and "McNemar p" in stdout
    groups = record["summary"]["by_group"]
    assert set(groups) == set(arms) and sum(g["instructions"] for g in groups["mapl"].values()) > 0
    assert "| IFEval group |" in stdout

    third = run(config, root, out)
    stdout, _ = third.communicate(timeout=600)
    assert third.returncode == 0 and stdout.count(": kept from") == 6  # build, 2 trainings, 3 evaluations


def test_by_group_counts_each_instruction_under_its_group() -> None:
    from mapl_core.experiments.dpo_ifeval import by_group

    per_instruction = {  # as `summary.json` holds it
        "keywords:existence": {"count": 1, "strict_acc": 1.0, "loose_acc": 1.0},
        "keywords:frequency": {"count": 1, "strict_acc": 0.0, "loose_acc": 0.0},
        "punctuation:no_comma": {"count": 1, "strict_acc": 0.0, "loose_acc": 0.0},
    }
    assert by_group(per_instruction) == {
        "keywords": {"instructions": 2, "inst_level_strict": 0.5},
        "punctuation": {"instructions": 1, "inst_level_strict": 0.0},
    }
