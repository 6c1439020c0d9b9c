"""Comparison rows for training, read from the dataset tables of one build.

Every comparison is a list of (prompt messages, response, coefficient) sides; its margin is the signed sum
of the sides' scores (see `objective`). Which levels are produced is configured: the original pairs, the
intra set, and the inter set as consistent pairs ("pairwise"), margin-ranking comparisons ("margin"), or
both.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mapl_core.construction.intra import condition_holds
from mapl_core.construction.sampling import stored_verdicts

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Comparison:
    level: str
    sides: tuple[tuple[Messages, str, float], ...]
    key: str  # the row id(s) it came from, for tracing a comparison back to its table row
    # per side, the instruction block that ends its last user turn ("" for none; () when no side has one):
    # what the "instructions" truncation rule keeps whole (see `encoding`)
    blocks: tuple[str, ...] = ()


def _messages(value: Any) -> Messages:
    return [{"role": m["role"], "content": m["content"]} for m in value]


def instruction_block(messages: Messages, texts: Any) -> str:
    """The tail of the last turn that holds the attached instruction texts (`construction.render.attach`
    appends them there in one of several styles), from the first text on; "" when there are none."""
    texts = list(texts) if texts is not None else []
    if not texts or not messages:
        return ""
    content = messages[-1]["content"]
    at = content.rfind(texts[0])
    return content[at:] if at >= 0 else ""


def original_comparisons(df: pd.DataFrame) -> Iterator[Comparison]:
    for r in df.itertuples(index=False):
        p = _messages(r.prompt)
        yield Comparison("original", ((p, r.chosen, 1.0), (p, r.rejected, -1.0)), r.pair_id)


def intra_comparisons(df: pd.DataFrame) -> Iterator[Comparison]:
    for r in df.itertuples(index=False):
        pw, pl = _messages(r.prompt_w), _messages(r.prompt_l)
        blocks = (instruction_block(pw, r.texts_w), instruction_block(pl, r.texts_l))
        yield Comparison("intra", ((pw, r.response, 1.0), (pl, r.response, -1.0)), r.row_id, blocks)


def inter_comparisons(
    df: pd.DataFrame, comparisons: pd.DataFrame, variant: str, pairs: str = "consistent"
) -> Iterator[Comparison]:
    """`variant`: "pairwise" (combinations as pairs), "margin" (Δ_j > Δ_j' comparisons), "both".
    `pairs`: which combinations become pairs — "consistent" (all that do not contradict the human label) or
    "decided" (only those the instructions decide, see `decided_inter`)."""
    if pairs not in ("consistent", "decided"):
        raise ValueError(f"unknown inter pairs {pairs!r} (consistent | decided)")
    if variant in ("pairwise", "both"):
        for r in (df[df.consistent] if pairs == "consistent" else decided_inter(df)).itertuples(index=False):
            p = _messages(r.prompt)
            block = instruction_block(p, r.texts)
            yield Comparison("inter", ((p, r.chosen, 1.0), (p, r.rejected, -1.0)), r.row_id, (block, block))
    if variant in ("margin", "both"):
        rows = {r.row_id: r for r in df.itertuples(index=False)}
        for c in comparisons.itertuples(index=False):
            a, b = rows.get(c.stronger_row_id), rows.get(c.weaker_row_id)
            if a is None or b is None:
                continue
            pa, pb = _messages(a.prompt), _messages(b.prompt)
            sides = ((pa, a.chosen, 1.0), (pa, a.rejected, -1.0), (pb, b.chosen, -1.0), (pb, b.rejected, 1.0))
            ba, bb = instruction_block(pa, a.texts), instruction_block(pb, b.texts)
            yield Comparison("inter_margin", sides, f"{a.row_id}>{b.row_id}", (ba, ba, bb, bb))


def decided_inter(df: pd.DataFrame) -> pd.DataFrame:
    """The inter rows whose instructions decide the preference: the chosen response follows strictly more of
    the combination than the rejected one (degree > 0). On the other consistent rows both follow equally, so
    the label is the human preference alone; held-out accuracy on these rows is where reading the
    instructions can show (benchmarks/rm_quality.py reports both)."""
    return df[df.consistent & (df.degree > 0)]


INTER_KINDS = ("decided", "same_instructions", "different_instructions")


def inter_kinds(df: pd.DataFrame) -> pd.Series:
    """What carries the label of each consistent inter row, by row (inconsistent rows are left out):

    - "decided": the chosen response follows strictly more of the combination (`decided_inter`);
    - "same_instructions": both follow exactly the same instructions, so the checks cancel and only the
      human label is left;
    - "different_instructions": each follows a different subset of the same size, so the checks pull both
      ways and the human label decides.

    A model that reads every check perfectly can only gain over one that does not on the first kind, which
    bounds what the all-inter column can show (benchmarks/rm_quality.py prints the counts)."""
    rows = df[df.consistent]
    decided = set(decided_inter(rows).index)  # one definition of "decided", `decided_inter`'s

    def kind(i, r) -> str:
        if i in decided:
            return "decided"
        same = [bool(v) for v in r.follows_chosen] == [bool(v) for v in r.follows_rejected]
        return "same_instructions" if same else "different_instructions"

    return pd.Series([kind(i, r) for i, r in zip(rows.index, rows.itertuples(index=False), strict=True)],
                     index=rows.index, dtype=object)  # fmt: skip


def flipped_intra(intra: pd.DataFrame, original: pd.DataFrame) -> pd.DataFrame:
    """Intra rows re-read with the pair's *other* response, kept where the checkers reverse the preference:
    the other response meets the intra conditions with x_l in the place of x_w. Returned with the prompts
    swapped (so `prompt_w` is again the preferred one) and `row_id` suffixed ":flipped".

    In an intra row x_w and x_l carry the same instruction types with different arguments, so argument
    priors (the looser threshold, a keyword taken from the response) can tell them apart without reading the
    response. On these rows such a prior ranks the prompts the wrong way round; a model that checks the
    response against the instructions ranks them right (benchmarks/rm_quality.py reports them)."""
    by_pair = original.set_index("pair_id")
    rows = []
    for r in intra.itertuples(index=False):
        pair = by_pair.loc[r.pair_id]
        other = pair.rejected if r.response_side == "chosen" else pair.chosen
        fw = stored_verdicts(other, r.instructions_w, r.kwargs_w)
        fl = stored_verdicts(other, r.instructions_l, r.kwargs_l)
        condition = next((c for c in (1, 2) if condition_holds(c, fl, fw)), None)
        if condition is None:
            continue
        row = r._asdict()
        for field in ("prompt", "instructions", "kwargs", "texts", "sources"):
            row[f"{field}_w"], row[f"{field}_l"] = row[f"{field}_l"], row[f"{field}_w"]
        row.update(
            row_id=f"{r.row_id}:flipped", response=other, follows_w=fl, follows_l=fw,
            condition=condition,
            response_side="rejected" if r.response_side == "chosen" else "chosen",
        )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=intra.columns)


def comparisons_for(
    tables: dict[str, pd.DataFrame],
    levels: tuple[str, ...],
    inter_variant: str,
    split: str,
    inter_pairs: str = "consistent",
    intra_flipped: bool = False,
) -> list[Comparison]:
    """Comparisons of the chosen levels ("original", "intra", "inter") for one split, in table order.

    `intra_flipped`: add the flipped intra rows (`flipped_intra`) after the intra rows."""

    def part(name: str) -> pd.DataFrame:
        df = tables[name]
        return df[df.split == split]

    out: list[Comparison] = []
    if "original" in levels:
        out += original_comparisons(part("original"))
    if "intra" in levels:
        out += intra_comparisons(part("intra"))
        if intra_flipped:
            out += intra_comparisons(flipped_intra(part("intra"), part("original")))
    if "inter" in levels:
        out += inter_comparisons(part("inter"), part("inter_comparisons"), inter_variant, inter_pairs)
    return out


def sample_per_level(comps: list[Comparison], per_level: int | None, seed: int) -> list[Comparison]:
    """At most `per_level` comparisons of each level, drawn reproducibly, then shuffled together."""
    by_level: dict[str, list[Comparison]] = {}
    for c in comps:
        by_level.setdefault(c.level, []).append(c)
    rng = random.Random(seed)
    out: list[Comparison] = []
    for level in sorted(by_level):
        group = by_level[level]
        out += rng.sample(group, per_level) if per_level and len(group) > per_level else group
    rng.shuffle(out)
    return out
