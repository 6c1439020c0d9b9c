"""startend:* — end with an exact phrase, wrap in double quotes."""

from __future__ import annotations

import random
import re

from mapl_core.instructions.base import Arg, InstructionFamily, Kwargs, ProposalContext, Target
from mapl_core.instructions.generic import FixedFamily

# IFEval's own end phrases plus common closers, for instructions a response must break.
END_PHRASES = (
    "Any other questions?",
    "Is there anything else I can help with?",
    "Let me know if you have any other questions.",
    "Hope this helps!",
    "Peace!",
    "That is all you need to know.",
)
_SENTENCE_START = re.compile(r"(?<=[.!?])\s+(?=\S)")


def _ending(text: str) -> str:
    return text.strip().strip('"')


def suffix_phrases(text: str, max_words: int = 12) -> list[str]:
    """Endings of `text` that start at a word, have 2..max_words words and contain a letter.

    Endings that start a sentence come first.
    """
    body = _ending(text)
    starts = [m.end() for m in re.finditer(r"\s+", body)]
    sentence_starts = {m.end() for m in _SENTENCE_START.finditer(body)}
    out_sentence, out_other = [], []
    for s in starts:
        phrase = body[s:].strip()
        n = len(phrase.split())
        if 2 <= n <= max_words and any(c.isalpha() for c in phrase):
            (out_sentence if s in sentence_starts else out_other).append(phrase)
    return out_sentence + out_other


class EndPhrase(InstructionFamily):
    id = "startend:end_checker"
    args = (Arg("end_phrase", "str", strip=True),)
    phrasings = (
        "Finish your response with this exact phrase {end_phrase}. No other words should follow this phrase.",
        'End your answer with the exact phrase "{end_phrase}", with nothing after it.',
        'Your reply must end with "{end_phrase}" — no words may follow it.',
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        return _ending(text).lower().endswith(kw["end_phrase"].strip().lower())

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        sat = [r for r, want in targets if want]
        proposed = list(ctx.model_phrases)  # model-proposed closers are tried first (rarely a response's own)
        rng.shuffle(proposed)
        if sat:
            phrases = suffix_phrases(sat[0], ctx.max_phrase_words)
            head, tail = phrases[:3], phrases[3:]
            rng.shuffle(tail)
            candidates = proposed + head[:1] + tail[:6] + head[1:]
        else:
            candidates = list(ctx.candidate_phrases) + list(END_PHRASES)
            rng.shuffle(candidates)
            candidates = proposed + candidates
        for phrase in candidates:
            kw = {"end_phrase": phrase}
            if phrase.strip() and all(self.follows(r, kw) == want for r, want in targets):
                return kw
        return None


class Quotation(FixedFamily):
    id = "startend:quotation"
    phrasings = (
        "Wrap your entire response with double quotation marks.",
        "Put your whole answer inside double quotes.",
        'Enclose the entire reply in double quotation marks (").',
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        value = text.strip()
        return len(value) > 1 and value[0] == '"' and value[-1] == '"'
