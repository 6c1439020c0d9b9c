"""Model-proposed condition arguments: an LLM suggests meaningful candidates, the checkers decide.

For each response the model is asked for topical words the response uses, on-topic words it lacks, and short
closing phrases that could end it, as JSON constrained by `PROPOSAL_SCHEMA` (vLLM structured outputs). The
answer is only a candidate list: every instruction built from it is verified by the family's checker, so a
wrong or made-up candidate can cost a proposal but never a wrong label. Answers are cached like any
generation, so a rebuild with the same model gives the same candidates (and the same tables).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mapl_core.generation.cache import GenerationCache, cache_key
from mapl_core.generation.engines import Generator, SamplingConfig
from mapl_core.instructions.vocabulary import STOPWORDS

if TYPE_CHECKING:
    from mapl_core.config import ProposalConfig

PROMPT_VERSION = "proposals-v2"  # part of the cache key: change it when the prompt or schema changes
MAX_WORDS = 8
MAX_PHRASES = 3
PROPOSAL_SCHEMA = {
    "type": "object",
    "properties": {
        "present": {"type": "array", "items": {"type": "string", "maxLength": 24}, "maxItems": MAX_WORDS},
        "absent": {"type": "array", "items": {"type": "string", "maxLength": 24}, "maxItems": MAX_WORDS},
        "closing": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": MAX_PHRASES},
    },
    "required": ["present", "absent", "closing"],
}
_WORD = re.compile(r"[a-z][a-z-]{2,23}")
_PHRASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ,.'!?-]*")


@dataclass(frozen=True)
class ModelCandidates:
    """Candidates the model proposed for one response (already filtered to usable shapes)."""

    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)


_SYSTEM = "You suggest keywords for a text. Reply with JSON only."
_ASK = (
    "present: topical words used in the text. absent: related words the text does not use. "
    "closing: short phrases that could end the text."
)
# A worked example as a previous turn: small models copy the instructions' own words without one.
_EXAMPLE_TEXT = "To grow tomatoes, plant them in a sunny spot and water them deeply twice a week."
_EXAMPLE_ANSWER = (
    '{"present": ["tomatoes", "sunny", "water"], "absent": ["soil", "fertilizer", "harvest"], '
    '"closing": ["Happy gardening!", "Enjoy your tomatoes."]}'
)
# Words of the instructions: a model that echoes them has proposed nothing. Words of the worked example
# count only where the request or response itself has them.
_ECHO = frozenset(re.findall(r"[a-z]+", (_SYSTEM + _ASK + "question text request response json").lower()))
_EXAMPLE_PHRASES = frozenset(p.lower() for p in json.loads(_EXAMPLE_ANSWER)["closing"])
_EXAMPLE_WORDS = frozenset(re.findall(r"[a-z]+", (_EXAMPLE_TEXT + _EXAMPLE_ANSWER).lower())) - STOPWORDS


def proposal_messages(request: str, response: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": f"Text: {_EXAMPLE_TEXT}\n\n{_ASK}"},
        {"role": "assistant", "content": _EXAMPLE_ANSWER},
        {"role": "user", "content": f"Question: {request[:800]}\n\nText: {response[:1600]}\n\n{_ASK}"},
    ]


def parse_candidates(text: str | None, max_phrase_words: int = 6, source: str = "") -> ModelCandidates:
    """Usable candidates from a model's answer; anything malformed is dropped, never an error.

    `source`: the request and response the answer is about (words copied from the worked example are kept
    only when they occur there)."""
    if not text:
        return ModelCandidates()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start : end + 1]) if 0 <= start < end else {}
        except json.JSONDecodeError:
            data = {}
    if not isinstance(data, dict):
        return ModelCandidates()

    def strings(key: str) -> list[str]:
        value = data.get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    own = frozenset(re.findall(r"[a-z]+", source.lower()))
    copied = (_ECHO | _EXAMPLE_WORDS) - own

    words: dict[str, None] = {}
    for w in strings("present") + strings("absent"):
        w = w.strip().lower()
        if _WORD.fullmatch(w) and w not in STOPWORDS and w not in copied:
            words.setdefault(w, None)
    phrases: dict[str, None] = {}
    for p in strings("closing"):
        p = " ".join(p.split())
        echoes = set(re.findall(r"[a-z]+", p.lower())) & (_ECHO - STOPWORDS - own)
        example = p.lower() in _EXAMPLE_PHRASES and p.lower() not in source.lower()
        if _PHRASE.fullmatch(p) and 2 <= len(p.split()) <= max_phrase_words and not echoes and not example:
            phrases.setdefault(p, None)
    return ModelCandidates(tuple(words)[: 2 * MAX_WORDS], tuple(phrases)[:MAX_PHRASES])


@dataclass
class ProposalStats:
    responses: int = 0
    generated: int = 0
    from_cache: int = 0
    with_candidates: int = 0


class CandidateProposer:
    """Asks `generator` for candidates per (request, response), batched and cached."""

    def __init__(
        self,
        generator: Generator,
        cache: GenerationCache,
        params: SamplingConfig | None = None,
        batch_size: int = 64,
        max_phrase_words: int = 6,
        limit: int | None = None,
    ):
        self.generator = generator
        self.cache = cache
        self.params = params or SamplingConfig(max_new_tokens=160)
        self.batch_size = batch_size
        self.max_phrase_words = max_phrase_words
        self.limit = limit
        self.pairs_offered = 0
        self.stats = ProposalStats()

    def take(self, n: int) -> int:
        """How many of the next `n` pairs (in table order) still get proposals under `limit`.

        Counted over the proposer's life, so the first `limit` pairs of a table are the ones proposed for,
        whatever the batch size: the pipeline's proposal stage and its construction stage agree."""
        left = n if self.limit is None else max(0, min(n, self.limit - self.pairs_offered))
        self.pairs_offered += n
        return left

    def describe(self) -> dict[str, object]:
        """What commit metadata records about the proposals (with the counts so far)."""
        return {
            "model": self.generator.model,
            "revision": self.generator.revision,
            "engine": self.generator.engine,
            "prompt_version": PROMPT_VERSION,
            "sampling": self.params.as_key(),
            "limit": self.limit,
            **self.stats.__dict__,
        }

    def propose(self, items: Sequence[tuple[str, str]]) -> list[ModelCandidates]:
        """Candidates for each (request, response), generating only what the cache lacks."""
        messages = [proposal_messages(req, resp) for req, resp in items]
        key_params = {**self.params.as_key(), "prompt_version": PROMPT_VERSION}
        keys = [cache_key(self.generator.revision, self.generator.engine, m, key_params) for m in messages]
        first: dict[str, int] = {}  # the first index of each missing answer (duplicates asked once)
        for i, k in enumerate(keys):
            if k not in first and self.cache.get(k) is None:
                first[k] = i
        todo = list(first.values())
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            texts = self.generator.generate([messages[i] for i in chunk], self.params, PROPOSAL_SCHEMA)
            self.cache.put_many([(keys[i], t) for i, t in zip(chunk, texts, strict=True)])
        out = [
            parse_candidates(self.cache.get(k), self.max_phrase_words, f"{req}\n{resp}")
            for k, (req, resp) in zip(keys, items, strict=True)
        ]
        self.stats.responses += len(items)
        self.stats.generated += len(todo)
        self.stats.from_cache += len(items) - len(todo)
        self.stats.with_candidates += sum(1 for c in out if c)
        return out


def open_proposer(cfg: ProposalConfig, cache_path: Path, max_phrase_words: int = 6) -> CandidateProposer:
    """A proposer for a build's `proposals` settings (the model is prepared or loaded here)."""
    from mapl_core.generation.default_model import resolve_model
    from mapl_core.generation.engines import open_generator

    if cfg.backend == "server":
        generator = open_generator(
            None if cfg.model == "default" else cfg.model, "server", base_url=cfg.base_url
        )
    else:
        generator = open_generator(resolve_model(cfg.model), cfg.backend)
    params = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=cfg.seed)
    return CandidateProposer(
        generator, GenerationCache(cache_path), params, cfg.batch_size, max_phrase_words, cfg.limit
    )
