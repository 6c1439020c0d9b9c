"""combination:* — two different responses, repeat the request first."""

from __future__ import annotations

import random

from mapl_core.instructions.base import Arg, InstructionFamily, Kwargs, ProposalContext, Target
from mapl_core.instructions.generic import FixedFamily


class TwoResponses(FixedFamily):
    id = "combination:two_responses"
    phrasings = (
        "Give two different responses. Responses and only responses should be separated by 6 asterisk "
        "symbols: ******.",
        "Provide two different answers, separated by a line of six asterisks (******) and nothing else.",
        "Write two distinct responses and separate them with ******.",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        parts = text.split("******")
        valid = []
        for i, part in enumerate(parts):
            if not part.strip():
                if i not in (0, len(parts) - 1):
                    return False
            else:
                valid.append(part)
        return len(valid) == 2 and valid[0].strip() != valid[1].strip()


class RepeatPrompt(InstructionFamily):
    id = "combination:repeat_prompt"
    args = (Arg("prompt_to_repeat", "str"),)
    phrasings = (
        "First repeat the request word for word without change, then give your answer (1. do not say any "
        "words or characters before repeating the request; 2. the request you need to repeat does not "
        "include this sentence)",
        "Before answering, repeat the request exactly as written (without this sentence), then answer.",
        "Start by copying the request word for word (not including this instruction), and then respond.",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        return text.strip().lower().startswith(kw["prompt_to_repeat"].strip().lower())

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        if not ctx.prompt or not ctx.prompt.strip():
            return None  # the argument is the request itself; without it there is nothing to propose
        return {"prompt_to_repeat": ctx.prompt}
