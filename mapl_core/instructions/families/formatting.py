"""detectable_format:* — bullets, constrained answer, highlights, sections, JSON, title."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator

from mapl_core.instructions.base import Arg, Kwargs, ProposalContext, Target
from mapl_core.instructions.generic import ExactCountFamily, FixedFamily, ThresholdFamily
from mapl_core.instructions.text import safe_pattern

_STAR_BULLET = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE)
_DASH_BULLET = re.compile(r"^\s*-.*$", re.MULTILINE)
_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n\*]*\*\*")
_TITLE = re.compile(r"<<[^\n]+>>")
CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
SECTION_SPLITTERS = ("Section", "SECTION")


class BulletLists(ExactCountFamily):
    id = "detectable_format:number_bullet_lists"
    args = (Arg("num_bullets", "int", 1, 10),)
    count_arg = "num_bullets"
    phrasings = (
        "Your answer must contain exactly {num_bullets} bullet points. Use the markdown bullet points such as:\n"
        "* This is point 1. \n* This is point 2",
        "Format your answer as exactly {num_bullets} markdown bullet points (lines starting with * ).",
        "Give exactly {num_bullets} bullet points, each on its own line starting with an asterisk.",
    )

    def measure(self, text: str) -> int:
        return len(_STAR_BULLET.findall(text)) + len(_DASH_BULLET.findall(text))


class ConstrainedResponse(FixedFamily):
    id = "detectable_format:constrained_response"
    phrasings = (
        "Answer with one of the following options: ('My answer is yes.', 'My answer is no.', "
        "'My answer is maybe.')",
        'Your answer must contain one of: "My answer is yes.", "My answer is no.", "My answer is maybe."',
        'Reply using exactly one of these options: "My answer is yes.", "My answer is no.", or '
        '"My answer is maybe."',
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        value = text.strip()
        return any(option in value for option in CONSTRAINED_OPTIONS)


class HighlightedSections(ThresholdFamily):
    id = "detectable_format:number_highlighted_sections"
    args = (Arg("num_highlights", "int", 1, 15),)
    count_arg = "num_highlights"
    phrasings = (
        "Highlight at least {num_highlights} sections in your answer with markdown, i.e. *highlighted section*.",
        "Use markdown to highlight at least {num_highlights} parts of your answer, like *this part*.",
        "Mark at least {num_highlights} sections as highlighted with asterisks, e.g. *important point*.",
    )

    def measure(self, text: str, kw: Kwargs) -> int:
        n = sum(1 for h in _HIGHLIGHT.findall(text) if h.strip("*").strip())
        n += sum(
            1 for h in _DOUBLE_HIGHLIGHT.findall(text) if h.removeprefix("**").removesuffix("**").strip()
        )
        return n


class MultipleSections(ThresholdFamily):
    id = "detectable_format:multiple_sections"
    args = (Arg("section_spliter", "str", strip=True), Arg("num_sections", "int", 2, 7))
    count_arg = "num_sections"
    phrasings = (
        "Your response must have {num_sections} sections. Mark the beginning of each section with "
        "{section_spliter} X, such as:\n{section_spliter} 1\n[content of section 1]\n{section_spliter} 2\n"
        "[content of section 2]",
        "Organize your answer into {num_sections} sections, each starting with '{section_spliter} N' "
        "(N = 1, 2, …).",
        "Split your reply into {num_sections} parts; begin each with {section_spliter} followed by its number.",
    )

    def measure(self, text: str, kw: Kwargs) -> int:
        return len(safe_pattern(kw["section_spliter"], 0, r"\s?", r"\s?\d+\s?").split(text)) - 1

    def subjects(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Iterator[Kwargs]:
        splitters = list(SECTION_SPLITTERS)
        rng.shuffle(splitters)
        for s in splitters:
            yield {"section_spliter": s}


class JsonFormat(FixedFamily):
    id = "detectable_format:json_format"
    phrasings = (
        "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.",
        "Return your whole answer as valid JSON (markdown code ticks are allowed).",
        "Format the entire response as JSON; you may wrap it in ``` ticks.",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        value = (
            text.strip()
            .removeprefix("```json")
            .removeprefix("```Json")
            .removeprefix("```JSON")
            .removeprefix("```")
            .removesuffix("```")
            .strip()
        )
        try:
            json.loads(value)
        except ValueError:
            return False
        except RecursionError:  # nesting deeper than Python's json can parse; the reference raises here
            return False
        return True


class Title(FixedFamily):
    id = "detectable_format:title"
    phrasings = (
        "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
        "Give your answer a title in double angular brackets, like <<my title>>.",
        "Start with a title wrapped in << and >>, for example <<a short answer>>.",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        return any(t.lstrip("<").rstrip(">").strip() for t in _TITLE.findall(text))
