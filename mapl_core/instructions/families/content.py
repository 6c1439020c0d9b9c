"""detectable_content:* — placeholders in square brackets, a postscript."""

from __future__ import annotations

import random
import re

from mapl_core.instructions.base import Arg, InstructionFamily, Kwargs, ProposalContext, Target
from mapl_core.instructions.generic import ThresholdFamily
from mapl_core.instructions.text import safe_pattern

_PLACEHOLDER = re.compile(r"\[.*?\]")
_PS = re.compile(r"\s*p\.\s?s\..*$", re.MULTILINE)
_PPS = re.compile(r"\s*p\.\s?p\.\s?s.*$", re.MULTILINE)
POSTSCRIPT_MARKERS = ("P.S.", "P.P.S")


class Placeholders(ThresholdFamily):
    id = "detectable_content:number_placeholders"
    args = (Arg("num_placeholders", "int", 1, 20),)
    count_arg = "num_placeholders"
    phrasings = (
        "The response must contain at least {num_placeholders} placeholders represented by square brackets, "
        "such as [address].",
        "Include at least {num_placeholders} placeholders in square brackets, like [name].",
        "Use no fewer than {num_placeholders} bracketed placeholders such as [date] in your answer.",
    )

    def measure(self, text: str, kw: Kwargs) -> int:
        return len(_PLACEHOLDER.findall(text))


class Postscript(InstructionFamily):
    id = "detectable_content:postscript"
    args = (Arg("postscript_marker", "str", strip=True),)
    phrasings = (
        "At the end of your response, please explicitly add a postscript starting with {postscript_marker}",
        "End your reply with a postscript that begins with {postscript_marker}",
        "Finish with a postscript introduced by {postscript_marker}",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        marker = kw["postscript_marker"]
        low = text.lower()
        if marker == "P.P.S":
            return _PPS.search(low) is not None
        if marker == "P.S.":
            return _PS.search(low) is not None
        return safe_pattern(marker.lower(), re.MULTILINE, r"\s*", r".*$").search(low) is not None

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        markers = list(POSTSCRIPT_MARKERS)
        rng.shuffle(markers)
        for m in markers:
            kw = {"postscript_marker": m}
            if all(self.follows(r, kw) == want for r, want in targets):
                return kw
        return None
