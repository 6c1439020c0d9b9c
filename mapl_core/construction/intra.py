"""The intra-sample set: one response y, two prompts — x_w whose instructions y follows, x_l it breaks.

Condition 1: y follows every instruction of x_w and not every instruction of x_l.
Condition 2: y follows at least one instruction of x_w and none of x_l.
Both prompts use the same instruction types with different arguments (the paper's G1 ⊂ G0).

Two pairings (`ConstructionConfig.intra_pairing`):
- "independent" (default): each response of a pair gets its own x_w / x_l, drawn on their own.
- "mirrored": the pair's two responses share one couple of prompts, swapped. Every instruction of x_A is
  followed by the chosen response and broken by the rejected one, every instruction of x_B the reverse, so
  the rows are (x_A ≻ x_B | y_w) and (x_B ≻ x_A | y_l). Because the same two prompts are ranked both ways,
  nothing in the prompts alone (a looser threshold, a keyword that looks like the response's) can rank both
  rows right: a model must check each response against the instructions. Both conditions hold on every
  mirrored row; the stored condition is drawn with `condition_mix` (one draw per pair), as for independent
  rows. A pair whose two responses no instruction type separates gets no rows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mapl_core.construction.render import attach, leaks
from mapl_core.construction.sampling import (
    FIXED_ONLY_IDS,
    canonical,
    compatible,
    context_for,
    families_in_order,
    rng_for,
    row_id,
    source_of,
)
from mapl_core.generation.proposals import ModelCandidates
from mapl_core.instructions import INSTRUCTION_IDS, get_family

if TYPE_CHECKING:  # only for annotations: training reads intra rows without the config stack
    from mapl_core.config import ConstructionConfig
    from mapl_core.data.ingest import Pair


def condition_holds(condition: int, follows_w: Sequence[bool], follows_l: Sequence[bool]) -> bool:
    """Whether a response's verdicts on x_w and x_l meet intra condition 1 or 2 (see the module docstring)."""
    if condition == 1:
        return all(follows_w) and not all(follows_l)
    return any(follows_w) and not any(follows_l)


def _both_sides(iid: str, response: str, rng: random.Random, ctx) -> tuple[dict, dict] | None:
    fam = get_family(iid)
    sat = fam.propose([(response, True)], rng, ctx)
    if sat is None:
        return None
    vio = fam.propose([(response, False)], rng, ctx)
    return (sat, vio) if vio is not None else None


def _mirrored_args(iid: str, chosen: str, rejected: str, rng: random.Random, ctx) -> tuple[dict, dict] | None:
    """(arguments the chosen response follows and the rejected breaks, arguments of the reverse), or None."""
    fam = get_family(iid)
    a = fam.propose([(chosen, True), (rejected, False)], rng, ctx)
    if a is None:
        return None
    b = fam.propose([(chosen, False), (rejected, True)], rng, ctx)
    return (a, b) if b is not None else None


def _draw(
    cfg: ConstructionConfig, k: int, rng: random.Random, arguments: Callable[[str], tuple[dict, dict] | None]
) -> tuple[list[str], list[tuple[dict, dict]]]:
    """Up to k conflict-free instruction types (argument-free ones excluded: they cannot give two verdicts),
    each with the two argument sets `arguments` finds for it; types it finds none for are skipped."""
    allowed = tuple(i for i in (cfg.families or INSTRUCTION_IDS) if i not in FIXED_ONLY_IDS)
    picked: list[str] = []
    args: list[tuple[dict, dict]] = []
    for attempt, iid in enumerate(families_in_order(allowed, rng)):
        if len(picked) == k or attempt >= cfg.max_attempts + k:
            break
        if not compatible(picked, iid):
            continue
        both = arguments(iid)
        if both is not None:
            picked.append(iid)
            args.append(both)
    return picked, args


def _head(pair: Pair, split: str, side: str, response: str, condition: int, k: int) -> dict[str, Any]:
    return {
        "row_id": row_id(pair.pair_id, "intra", side),
        "pair_id": pair.pair_id,
        "split": split,
        "response_side": side,
        "response": response,
        "condition": condition,
        "k": k,
    }


