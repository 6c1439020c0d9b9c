"""Text measurements shared by the instruction families.

Each function reproduces the measurement of the IFEval reference (Google's `instructions_util`, as copied
into lm-evaluation-harness) exactly; the docstrings say where a faster route gives the same number.
"""

from __future__ import annotations

import functools
import re

import langdetect
import regex
from langdetect.detector_factory import init_factory
from langdetect.lang_detect_exception import LangDetectException

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

    Raises UndetectableLanguage where langdetect raises.
    """
    init_factory()
    detector = langdetect.detector_factory._factory.create()
    detector.seed = LANGDETECT_SEED
    try:
        detector.append(text)
        return detector.detect()
    except LangDetectException as exc:
        raise UndetectableLanguage(str(exc)) from exc


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
