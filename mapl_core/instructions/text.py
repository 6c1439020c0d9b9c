"""Text measurements shared by the instruction families.

Each function reproduces the measurement of the IFEval reference (Google's `instructions_util`, as copied
into lm-evaluation-harness) exactly; the docstrings say where a faster route gives the same number.
"""

from __future__ import annotations

import functools
import re

import langdetect
import numpy as np
import regex
from langdetect.detector_factory import init_factory

from mapl_core.nltk_data import ensure_punkt

# The reference counts words with nltk.tokenize.RegexpTokenizer(r"\w+"): findall with UNICODE|MULTILINE|DOTALL.
# Since nltk 3.10 that pattern is compiled by the `regex` engine, whose \w also matches combining marks
# (Devanagari vowel signs, for example), so `re` would count more words in such scripts.
_WORD_RE = regex.compile(r"\w+", regex.UNICODE | regex.MULTILINE | regex.DOTALL)

LANGDETECT_SEED = 0


def count_words(text: str) -> int:
    """Number of `\\w+` runs (IFEval's word count; punctuation is not a word)."""
    return len(_WORD_RE.findall(text))


def words(text: str) -> list[str]:
    """The `\\w+` runs of `text`, in order."""
    return _WORD_RE.findall(text)


@functools.cache
def _punkt():
    ensure_punkt()
    from nltk.tokenize import PunktTokenizer

    return PunktTokenizer("english")


_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=_CACHE_SIZE)
def count_sentences(text: str) -> int:
    """Number of sentences by NLTK's English Punkt model (the reference's sentence count)."""
    return sum(1 for _ in _punkt().span_tokenize(text))


@functools.cache
def _treebank():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """`nltk.word_tokenize(text)` (Punkt sentences, then the Treebank word tokenizer)."""
    tok = _treebank()
    return [t for sent in _punkt().tokenize(text) for t in tok.tokenize(sent)]


@functools.lru_cache(maxsize=_CACHE_SIZE)
def count_capital_words(text: str) -> int:
    """Tokens of `nltk.word_tokenize` that are all capitals (`str.isupper`).

    Tokens are substrings of the text (the tokenizer only adds quote marks), so a text with no
    uppercase character has none; that case skips tokenization.
    """
    if not any(map(str.isupper, text)):
        return 0
    return sum(1 for t in word_tokenize(text) if t.isupper())


class UndetectableLanguage(Exception):
    """langdetect found no features in the text (the reference then counts the check as followed)."""


def detect_language(text: str) -> str:
    """langdetect's language code for `text`, seeded so that identical text always gets the same answer.

    Equal to `langdetect.detect(text)` with `DetectorFactory.seed = 0`, computed faster: langdetect's own
    text cleaning and n-gram extraction, then its sampling loop compiled (`_sample_language_probabilities`).
    Raises UndetectableLanguage where langdetect raises.
    """
    code = _detect_cached(text)
    if code is None:
        raise UndetectableLanguage("No features in text.")
    return code


def clear_text_caches() -> None:
    """Forget cached measurements (used by benchmarks so that each text is analysed afresh)."""
    for fn in (_detect_cached, count_sentences, count_capital_words):
        fn.cache_clear()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _detect_cached(text: str) -> str | None:
    """Dataset construction measures the same responses many times; verdicts never depend on the cache."""
    init_factory()
    detector = langdetect.detector_factory._factory.create()
    detector.seed = LANGDETECT_SEED
    detector.append(text)
    detector.cleaning_text()
    ngrams = detector._extract_ngrams()
    if not ngrams:
        return None
    detector.langprob = _sample_language_probabilities(detector, ngrams).tolist()
    ranked = detector._sort_probability(detector.langprob)
    return ranked[0].lang if ranked else detector.UNKNOWN_LANG


