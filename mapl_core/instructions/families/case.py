"""change_case:* — all capitals, all lowercase, frequency of all-capital words."""

from __future__ import annotations

from mapl_core.instructions.base import Arg, Kwargs
from mapl_core.instructions.generic import FixedFamily, ThresholdFamily
from mapl_core.instructions.text import UndetectableLanguage, count_capital_words, detect_language


def _is_english(text: str) -> bool:
    try:
        return detect_language(text) == "en"
    except UndetectableLanguage:
        return True  # the reference counts undetectable text as following


class CapitalWordFrequency(ThresholdFamily):
    id = "change_case:capital_word_frequency"
    args = (Arg("capital_frequency", "int", 1, 20), Arg("capital_relation", "relation"))
    count_arg = "capital_frequency"
    relation_arg = "capital_relation"
    phrasings = (
        "In your response, words with all capital letters should appear {capital_relation} "
        "{capital_frequency} times.",
        "Use words written entirely in capital letters {capital_relation} {capital_frequency} times.",
        "Your reply should contain {capital_relation} {capital_frequency} words in ALL CAPS.",
    )

    def measure(self, text: str, kw: Kwargs) -> int:
        return count_capital_words(text)

    def follows(self, text: str, kw: Kwargs) -> bool:
        # Each all-capital token holds at least one uppercase character and tokens do not overlap, so the
        # number of uppercase characters bounds the count; where the bound decides, skip tokenizing.
        if sum(map(str.isupper, text)) < kw["capital_frequency"]:
            return kw["capital_relation"] == "less than"
        return super().follows(text, kw)


class EnglishCapital(FixedFamily):
    id = "change_case:english_capital"
    phrasings = (
        "Your entire response should be in English, and in all capital letters.",
        "Write your whole answer in English using only capital letters.",
        "Respond in English, in ALL CAPITAL LETTERS throughout.",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        return text.isupper() and _is_english(text)


class EnglishLowercase(FixedFamily):
    id = "change_case:english_lowercase"
    phrasings = (
        "Your entire response should be in English, and in all lowercase letters. No capital letters are "
        "allowed.",
        "Write your whole answer in English using only lowercase letters; no capitals at all.",
        "Respond in English, all in lowercase, without a single capital letter.",
    )

    def follows(self, text: str, kw: Kwargs) -> bool:
        return text.islower() and _is_english(text)
