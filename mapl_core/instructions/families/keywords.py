"""keywords:* — keyword existence, keyword frequency, forbidden words, letter frequency."""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Callable, Iterator

from mapl_core.instructions.base import Arg, InstructionFamily, InvalidKwargs, Kwargs, ProposalContext, Target
from mapl_core.instructions.generic import ThresholdFamily
from mapl_core.instructions.text import safe_pattern
from mapl_core.instructions.vocabulary import candidate_pool

_I = re.IGNORECASE


# The only characters that `re`'s case-insensitive matching pairs with an ASCII letter other than by
# str.lower() (found by enumerating every code point); U+0130 is also the only one whose lower() grows.
_FOLD_SPECIAL = ("\u0130", "\u0131", "\u017f")


@functools.lru_cache(maxsize=4096)
def _lowered(text: str) -> str | None:
    """text.lower() where plain lower-casing reproduces `re.IGNORECASE` for ASCII words, else None."""
    return None if any(ch in text for ch in _FOLD_SPECIAL) else text.lower()


def _plain(word: str) -> bool:
    return word.isascii() and word.isalpha()


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what `\w` matches in a str pattern


def _contains(keyword: str, text: str) -> bool:
    """Reference semantics: the keyword is a case-insensitive regex searched anywhere (substrings too)."""
    low = _lowered(text) if _plain(keyword) else None
    if low is not None:
        return keyword.lower() in low
    return safe_pattern(keyword, _I).search(text) is not None


def _count(keyword: str, text: str) -> int:
    """Reference semantics: non-overlapping case-insensitive regex matches."""
    low = _lowered(text) if _plain(keyword) else None
    if low is not None:
        return low.count(keyword.lower())
    return sum(1 for _ in safe_pattern(keyword, _I).finditer(text))


def _contains_word(word: str, text: str) -> bool:
    """Reference semantics for forbidden words: `\\bword\\b`, case-insensitive."""
    low = _lowered(text) if _plain(word) else None
    if low is None:
        return safe_pattern(word, _I, r"\b", r"\b").search(text) is not None
    w = word.lower()
    start = low.find(w)
    while start != -1:
        end = start + len(w)
        if (start == 0 or not _is_word_char(text[start - 1])) and (
            end == len(text) or not _is_word_char(text[end])
        ):
            return True
        start = low.find(w, start + 1)
    return False


def _pick_words(
    pool: list[str], targets: list[Target], holds: Callable[[str, str], bool], rng: random.Random
) -> list[str] | None:
    """1-3 words from `pool` such that a satisfying response `holds` for every word and a violating one
    fails for at least one (greedy cover of the violating responses, then extra words at random).

    The pool is scanned lazily, in order, and only as far as needed."""
    sat = [r for r, want in targets if want]
    uncovered = [r for r, want in targets if not want]
    want_total = rng.randint(1, 3)
    chosen: list[str] = []
    extra: list[str] = []
    for w in pool:
        if uncovered and len(chosen) >= 3:
            return None
        if not uncovered and len(chosen) + len(extra) >= want_total:
            break
        if not all(holds(w, s) for s in sat):
            continue
        if uncovered and any(not holds(w, v) for v in uncovered):
            chosen.append(w)
            uncovered = [v for v in uncovered if holds(w, v)]
        else:
            extra.append(w)
    if uncovered:
        return None
    chosen += extra[: max(len(chosen), want_total) - len(chosen)]
    return chosen or None


class KeywordExistence(InstructionFamily):
    id = "keywords:existence"
    args = (Arg("keywords", "words"),)
    phrasings = (
        "Include keywords {keywords} in the response.",
        "Make sure your answer uses the words {keywords}.",
        "Your response must mention {keywords}.",
        "Be sure to include the keywords {keywords} somewhere in your reply.",
    )

    def normalize(self, kwargs):  # the reference sorts the keywords
        kw = super().normalize(kwargs)
        kw["keywords"] = sorted(kw["keywords"])
        return kw

    def follows(self, text: str, kw: Kwargs) -> bool:
        return all(_contains(k, text) for k in kw["keywords"])

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        pool = candidate_pool([r for r, _ in targets], ctx.candidate_words, rng, preferred=ctx.model_words)
        chosen = _pick_words(pool, targets, _contains, rng)  # every keyword present in a satisfying text
        return {"keywords": chosen} if chosen else None


class KeywordFrequency(ThresholdFamily):
    id = "keywords:frequency"
    args = (Arg("keyword", "str", strip=True), Arg("frequency", "int", 1, 10), Arg("relation", "relation"))
    count_arg = "frequency"
    relation_arg = "relation"
    phrasings = (
        "In your response, the word {keyword} should appear {relation} {frequency} times.",
        'Use the word "{keyword}" {relation} {frequency} times in your answer.',
        'The word "{keyword}" must occur {relation} {frequency} times in your reply.',
    )

    def measure(self, text: str, kw: Kwargs) -> int:
        return _count(kw["keyword"], text)

    def subjects(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Iterator[Kwargs]:
        pool = candidate_pool(
            [r for r, _ in targets], ctx.candidate_words, rng, n_fallback=10, preferred=ctx.model_words
        )
        for w in pool[:30]:
            yield {"keyword": w}


class ForbiddenWords(InstructionFamily):
    id = "keywords:forbidden_words"
    args = (Arg("forbidden_words", "words"),)
    phrasings = (
        "Do not include keywords {forbidden_words} in the response.",
        "Avoid the words {forbidden_words} in your answer.",
        "Your reply must not contain the words {forbidden_words}.",
        "Never use {forbidden_words} anywhere in your response.",
    )

    def normalize(self, kwargs):  # the reference de-duplicates and sorts
        kw = super().normalize(kwargs)
        kw["forbidden_words"] = sorted(set(kw["forbidden_words"]))
        return kw

    def follows(self, text: str, kw: Kwargs) -> bool:
        return not any(_contains_word(w, text) for w in kw["forbidden_words"])

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        pool = candidate_pool([r for r, _ in targets], ctx.candidate_words, rng, preferred=ctx.model_words)
        chosen = _pick_words(pool, targets, lambda w, t: not _contains_word(w, t), rng)  # all absent
        return {"forbidden_words": chosen} if chosen else None


class LetterFrequency(ThresholdFamily):
    id = "keywords:letter_frequency"
    args = (
        Arg("letter", "str", lower=True),
        Arg("let_frequency", "int", 1, 60),
        Arg("let_relation", "relation"),
    )
    count_arg = "let_frequency"
    relation_arg = "let_relation"
    phrasings = (
        "In your response, the letter {letter} should appear {let_relation} {let_frequency} times.",
        'Make sure the letter "{letter}" appears {let_relation} {let_frequency} times in your answer.',
        'Your reply should contain the letter "{letter}" {let_relation} {let_frequency} times.',
    )

    def _validate(self, kw: Kwargs) -> None:

        # The reference replaces anything but a-z with a random letter (IFEval's prompt 1129 asks for "#");
        # mapl counts the character it is given (docs/instructions.md, divergences).
        if len(kw["letter"]) != 1:
            raise InvalidKwargs(f"{self.id}: argument 'letter' must be one character, got {kw['letter']!r}")

    def measure(self, text: str, kw: Kwargs) -> int:
        return text.lower().count(kw["letter"])

    def subjects(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Iterator[Kwargs]:
        letters = list(string.ascii_lowercase)
        rng.shuffle(letters)
        for c in letters:
            yield {"letter": c}
