"""The inter-sample set: m instruction combinations per original pair, both responses re-labelled.

For combination j with k_j instructions, n_w / n_l count the instructions the chosen / rejected response
follows. The preference degree is d_j = (n_w - n_l) / k_j in [-1, 1]. A combination is consistent with the
human preference when n_w >= n_l; those rows are the multi-instruction pairs (x'_j, y_w, y_l). Every two
combinations of one pair with d_j > d_j' give a margin-ranking comparison (Δ_j should exceed Δ_j').
"""

from __future__ import annotations

import random
from typing import Any

from mapl_core.config import ConstructionConfig
from mapl_core.construction.render import attach, leaks
from mapl_core.construction.sampling import (
    canonical,
    compatible,
    context_for,
    families_in_order,
    rng_for,
    row_id,
    source_of,
)
from mapl_core.data.ingest import Pair
from mapl_core.generation.proposals import ModelCandidates
from mapl_core.instructions import INSTRUCTION_IDS, get_family

# (chosen follows, rejected follows): weighted towards instructions that separate the two responses
PATTERNS = ((True, False), (True, True), (False, False), (False, True))
PATTERN_WEIGHTS = (3, 1, 1, 1)


def _instruction(iid: str, pair: Pair, rng: random.Random, ctx) -> dict | None:
    fam = get_family(iid)
    first = rng.choices(PATTERNS, PATTERN_WEIGHTS)[0]
    for want_c, want_r in (first, *[p for p in PATTERNS if p != first]):
        kw = fam.propose([(pair.chosen, want_c), (pair.rejected, want_r)], rng, ctx)
        if kw is not None:
            return kw
    return None


def build_inter(
    pair: Pair, split: str, cfg: ConstructionConfig, seed: int, model: tuple[ModelCandidates, ...] = ()
) -> tuple[list[dict], list[dict]]:
    """(combination rows, margin-ranking comparisons) for one original pair; `model`: candidates a
    language model proposed for its responses."""
    rng = rng_for(seed, pair.pair_id, "inter")
    ctx = context_for(pair.prompt, [pair.chosen, pair.rejected], cfg.max_end_phrase_words, model)
    allowed = cfg.families or INSTRUCTION_IDS
    rows: list[dict[str, Any]] = []
    for j in range(cfg.inter_combinations):
        k = rng.randint(cfg.k_min, cfg.k_max)
        picked: list[str] = []
        kws: list[dict] = []
        for attempt, iid in enumerate(families_in_order(allowed, rng)):
            if len(picked) == k or attempt >= cfg.max_attempts + k:
                break
            if compatible(picked, iid):
                kw = _instruction(iid, pair, rng, ctx)
                if kw is not None:
                    picked.append(iid)
                    kws.append(kw)
        if not picked:
            continue
        texts = [get_family(i).describe(kw, rng) for i, kw in zip(picked, kws, strict=True)]
        if leaks(texts, pair.chosen) or leaks(texts, pair.rejected):
            continue
        f_c = [get_family(i).verdict(pair.chosen, kw) for i, kw in zip(picked, kws, strict=True)]
        f_r = [get_family(i).verdict(pair.rejected, kw) for i, kw in zip(picked, kws, strict=True)]
        n = len(picked)
        rows.append(
            {
                "row_id": row_id(pair.pair_id, "inter", str(j)),
                "pair_id": pair.pair_id,
                "split": split,
                "combination": j,
                "k": n,
                "prompt": attach(pair.prompt, texts, rng),
                "chosen": pair.chosen,
                "rejected": pair.rejected,
                "instructions": picked,
                "kwargs": [canonical(kw) for kw in kws],
                "texts": texts,
                "follows_chosen": f_c,
                "follows_rejected": f_r,
                "sources": [source_of(i, kw, ctx) for i, kw in zip(picked, kws, strict=True)],
                "degree": (sum(f_c) - sum(f_r)) / n,
                "consistent": sum(f_c) >= sum(f_r),
            }
        )
    comparisons = [
        {
            "pair_id": pair.pair_id,
            "split": split,
            "stronger_row_id": a["row_id"],
            "weaker_row_id": b["row_id"],
            "stronger_degree": a["degree"],
            "weaker_degree": b["degree"],
        }
        for a in rows
        for b in rows
        if a["degree"] > b["degree"]
    ]
    return rows, comparisons
