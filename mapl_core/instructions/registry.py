"""The registry of instruction families (the paper's G0) and IFEval's conflict table.

Adding a family: write its class, add it to `_FAMILIES`, and (if it cannot be combined with some
others) add a line to `_CONFLICTS`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from mapl_core.instructions.base import InstructionFamily
from mapl_core.instructions.families.case import CapitalWordFrequency, EnglishCapital, EnglishLowercase
from mapl_core.instructions.families.combination import RepeatPrompt, TwoResponses
from mapl_core.instructions.families.content import Placeholders, Postscript
from mapl_core.instructions.families.formatting import (
    BulletLists,
    ConstrainedResponse,
    HighlightedSections,
    JsonFormat,
    MultipleSections,
    Title,
)
from mapl_core.instructions.families.keywords import (
    ForbiddenWords,
    KeywordExistence,
    KeywordFrequency,
    LetterFrequency,
)
from mapl_core.instructions.families.language import ResponseLanguage
from mapl_core.instructions.families.length import (
    NthParagraphFirstWord,
    NumberOfParagraphs,
    NumberOfSentences,
    NumberOfWords,
)
from mapl_core.instructions.families.punctuation import NoComma
from mapl_core.instructions.families.startend import EndPhrase, Quotation

_FAMILIES: tuple[type[InstructionFamily], ...] = (
    KeywordExistence,
    KeywordFrequency,
    ForbiddenWords,
    LetterFrequency,
    ResponseLanguage,
    NumberOfSentences,
    NumberOfParagraphs,
    NumberOfWords,
    NthParagraphFirstWord,
    Placeholders,
    Postscript,
    BulletLists,
    ConstrainedResponse,
    HighlightedSections,
    MultipleSections,
    JsonFormat,
    Title,
    TwoResponses,
    RepeatPrompt,
    EndPhrase,
    CapitalWordFrequency,
    EnglishCapital,
    EnglishLowercase,
    NoComma,
    Quotation,
)

REGISTRY: dict[str, InstructionFamily] = {cls.id: cls() for cls in _FAMILIES}
INSTRUCTION_IDS: tuple[str, ...] = tuple(REGISTRY)

_ALL = frozenset(REGISTRY)
# IFEval's INSTRUCTION_CONFLICTS (instructions_registry.py), made symmetric below.
_CONFLICTS: dict[str, set[str]] = {
    "language:response_language": {
        "detectable_format:multiple_sections",
        "keywords:existence",
        "keywords:frequency",
        "keywords:forbidden_words",
        "startend:end_checker",
        "change_case:english_capital",
        "change_case:english_lowercase",
    },
    "length_constraints:number_paragraphs": {
        "length_constraints:nth_paragraph_first_word",
        "length_constraints:number_sentences",
    },
    "length_constraints:nth_paragraph_first_word": {"length_constraints:number_paragraphs"},
    "detectable_format:constrained_response": set(_ALL),
    "detectable_format:multiple_sections": {
        "language:response_language",
        "detectable_format:number_highlighted_sections",
    },
    "detectable_format:json_format": set(_ALL - {"keywords:forbidden_words", "keywords:existence"}),
    "combination:two_responses": set(
        _ALL
        - {
            "keywords:forbidden_words",
            "keywords:existence",
            "language:response_language",
            "detectable_format:title",
            "punctuation:no_comma",
        }
    ),
    "combination:repeat_prompt": set(
        _ALL - {"keywords:existence", "detectable_format:title", "punctuation:no_comma"}
    ),
    "change_case:capital_word_frequency": {"change_case:english_lowercase", "change_case:english_capital"},
    "change_case:english_lowercase": {"change_case:english_capital"},
    "startend:quotation": {"detectable_format:title"},
}


def _symmetric(table: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {i: {i} for i in REGISTRY}
    for a, others in table.items():
        for b in others:
            out[a].add(b)
            out[b].add(a)
    return {k: frozenset(v) for k, v in out.items()}


CONFLICTS: dict[str, frozenset[str]] = _symmetric(_CONFLICTS)


class UnknownInstruction(KeyError):
    """An instruction id that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_family(instruction_id: str) -> InstructionFamily:
    """The family for an IFEval instruction id; unknown ids get a message with the closest known ones."""
    try:
        return REGISTRY[instruction_id]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(instruction_id), INSTRUCTION_IDS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownInstruction(f"unknown instruction id {instruction_id!r}{hint}") from None


def conflicts(a: str, b: str) -> bool:
    """True if instructions `a` and `b` cannot appear in one prompt (a conflicts with itself)."""
    return b in CONFLICTS[a]


def conflict_free(ids: Iterable[str]) -> bool:
    """True if no two of `ids` conflict (and none repeats)."""
    ids = list(ids)
    return all(not conflicts(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
