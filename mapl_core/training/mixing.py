"""How much of each training batch each objective gets.

λ weights a level's loss, but with plain shuffling a level's *share of every batch* follows its table size
(about 1 original : 2 intra : 7 inter on the HH build), so adding MAPL's levels silently starves the
original pairs. "balanced" gives each objective — original, intra, inter (pairwise and margin ranking
together, in their natural proportion) — the same expected share of every batch, by cycling the smaller
objectives' rows (each pass reshuffled) up to the largest one's count. "natural" keeps table proportions.
`shares` reweights "balanced": {"original": 2} gives the original pairs twice the rows of each other
objective (half of every batch with three objectives), the same total budget shared differently.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence

OBJECTIVE_OF = {"original": "original", "intra": "intra", "inter": "inter", "inter_margin": "inter"}
OBJECTIVES = ("original", "intra", "inter")


def check_shares(shares: Mapping[str, float] | None, mix: str = "balanced") -> dict[str, float]:
    """`shares` as a plain dict, refused with the reason if it names an unknown objective, gives a weight ≤ 0,
    or comes with a mix other than "balanced" (the one check behind `TrainConfig.level_shares` too)."""
    shares = dict(shares or {})
    if unknown := sorted(set(shares) - set(OBJECTIVES)):
        raise ValueError(f"level shares name unknown objectives {unknown} (known: {', '.join(OBJECTIVES)})")
    if bad := sorted(k for k, v in shares.items() if not v > 0):
        raise ValueError(f"level shares must be > 0: {', '.join(f'{k}={shares[k]}' for k in bad)}")
    if shares and mix != "balanced":
        raise ValueError(f"level shares reweight the balanced mix; under {mix!r} the tables' sizes decide")
    return shares


def mixed_indices(
    levels: Sequence[str], mix: str, seed: int, shares: Mapping[str, float] | None = None
) -> list[int]:
    """Row indices of the training stream for rows labelled `levels` (repeats allowed), shuffled.
    `shares` (balanced only): relative rows per objective, 1 for each one not named."""
    shares = check_shares(shares, mix)
    rng = random.Random(seed)
    if mix == "natural":
        order = list(range(len(levels)))
        rng.shuffle(order)
        return order
    if mix != "balanced":
        raise ValueError(f"unknown level mix {mix!r} (balanced | natural)")
    groups: dict[str, list[int]] = {}
    for i, level in enumerate(levels):
        groups.setdefault(OBJECTIVE_OF[level], []).append(i)
    target = max((len(g) for g in groups.values()), default=0)
    top = max((shares.get(name, 1.0) for name in groups), default=1.0)
    out: list[int] = []
    for name in sorted(groups):
        count = round(target * shares.get(name, 1.0) / top)  # without shares: target, for every objective
        group, taken = groups[name], []
        while len(taken) < count:
            cycle = group[:]
            rng.shuffle(cycle)
            taken += cycle[: count - len(taken)]
        out += taken
    rng.shuffle(out)
    return out


class KeepsStreamOrder:
    """Trainer mixin: with `keep_order`, batches follow the training dataset's own order (the seeded, staged
    stream of `staged_indices`) instead of a fresh random permutation that would dissolve the stages."""

    def __init__(self, *args, keep_order: bool = False, **kwargs):
        self.keep_order = keep_order
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, *args, **kwargs):
        if self.keep_order:
            from torch.utils.data import SequentialSampler

            return SequentialSampler(self.train_dataset)
        return super()._get_train_sampler(*args, **kwargs)


def staged_indices(
    levels: Sequence[str],
    mix: str,
    seed: int,
    stages: Sequence[tuple[Collection[str] | None, int]],
    shares: Mapping[str, float] | None = None,
) -> list[int]:
    """A curriculum: for each stage `(objectives, rows)` in turn, `rows` rows of the `mix` stream over the
    rows of those objectives (None: every objective; "inter" holds both inter variants, "inter_margin" the
    margin-ranking rows alone), cycled with a fresh shuffle each pass. The trainer must
    keep this order (`keep_order`): the stages are the point.

    Why: inside the mixture, the rows that teach checking a response against the instructions share every
    batch with objectives whose labels are the human preference, and on MiniLM the checks are not learned
    there; a stage of those rows alone learns them (docs/experiments/rm_quality_25_families.md measures which order keeps them)."""
    out: list[int] = []
    for number, (objectives, rows) in enumerate(stages):
        pool = [
            i
            for i, lv in enumerate(levels)
            if objectives is None or lv in objectives or OBJECTIVE_OF[lv] in objectives
        ]
        if rows and not pool:
            raise ValueError(f"curriculum stage {number}: no rows of {sorted(objectives or [])}")
        taken: list[int] = []
        while len(taken) < rows:
            stream = mixed_indices(
                [levels[i] for i in pool], mix, seed * 1009 + number * 7919 + len(taken), shares
            )
            taken += [pool[j] for j in stream[: rows - len(taken)]]
        out += taken
    return out
