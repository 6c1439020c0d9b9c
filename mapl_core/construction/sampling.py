"""Shared pieces of instruction-combination sampling: seeded streams, family draws, instruction records."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mapl_core.generation.proposals import ModelCandidates
from mapl_core.instructions import INSTRUCTION_IDS, ProposalContext, conflicts, get_family
from mapl_core.instructions.vocabulary import content_words

# Families without arguments: a response either follows them or not, so they cannot give x_w and x_l
# different verdicts for the same response (they are used in the inter-sample set only).
FIXED_ONLY_IDS = frozenset(i for i in INSTRUCTION_IDS if not get_family(i).args)
# Families whose arguments can come from a model's proposals (words, phrases): the only ones whose
# `sources` entry may say "model".
MODEL_ARG_IDS = frozenset(
    {
        "keywords:existence",
        "keywords:frequency",
        "keywords:forbidden_words",
        "startend:end_checker",
        "length_constraints:nth_paragraph_first_word",
    }
)


def rng_for(seed: int, *parts: str) -> random.Random:
    """An independent stream per (seed, pair, purpose): output does not depend on processing order."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def row_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def canonical(kwargs: dict[str, Any]) -> str:
    return json.dumps(kwargs, sort_keys=True, ensure_ascii=False)


def stored_verdicts(response: str, ids: Sequence[str], kwargs: Sequence[str]) -> list[bool]:
    """Strict verdicts of `response` on instructions as a table stores them (ids, `canonical` kwargs)."""
    return [get_family(i).check(response, json.loads(k)) for i, k in zip(ids, kwargs, strict=True)]


@dataclass(frozen=True)
class Instruction:
    id: str
    kwargs: dict[str, Any]
    text: str


def context_for(
    prompt: list[dict[str, str]],
    other_texts: list[str],
    max_phrase_words: int,
    model: Sequence[ModelCandidates] = (),
) -> ProposalContext:
    """Topical candidate words for keyword arguments (the request's words and the other response's), the
    longest end phrase that may be copied from a response, and the model's proposals, if any."""
    request = prompt[-1]["content"]
    words = content_words(request) + [w for t in other_texts for w in content_words(t)]
    return ProposalContext(
        prompt=request,
        candidate_words=tuple(dict.fromkeys(words))[:40],
        max_phrase_words=max_phrase_words,
        model_words=tuple(dict.fromkeys(w for m in model for w in m.words)),
        model_phrases=tuple(dict.fromkeys(p for m in model for p in m.phrases)),
    )


def source_of(iid: str, kwargs: dict[str, Any], ctx: ProposalContext) -> str:
    """Where an instruction's arguments came from: "model" (a proposal the model made) or "rules"."""
    return ctx.source_of(kwargs) if iid in MODEL_ARG_IDS else "rules"


def families_in_order(allowed: tuple[str, ...], rng: random.Random) -> list[str]:
    order = list(allowed)
    rng.shuffle(order)
    return order


def compatible(chosen: list[str], candidate: str) -> bool:
    return all(not conflicts(candidate, c) for c in chosen)
