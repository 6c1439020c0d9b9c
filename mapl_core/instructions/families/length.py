"""length_constraints:* — sentences, words, paragraphs (*** dividers), nth paragraph's first word."""

from __future__ import annotations

import random
import re

from mapl_core.instructions.base import Arg, InstructionFamily, InvalidKwargs, Kwargs, ProposalContext, Target
from mapl_core.instructions.generic import ExactCountFamily, ThresholdFamily
from mapl_core.instructions.text import count_sentences, count_words
from mapl_core.instructions.vocabulary import candidate_pool

_DIVIDER = re.compile(r"\s?\*\*\*\s?")
_PUNCT = frozenset(".,?!'\"")


class NumberOfSentences(ThresholdFamily):
    id = "length_constraints:number_sentences"
    args = (Arg("num_sentences", "int", 1, 100), Arg("relation", "relation"))
    count_arg = "num_sentences"
    relation_arg = "relation"
    phrasings = (
        "Your response should contain {relation} {num_sentences} sentences.",
        "Answer in {relation} {num_sentences} sentences.",
        "Use {relation} {num_sentences} sentences in your reply.",
    )

    def measure(self, text: str, kw: Kwargs) -> int:
        return count_sentences(text)


class NumberOfWords(ThresholdFamily):
    id = "length_constraints:number_words"
    args = (Arg("num_words", "int", 20, 1200), Arg("relation", "relation"))
    count_arg = "num_words"
    relation_arg = "relation"
    phrasings = (
        "Answer with {relation} {num_words} words.",
        "Your response should be {relation} {num_words} words long.",
        "Write {relation} {num_words} words.",
    )

    def measure(self, text: str, kw: Kwargs) -> int:
        return count_words(text)


def divider_paragraphs(text: str) -> int | None:
    """Paragraphs separated by `***` (reference rule); None when an inner paragraph is empty."""
    parts = _DIVIDER.split(text)
    n = len(parts)
    for i, part in enumerate(parts):
        if not part.strip():
            if i in (0, len(parts) - 1):
                n -= 1
            else:
                return None
    return n


class NumberOfParagraphs(ExactCountFamily):
    id = "length_constraints:number_paragraphs"
    args = (Arg("num_paragraphs", "int", 1, 6),)
    count_arg = "num_paragraphs"
    phrasings = (
        "There should be {num_paragraphs} paragraphs. Paragraphs are separated with the markdown divider: ***",
        "Write exactly {num_paragraphs} paragraphs, separated from each other by the markdown divider ***.",
        "Your answer must have {num_paragraphs} paragraphs; put *** between consecutive paragraphs.",
    )

    def measure(self, text: str) -> int | None:
        return divider_paragraphs(text)


def first_word(paragraph: str) -> str:
    """The reference's first word of a paragraph: quotes stripped, cut at punctuation, lower-cased."""
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    out = []
    for ch in word:
        if ch in _PUNCT:
            break
        out.append(ch.lower())
    return "".join(out)


class NthParagraphFirstWord(InstructionFamily):
    id = "length_constraints:nth_paragraph_first_word"
    args = (
        Arg("num_paragraphs", "int", 1, 7),
        Arg("nth_paragraph", "int", 1, 7),
        Arg("first_word", "str", lower=True),
    )
    phrasings = (
        "There should be {num_paragraphs} paragraphs. Paragraphs and only paragraphs are separated with each "
        "other by two new lines as if it was '\\n\\n' in python. Paragraph {nth_paragraph} must start with "
        "word {first_word}.",
        "Write {num_paragraphs} paragraphs separated by blank lines; paragraph {nth_paragraph} has to begin "
        'with the word "{first_word}".',
        "Your answer needs {num_paragraphs} paragraphs (separated by one empty line), and the first word of "
        'paragraph {nth_paragraph} must be "{first_word}".',
    )

    def _validate(self, kw: Kwargs) -> None:
        if kw["nth_paragraph"] > kw["num_paragraphs"]:
            raise InvalidKwargs(
                f"{self.id}: nth_paragraph ({kw['nth_paragraph']}) exceeds num_paragraphs ({kw['num_paragraphs']})"
            )

    @staticmethod
    def structure(text: str) -> tuple[list[str], int]:
        parts = text.split("\n\n")
        return parts, sum(1 for p in parts if p.strip())

    def follows(self, text: str, kw: Kwargs) -> bool:
        parts, n = self.structure(text)
        nth = kw["nth_paragraph"]
        if nth > n:
            return False
        paragraph = parts[nth - 1].strip()  # indexes the raw split, as the reference does
        if not paragraph:
            return False
        return n == kw["num_paragraphs"] and first_word(paragraph) == kw["first_word"]

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        sat = [r for r, want in targets if want]
        base = sat[0] if sat else targets[0][0]
        parts, n = self.structure(base)
        options = []
        for nth in range(1, min(n, 7) + 1):
            para = parts[nth - 1].strip()
            if para and first_word(para).isalpha():
                options.append((n, nth, first_word(para)))
        if not sat:  # violate: keep the structure and demand another first word, or another count
            pool = candidate_pool([], ctx.candidate_words, rng, n_fallback=5, preferred=ctx.model_words)
            alt = [(m, nth, w) for (m, nth, fw) in options for w in pool[:3] if w != fw]
            alt += [(m + d, nth, fw) for (m, nth, fw) in options for d in (1, 2) if m + d <= 7]
            if not alt:
                alt = [(m, 1, w) for m in (2, 3) for w in pool[:2]]
            options = alt
        options = [(m, nth, w) for (m, nth, w) in options if 1 <= nth <= m <= 7]
        rng.shuffle(options)
        for m, nth, w in options[:12]:
            kw = {"num_paragraphs": m, "nth_paragraph": nth, "first_word": w}
            if all(self.follows(r, kw) == want for r, want in targets):
                return kw
        return None
