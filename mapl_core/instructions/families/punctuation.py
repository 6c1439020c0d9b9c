"""punctuation:no_comma."""

from __future__ import annotations

from mapl_core.instructions.base import Kwargs
from mapl_core.instructions.generic import FixedFamily


class NoComma(FixedFamily):
    id = "punctuation:no_comma"
    phrasings = (
        "In your entire response, refrain from the use of any commas.",
        "Do not use any commas in your response.",
        "Write your answer without a single comma.",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        return "," not in text
