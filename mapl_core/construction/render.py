"""Attaching instructions to a prompt: appended to the last user turn, history kept, several styles."""

from __future__ import annotations

import functools
import random

from mapl_core.instructions.text import words

Message = dict[str, str]
STYLES = ("sentences", "lines", "bullets", "requirements")
LEAK_WORDS = 8


def attach(prompt: list[Message], texts: list[str], rng: random.Random) -> list[Message]:
    """A copy of `prompt` whose last user turn ends with the instruction texts, in a random style."""
    style = rng.choice(STYLES)
    if style == "sentences":
        block = " ".join(texts)
        sep = " " if prompt[-1]["content"].rstrip().endswith((".", "?", "!")) else ". "
        tail = sep + block
    elif style == "lines":
        tail = "\n\n" + "\n".join(texts)
    elif style == "bullets":
        tail = "\n\n" + "\n".join(f"- {t}" for t in texts)
    else:
        tail = "\n\nRequirements:\n" + "\n".join(f"{i + 1}. {t}" for i, t in enumerate(texts))
    last = {"role": prompt[-1]["role"], "content": prompt[-1]["content"].rstrip() + tail}
    return [dict(m) for m in prompt[:-1]] + [last]


@functools.lru_cache(maxsize=4096)
def _ngrams(response: str, n: int) -> frozenset[tuple[str, ...]] | None:
    resp = [w.lower() for w in words(response)]
    if len(resp) < n:
        return None
    return frozenset(tuple(resp[i : i + n]) for i in range(len(resp) - n + 1))


def leaks(texts: list[str], response: str, n: int = LEAK_WORDS) -> bool:
    """True if an instruction text repeats `n` consecutive words of the response (or the whole of it)."""
    grams = _ngrams(response, n)
    if grams is None:
        return any(response.strip() and response.strip() in t for t in texts)
    for t in texts:
        tw = [w.lower() for w in words(t)]
        if any(tuple(tw[i : i + n]) in grams for i in range(len(tw) - n + 1)):
            return True
    return False
