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
