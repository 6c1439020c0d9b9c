"""benchmarks/rm_quality.py --merge: runs of separate calls joined into one experiment only when their settings
agree (records from before an option count as its old default), never repeating a run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from rm_quality_module import rmq

BASE, MAPL = "baseline (original only)", "variant: MAPL with mirrored intra rows"


def run(variant: str, seed: int, acc: float) -> dict:
    levels = rmq.LEVELS_REPORTED
    return {"variant": variant, "seed": seed, "seconds": 1.0, "eval_seconds": 1.0, "train_comparisons": 8,
            "accuracy": dict.fromkeys(levels, acc), "rows": dict.fromkeys(levels, 10)}  # fmt: skip


def record(path: Path, runs: list[dict], fields: dict | None = None, **settings: str) -> Path:
    """A record as rm_quality writes it; `fields`: more top-level fields (e.g. held_out_inter)."""
    args = {"steps": "1000", "batch": "8", "lr": "0.0001", "max_length": "128", "pairs": "2312",
            "families": "b,a", "eval_splits": "test,validation", "eval_per_level": "300", "mix": "balanced",
            **settings}  # fmt: skip
    path.write_text(json.dumps({"machine": "x86_64", "args": args, "runs": runs, **(fields or {})}))
    return path


def merge(out: Path, *paths: Path) -> dict:
    rmq.merge(argparse.Namespace(merge=list(paths), out=out))
    return json.loads(out.read_text())


def test_merge_joins_seeds_and_pairs_them(tmp_path: Path) -> None:
    a = record(tmp_path / "a.json", [run(BASE, 0, 0.60), run(MAPL, 0, 0.80)], truncation="instructions")
    b = record(tmp_path / "b.json", [run(MAPL, 1, 0.90), run(BASE, 1, 0.70)], truncation="instructions")
    merged = merge(tmp_path / "m.json", a, b)
    assert [(r["variant"], r["seed"]) for r in merged["runs"]] == [(BASE, 0), (BASE, 1), (MAPL, 0), (MAPL, 1)]
    assert merged["summary"][BASE]["original"]["mean"] == pytest.approx(0.65)
    assert merged["summary"][MAPL]["inter_decided"]["mean"] == pytest.approx(0.85)
    assert merged["summary"][MAPL]["original"]["minus_baseline_paired"]["mean"] == pytest.approx(0.20)
    assert merged["merged_from"] == [str(a), str(b)] and merged["complete"] is True


def test_records_without_an_option_count_as_its_old_default(tmp_path: Path) -> None:
    old = record(tmp_path / "old.json", [run(BASE, 0, 0.6)], families="a,b")  # no truncation, no scheduler
    new = record(tmp_path / "new.json", [run(BASE, 1, 0.7)], truncation="half", scheduler="cosine")
    assert len(merge(tmp_path / "m.json", old, new)["runs"]) == 2
    constant = record(tmp_path / "c.json", [run(BASE, 2, 0.7)], scheduler="constant_with_warmup")
    with pytest.raises(SystemExit, match=r"scheduler 'constant_with_warmup' differ .*\('cosine'\)"):
        merge(tmp_path / "m2.json", old, constant)
    assert not (tmp_path / "m2.json").exists()


def test_a_repeated_run_is_refused(tmp_path: Path) -> None:
    a = record(tmp_path / "a.json", [run(BASE, 0, 0.6)])
    b = record(tmp_path / "b.json", [run(BASE, 0, 0.7)])
    with pytest.raises(SystemExit, match="seed 0 is also in"):
        merge(tmp_path / "m.json", a, b)


def test_only_takes_a_whole_name_alone_and_a_part_as_a_substring() -> None:
    half = "variant: mirrored intra + original on half the rows"
    assert rmq.only_names(half) == [half]
    assert rmq.only_names("baseline (original only), " + half) == ["baseline (original only)", half]
    assert set(rmq.only_names("original")) >= {"baseline (original only)", half}
    assert rmq.only_names("no such variant") == []


def test_merge_keeps_the_inter_makeup_and_prints_the_bound(tmp_path: Path, capsys) -> None:
    makeup = {"pool": {"decided": 7, "same_instructions": 2, "different_instructions": 1},
              "sampled": {"decided": 7, "same_instructions": 2, "different_instructions": 1}}  # fmt: skip
    old = record(tmp_path / "old.json", [run(BASE, 0, 0.5), run(MAPL, 0, 0.8)])  # from before the count
    new = record(tmp_path / "new.json", [run(BASE, 1, 0.5), run(MAPL, 1, 0.8)], {"held_out_inter": makeup})
    assert merge(tmp_path / "m.json", old, new)["held_out_inter"] == makeup
    printed = capsys.readouterr().out
    assert "decided 7 (70.0%)" in printed and "gains at most +35.0 points" in printed
    other_makeup = {**makeup, "pool": {**makeup["pool"], "decided": 8}}
    other = record(tmp_path / "other.json", [run(BASE, 2, 0.5)], {"held_out_inter": other_makeup})
    with pytest.raises(SystemExit, match="held-out inter rows differ"):
        merge(tmp_path / "m2.json", new, other)
    assert not (tmp_path / "m2.json").exists()
