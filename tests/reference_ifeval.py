"""The IFEval reference implementation (lm-evaluation-harness's copy of Google's checkers), test-only.

Imported lazily: it needs NLTK's Punkt data registered first (conftest does that) and seeds langdetect the
way mapl does, so both sides see deterministic language detection.
"""

from __future__ import annotations

import functools
import logging
from typing import Any


@functools.cache
def _modules():
    from langdetect import DetectorFactory

    from mapl_core.instructions.text import LANGDETECT_SEED
    from mapl_core.nltk_data import ensure_punkt

    ensure_punkt(download=False)
    DetectorFactory.seed = LANGDETECT_SEED
    from lm_eval.tasks.ifeval import utils

    # the reference logs an error for every text langdetect cannot classify; the verdict is what matters
    logging.getLogger("lm_eval").setLevel(logging.CRITICAL)
    return utils


def reference_verdicts(
    prompt: str, instruction_ids: list[str], kwargs: list[dict[str, Any]], response: str
) -> tuple[list[bool], list[bool]]:
    """(strict, loose) per-instruction verdicts of the reference implementation."""
    utils = _modules()
    inp = utils.InputExample(key=0, instruction_id_list=instruction_ids, prompt=prompt, kwargs=kwargs)
    strict = utils.test_instruction_following_strict(inp, response)
    loose = utils.test_instruction_following_loose(inp, response)
    return list(strict.follow_instruction_list), list(loose.follow_instruction_list)


def reference_is_random(instruction_id: str, kwargs: dict) -> bool:
    """Divergence 1: the reference replaces a `letter` outside a-z by a random letter (prompts 1122, 1129)."""
    return instruction_id == "keywords:letter_frequency" and not (
        len(kwargs["letter"]) == 1 and "a" <= kwargs["letter"].lower() <= "z"
    )


def row_reference_is_random(row: dict) -> bool:
    """True if any instruction of an IFEval row has a verdict the reference draws at random."""
    return any(
        reference_is_random(i, k) for i, k in zip(row["instruction_id_list"], row["kwargs"], strict=True)
    )
