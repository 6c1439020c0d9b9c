"""The quality experiment's held-out sets, and what its all-inter column is made of.

Besides every level, three columns say whether a model reads the instructions against the response:
- *inter (decided)*: inter rows where the chosen response follows strictly more of the combination. On the
  other consistent rows both follow equally many, so the label is the human one alone and no reward model
  gains there from the instructions (`inter_makeup` counts them; `reader_bound` is what that allows).
- *intra (flipped)*: intra rows re-read with the pair's other response where the checkers reverse the
  preference (`examples.flipped_intra`); an argument prior scores them below 50.
- *intra (mirrored)*: whole twins of a mirrored build (`construction.intra_pairing: mirrored`); a prompt-only
  model ranks exactly one row of each twin right, so 50 is what it scores.
"""

from __future__ import annotations

import random

import pandas as pd

from mapl_core.training.examples import (
    INTER_KINDS,
    Comparison,
    comparisons_for,
    decided_inter,
    flipped_intra,
    inter_kinds,
    intra_comparisons,
    sample_per_level,
)

COLUMNS = ("original", "intra", "intra_flipped", "intra_mirrored", "inter", "inter_decided", "inter_margin")


def held_out_sets(
    tables: dict[str, pd.DataFrame],
    mirrored_intra: pd.DataFrame,
    splits: tuple[str, ...],
    per_level: int | None,
) -> tuple[list[Comparison], list[str]]:
    """(held-out comparisons, the column each is reported under) from `splits`: every level, plus the decided
    inter pairs, the flipped intra rows and the mirrored build's intra twins (`mirrored_intra`: that build's
    intra table). Neither split trains or selects anything here, so both together halve the noise."""
    held = {
        k: pd.concat([df[df.split == s] for s in splits]).assign(split="held_out") for k, df in tables.items()
    }
    comps = sample_per_level(
        comparisons_for(held, ("original", "intra", "inter"), "both", "held_out"), per_level, 0
    )
    decided_tables = dict(held, inter=decided_inter(held["inter"]))
    decided = sample_per_level(
        comparisons_for(decided_tables, ("inter",), "pairwise", "held_out"), per_level, 0
    )
    flipped = sample_per_level(
        list(intra_comparisons(flipped_intra(held["intra"], held["original"]))), per_level, 0
    )
    held_m = pd.concat([mirrored_intra[mirrored_intra.split == s] for s in splits])
    twins = sorted(
        set(held_m.pair_id)
    )  # whole twins: a prompt-only model ranks exactly one row of each right
    keep = set(random.Random(0).sample(twins, min(len(twins), (per_level or len(held_m)) // 2)))
    mirrored = list(intra_comparisons(held_m[held_m.pair_id.isin(keep)]))
    groups = [c.level for c in comps] + ["inter_decided"] * len(decided) + ["intra_flipped"] * len(flipped)
    return comps + decided + flipped + mirrored, groups + ["intra_mirrored"] * len(mirrored)


def inter_makeup(inter: pd.DataFrame, splits: tuple[str, ...], sampled_keys) -> dict[str, dict[str, int]]:
    """The consistent inter rows of the held-out `splits` ("pool") and the ones the all-inter column samples
    ("sampled", by row id), counted by what carries their label (`examples.inter_kinds`)."""
    kinds = inter_kinds(inter[inter.split.isin(splits)])
    ids = inter.loc[kinds.index, "row_id"]
    sampled = kinds[ids.isin(set(sampled_keys)).to_numpy()]
    return {
        name: {k: int((part == k).sum()) for k in INTER_KINDS}
        for name, part in (("pool", kinds), ("sampled", sampled))
    }


def makeup_line(makeup: dict[str, dict[str, int]]) -> str:
    """One line for a table's header: the sampled all-inter rows by kind, and the pool they come from."""
    pool, sampled = makeup["pool"], makeup["sampled"]
    n = sum(sampled.values()) or 1
    return (
        f"all-inter rows: {sum(sampled.values())} of {sum(pool.values())} consistent held-out rows — decided "
        f"{sampled['decided']} ({100 * sampled['decided'] / n:.1f}%), undecided with the same instructions "
        f"followed {sampled['same_instructions']}, with different subsets of one size "
        f"{sampled['different_instructions']} (pool: {pool['decided']} / {pool['same_instructions']} / "
        f"{pool['different_instructions']})"
    )


def reader_bound(makeup: dict[str, dict[str, int]], baseline_decided: float) -> float:
    """The most (in points) a perfect instruction reader gains over the baseline on the all-inter column, if
    it scores the baseline's accuracy on the undecided rows: decided share × (100 − baseline decided)."""
    sampled = makeup["sampled"]
    n = sum(sampled.values())
    return sampled["decided"] / n * (100 - 100 * baseline_decided) if n else float("nan")
