"""Candidate words for keyword-like arguments when no language model proposes any."""

from __future__ import annotations

import functools
import random
from importlib import resources

from mapl_core.instructions.text import words

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    let me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own really same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves yes okay ok sure thing
    things like get got make made know think want going well much many one two also maybe might must
    shall may still even sorry please thanks thank hello human assistant
    """.split()  # noqa: SIM905
)


def content_words(text: str, min_len: int = 4) -> list[str]:
    """Distinct lower-case alphabetic words of `text` that carry meaning, in order of first use."""
    return list(_content_words(text, min_len))


@functools.lru_cache(maxsize=4096)
def _content_words(text: str, min_len: int) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for w in words(text):
        lw = w.lower()
        if len(lw) >= min_len and lw.isascii() and lw.isalpha() and lw not in STOPWORDS:
            seen.setdefault(lw, None)
    return tuple(seen)


@functools.cache
def fallback_vocabulary() -> tuple[str, ...]:
    """IFEval's own keyword list (Apache-2.0), used where nothing topical is available."""
    text = resources.files("mapl_core.instructions").joinpath("data/ifeval_word_list.txt").read_text()
    return tuple(w for w in text.split() if w.isalpha())


def candidate_pool(
    texts: list[str],
    extra: tuple[str, ...],
    rng: random.Random,
    n_fallback: int = 40,
    preferred: tuple[str, ...] = (),
) -> list[str]:
    """`preferred` (model-proposed) words first, then topical candidates (context words, then the texts'
    words), then a random fallback sample.

    Order within each group is shuffled by `rng`, so choices are varied but reproducible; with no
    preferred words the draws are exactly those of a pool without the group.
    """
    model: dict[str, None] = {}
    for w in preferred:
        lw = w.strip().lower()
        if lw.isascii() and lw.replace("-", "").isalpha():
            model.setdefault(lw, None)
    topical: dict[str, None] = dict(model)
    for w in extra:
        lw = w.strip().lower()
        if lw.isascii() and lw.replace("-", "").isalpha():
            topical.setdefault(lw, None)
    own: dict[str, None] = {}
    for t in texts:
        for w in content_words(t):
            if w not in topical:
                own.setdefault(w, None)
    preferred_first = list(model)
    first, second = [w for w in topical if w not in model], list(own)
    rng.shuffle(preferred_first)
    rng.shuffle(first)
    rng.shuffle(second)
    fallback = [w for w in rng.sample(fallback_vocabulary(), n_fallback) if w not in topical and w not in own]
    return preferred_first + first + second + fallback