class _ProfileRows:
    """langdetect's per-n-gram language profiles as rows of one growing matrix (filled on first use)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.matrix = np.empty((0, 0))

    def rows(self, detector, ngrams: list[str]) -> tuple[np.ndarray, np.ndarray]:
        new = [w for w in dict.fromkeys(ngrams) if w not in self.index]
        if new:
            block = np.array([detector.word_lang_prob_map[w] for w in new], dtype=np.float64)
            start = len(self.index)
            if self.matrix.shape[0] < start + len(new):
                grown = np.empty((max(2 * self.matrix.shape[0], start + len(new), 1024), block.shape[1]))
                if start:
                    grown[:start] = self.matrix[:start]
                self.matrix = grown
            self.matrix[start : start + len(new)] = block
            for k, w in enumerate(new):
                self.index[w] = start + k
        index = self.index
        return self.matrix, np.fromiter((index[w] for w in ngrams), dtype=np.intp, count=len(ngrams))


_PROFILES = _ProfileRows()


@functools.cache
def _compiled_iterations():
    """`_run_iterations` compiled by numba, on first use.

    numba is imported here, not at module level: vLLM's CPU worker start-up scans every loaded module and
    fails on llvmlite's objects, so a process that will start a vLLM engine must not have numba loaded yet.
    """
    import numba

    return numba.njit(cache=True)(_run_iterations)


def _run_iterations(prob, profiles, picks, weight, conv_threshold, iteration_limit, i):  # pragma: no cover
    """langdetect's inner loop from iteration `i` over the drawn n-gram rows `picks` (compiled, strict IEEE).

    Returns (iterations consumed from `picks`, done). Not done: more draws are needed.
    """
    n_lang = prob.shape[0]
    for k in range(picks.shape[0]):
        row = picks[k]
        for j in range(n_lang):
            prob[j] *= weight + profiles[row, j]
        if i % 5 == 0:
            total = 0.0
            for j in range(n_lang):
                total += prob[j]
            if total == 0.0:
                raise ZeroDivisionError("float division by zero")  # as langdetect would
            maxp = 0.0
            for j in range(n_lang):
                p = prob[j] / total
                if maxp < p:
                    maxp = p
                prob[j] = p
            if maxp > conv_threshold or i >= iteration_limit:
                return k + 1, True
        i += 1
    return picks.shape[0], False


def _sample_language_probabilities(detector, ngrams: list[str]) -> np.ndarray:
    """langdetect's `Detector._detect_block` sampling loop, bit for bit.

    langdetect multiplies each language's probability by `weight + p(ngram|lang)` for one random n-gram per
    iteration and normalizes every fifth iteration, until one language exceeds the threshold. The loop runs
    compiled (`_run_iterations`, no fast-math, so the same IEEE double operations in the same order; the
    sum is left to right like Python 3.11's `sum()`). The n-grams come from the same seeded stream
    (`random.choice(seq)` is `seq[_randbelow(len(seq))]`): a chunk is drawn ahead, and once the loop
    reports how many it used, the generator is rewound and advanced by exactly that many.
    """
    n_lang = len(detector.langlist)
    profiles, rows = _PROFILES.rows(detector, ngrams)
    rand = detector.random
    randbelow = rand._randbelow
    n = len(ngrams)
    rand.seed(detector.seed)
    langprob = np.zeros(n_lang)
    for _ in range(detector.n_trial):
        prob = (
            np.array(detector.prior_map, dtype=np.float64)
            if detector.prior_map is not None
            else np.full(n_lang, 1.0 / n_lang)
        )
        alpha = detector.alpha + rand.gauss(0.0, 1.0) * detector.ALPHA_WIDTH
        weight = alpha / detector.BASE_FREQ
        i, chunk, done = 0, 16, False
        while not done:
            state = rand.getstate()
            picks = rows[[randbelow(n) for _ in range(chunk)]]
            used, done = _compiled_iterations()(
                prob, profiles, picks, weight, detector.CONV_THRESHOLD, detector.ITERATION_LIMIT, i
            )
            if used < chunk:
                rand.setstate(state)
                for _ in range(used):
                    randbelow(n)
            i += used
            chunk = min(4 * chunk, 4096)
        langprob += prob / detector.n_trial
    return langprob


def safe_pattern(core: str, flags: int = 0, prefix: str = "", suffix: str = "") -> re.Pattern[str]:
    """Compile `prefix + core + suffix`; if `core` is not a valid regex, match `core` literally.

    The reference passes user keywords to `re` as patterns and raises on invalid ones; mapl treats those
    as literal text instead (docs/instructions.md lists this divergence).
    """
    return _compile(core, flags, prefix, suffix)


@functools.lru_cache(maxsize=4096)
def _compile(core: str, flags: int, prefix: str, suffix: str) -> re.Pattern[str]:
    try:
        return re.compile(prefix + core + suffix, flags)
    except (re.error, RecursionError, OverflowError):
        return re.compile(prefix + re.escape(core) + suffix, flags)
