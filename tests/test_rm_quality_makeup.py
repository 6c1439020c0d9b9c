"""What the all-inter column of benchmarks/rm_quality.py is made of: consistent held-out inter rows counted by
what carries their label (`examples.inter_kinds`), the bound that puts on a perfect instruction reader, and
the count carried through --merge."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest
from rm_quality_module import rmq

from mapl_core.training.examples import INTER_KINDS, decided_inter, inter_kinds


def inter_rows() -> pd.DataFrame:
    rows = [  # (row id, split, follows_chosen, follows_rejected)
        ("d1", "test", [True, True], [True, False]),  # decided
        ("d2", "validation", [True], [False]),  # decided
        ("s1", "test", [True, False], [True, False]),  # the same instruction followed by both
        ("s2", "test", [False, False], [False, False]),  # none followed by either
        ("x1", "validation", [True, False], [False, True]),  # one each, different ones
        ("bad", "test", [False], [True]),  # inconsistent: the checks contradict the human label
        ("t1", "train", [True], [False]),  # not held out
    ]
    df = pd.DataFrame(rows, columns=["row_id", "split", "follows_chosen", "follows_rejected"])
    gap = df.follows_chosen.map(sum) - df.follows_rejected.map(sum)
    return df.assign(degree=gap / df.follows_chosen.map(len), consistent=gap >= 0)


def test_inter_kinds_partitions_the_consistent_rows() -> None:
    df = inter_rows()
    kinds = inter_kinds(df)
    assert dict(zip(df.row_id[kinds.index], kinds, strict=True)) == {
        "d1": "decided", "d2": "decided", "t1": "decided", "s1": "same_instructions",
        "s2": "same_instructions", "x1": "different_instructions",
    }  # fmt: skip
    assert set(df.row_id[kinds[kinds == "decided"].index]) == set(decided_inter(df).row_id)
    assert set(kinds) == set(INTER_KINDS)


def test_inter_kinds_on_a_real_build(tables) -> None:
    inter = tables["inter"]
    kinds = inter_kinds(inter)
    assert len(kinds) == int(inter.consistent.sum())
    for r, kind in zip(inter.loc[kinds.index].itertuples(index=False), kinds, strict=True):
        same_count = sum(r.follows_chosen) == sum(r.follows_rejected)
        same_set = list(r.follows_chosen) == list(r.follows_rejected)
        assert kind == (
            "same_instructions" if same_set else "different_instructions" if same_count else "decided"
        )


def test_makeup_counts_the_pool_and_the_sample_and_bounds_the_gain() -> None:
    makeup = rmq.inter_makeup(inter_rows(), ("test", "validation"), ["d1", "s1", "x1", "bad", "t1"])
    assert makeup == {
        "pool": {"decided": 2, "same_instructions": 2, "different_instructions": 1},
        "sampled": {"decided": 1, "same_instructions": 1, "different_instructions": 1},
    }
    # a third decided, the baseline right on 40% of them: at most a third of 60 points
    assert rmq.reader_bound(makeup, 0.40) == pytest.approx(20.0)
    line = rmq.makeup_line(makeup)
    assert "3 of 5 consistent held-out rows" in line and "decided 1 (33.3%)" in line
    assert "(pool: 2 / 2 / 1)" in line


def test_merge_keeps_the_makeup_and_prints_the_bound(tmp_path: Path, capsys) -> None:
    makeup = {"pool": {"decided": 7, "same_instructions": 2, "different_instructions": 1},
              "sampled": {"decided": 7, "same_instructions": 2, "different_instructions": 1}}  # fmt: skip
    args = {"steps": "10", "batch": "8", "lr": "0.0001", "max_length": "128", "pairs": "20", "families": "a",
            "eval_splits": "test,validation", "eval_per_level": "10", "mix": "balanced"}  # fmt: skip
    levels = rmq.LEVELS_REPORTED

    def record(name: str, seed: int, **extra) -> Path:
        runs = [{"variant": v, "seed": seed, "seconds": 1.0, "eval_seconds": 1.0, "train_comparisons": 8,
                 "accuracy": dict.fromkeys(levels, acc), "rows": dict.fromkeys(levels, 10)}
                for v, acc in (("baseline (original only)", 0.5), ("MAPL (original + intra + inter)", 0.8))]  # fmt: skip
        path = tmp_path / name
        path.write_text(json.dumps({"machine": "x86_64", "args": args, "runs": runs, **extra}))
        return path

    old, new = (
        record("old.json", 0),
        record("new.json", 1, held_out_inter=makeup),
    )  # old: from before the count
    rmq.merge(argparse.Namespace(merge=[old, new], out=tmp_path / "m.json"))
    assert json.loads((tmp_path / "m.json").read_text())["held_out_inter"] == makeup
    printed = capsys.readouterr().out
    assert "decided 7 (70.0%)" in printed and "gains at most +35.0 points" in printed
    other = record("other.json", 2, held_out_inter={**makeup, "pool": {**makeup["pool"], "decided": 8}})
    with pytest.raises(SystemExit, match="held-out inter rows differ"):
        rmq.merge(argparse.Namespace(merge=[new, other], out=tmp_path / "m2.json"))
    assert not (tmp_path / "m2.json").exists()