def _side(suffix: str, prompt, picked: list[str], kws: list[dict], texts: list[str], response: str, ctx):
    """One prompt's columns (`suffix` "w" or "l"), with `response`'s verdict on each instruction."""
    return {
        f"prompt_{suffix}": prompt,
        f"instructions_{suffix}": list(picked),
        f"kwargs_{suffix}": [canonical(kw) for kw in kws],
        f"texts_{suffix}": texts,
        f"follows_{suffix}": [get_family(i).verdict(response, kw) for i, kw in zip(picked, kws, strict=True)],
        f"sources_{suffix}": [source_of(i, kw, ctx) for i, kw in zip(picked, kws, strict=True)],
    }


def build_intra(
    pair: Pair,
    split: str,
    side: str,
    cfg: ConstructionConfig,
    seed: int,
    model: ModelCandidates | None = None,
) -> dict[str, Any] | None:
    """One intra row for `pair`'s `side` response, or None if no instruction set could be built.

    `model`: candidates a language model proposed for this response (tried first; the checkers decide)."""
    response = pair.chosen if side == "chosen" else pair.rejected
    other = pair.rejected if side == "chosen" else pair.chosen
    rng = rng_for(seed, pair.pair_id, "intra", side)
    condition = 1 if rng.random() < cfg.condition_mix else 2
    k = rng.randint(cfg.k_min, cfg.k_max)
    ctx = context_for(pair.prompt, [other], cfg.max_end_phrase_words, [model] if model else ())
    picked, args = _draw(cfg, k, rng, lambda iid: _both_sides(iid, response, rng, ctx))
    if not picked:
        return None

    n = len(picked)
    if condition == 1:  # x_w: all followed; x_l: a non-empty subset broken
        broken = set(rng.sample(range(n), rng.randint(1, n)))
        kw_w = [sat for sat, _ in args]
        kw_l = [vio if i in broken else sat for i, (sat, vio) in enumerate(args)]
    else:  # x_w: a non-empty subset followed; x_l: all broken
        kept = set(rng.sample(range(n), rng.randint(1, n)))
        kw_w = [sat if i in kept else vio for i, (sat, vio) in enumerate(args)]
        kw_l = [vio for _, vio in args]

    row = _head(pair, split, side, response, condition, n)
    for suffix, kws in (("w", kw_w), ("l", kw_l)):
        texts = [get_family(i).describe(kw, rng) for i, kw in zip(picked, kws, strict=True)]
        if leaks(texts, response):
            return None
        row.update(_side(suffix, attach(pair.prompt, texts, rng), picked, kws, texts, response, ctx))
    return row


def build_intra_mirrored(
    pair: Pair,
    split: str,
    cfg: ConstructionConfig,
    seed: int,
    model: Sequence[ModelCandidates] = (),
) -> list[dict[str, Any]]:
    """The mirrored intra rows of `pair` (see the module docstring): both or none.

    `model`: candidates a language model proposed for the pair's responses (tried first; the checkers
    decide)."""
    rng = rng_for(seed, pair.pair_id, "intra", "mirrored")
    condition = 1 if rng.random() < cfg.condition_mix else 2  # both hold (see the module docstring)
    k = rng.randint(cfg.k_min, cfg.k_max)
    ctx = context_for(pair.prompt, [pair.chosen, pair.rejected], cfg.max_end_phrase_words, model)
    picked, args = _draw(cfg, k, rng, lambda iid: _mirrored_args(iid, pair.chosen, pair.rejected, rng, ctx))
    if not picked:
        return []

    sides = {}  # "a": followed by the chosen response, "b": followed by the rejected one
    for name, kws in (("a", [a for a, _ in args]), ("b", [b for _, b in args])):
        texts = [get_family(i).describe(kw, rng) for i, kw in zip(picked, kws, strict=True)]
        if leaks(texts, pair.chosen) or leaks(texts, pair.rejected):
            return []
        sides[name] = (attach(pair.prompt, texts, rng), kws, texts)

    rows = []
    for side, response, order in (("chosen", pair.chosen, "ab"), ("rejected", pair.rejected, "ba")):
        row = _head(pair, split, side, response, condition, len(picked))
        for suffix, key in zip("wl", order, strict=True):
            prompt, kws, texts = sides[key]
            row.update(_side(suffix, prompt, picked, kws, texts, response, ctx))
        rows.append(row)
    return rows
