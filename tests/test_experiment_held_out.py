"""The quality experiment's held-out columns (mapl_core.experiments.held_out): what the all-inter column is made
of, counted by what carries each row's label (`examples.inter_kinds`), and the bound that puts on a perfect
instruction reader."""

from __future__ import annotations

import pandas as pd
import pytest

from mapl_core.experiments.held_out import held_out_sets, inter_makeup, makeup_line, reader_bound
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
    makeup = inter_makeup(inter_rows(), ("test", "validation"), ["d1", "s1", "x1", "bad", "t1"])
    assert makeup == {
        "pool": {"decided": 2, "same_instructions": 2, "different_instructions": 1},
        "sampled": {"decided": 1, "same_instructions": 1, "different_instructions": 1},
    }
    # a third decided, the baseline right on 40% of them: at most a third of 60 points
    assert reader_bound(makeup, 0.40) == pytest.approx(20.0)
    line = makeup_line(makeup)
    assert "3 of 5 consistent held-out rows" in line and "decided 1 (33.3%)" in line
    assert "(pool: 2 / 2 / 1)" in line


def test_held_out_sets_come_from_the_held_out_splits_only(tables) -> None:
    comps, groups = held_out_sets(tables, tables["intra"], ("test", "validation"), None)
    assert len(comps) == len(groups) and {"original", "intra", "inter"} <= set(groups)
    train_keys = set(tables["original"][tables["original"].split == "train"].pair_id)
    originals = [c for c, g in zip(comps, groups, strict=True) if g == "original"]
    assert originals and not {c.key for c in originals} & train_keys
    decided = {c.key for c, g in zip(comps, groups, strict=True) if g == "inter_decided"}
    held_inter = tables["inter"][tables["inter"].split != "train"]
    assert decided == set(decided_inter(held_inter).row_id)
