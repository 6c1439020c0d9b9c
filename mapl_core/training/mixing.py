"""How much of each training batch each objective gets.

λ weights a level's loss, but with plain shuffling a level's *share of every batch* follows its table size
(about 1 original : 2 intra : 7 inter on the HH build), so adding MAPL's levels silently starves the
original pairs. "balanced" gives each objective — original, intra, inter (pairwise and margin ranking
together, in their natural proportion) — the same expected share of every batch, by cycling the smaller
objectives' rows (each pass reshuffled) up to the largest one's count. "natural" keeps table proportions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

OBJECTIVE_OF = {"original": "original", "intra": "intra", "inter": "inter", "inter_margin": "inter"}


def mixed_indices(levels: Sequence[str], mix: str, seed: int) -> list[int]:
    """Row indices of the training stream for rows labelled `levels` (repeats allowed), shuffled."""
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
    out: list[int] = []
    for name in sorted(groups):
        group, taken = groups[name], []
        while len(taken) < target:
            cycle = group[:]
            rng.shuffle(cycle)
            taken += cycle[: target - len(taken)]
        out += taken
    rng.shuffle(out)
    return out
