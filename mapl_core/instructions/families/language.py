"""language:response_language — the whole response in one language (langdetect, seeded)."""

from __future__ import annotations

import random

from mapl_core.instructions.base import Arg, InstructionFamily, Kwargs, ProposalContext, Target
from mapl_core.instructions.text import UndetectableLanguage, detect_language

# IFEval's language table (ISO 639-1 code -> name).
LANGUAGE_CODES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi", "fr": "French",
    "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian", "bn": "Bengali", "uk": "Ukrainian",
    "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu", "bg": "Bulgarian", "ko": "Korean",
    "pl": "Polish", "he": "Hebrew", "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili",
    "kn": "Kannada", "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
}  # fmt: skip


class ResponseLanguage(InstructionFamily):
    id = "language:response_language"
    args = (Arg("language", "choice", choices=tuple(LANGUAGE_CODES)),)
    phrasings = (
        "Your ENTIRE response should be in {language_name} language, no other language is allowed.",
        "Respond only in {language_name}; do not use any other language.",
        "Write your whole answer in {language_name}.",
    )

    def _extra_fields(self, kw: Kwargs) -> dict[str, str]:
        return {"language_name": LANGUAGE_CODES[kw["language"]]}

    def follows(self, text: str, kw: Kwargs) -> bool:
        try:
            return detect_language(text) == kw["language"]
        except UndetectableLanguage:
            return True  # the reference counts undetectable text as following

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        detected = {}
        for resp, _ in targets:
            try:
                detected[resp] = detect_language(resp)
            except UndetectableLanguage:
                detected[resp] = None
        sat = {detected[r] for r, want in targets if want} - {None}
        vio = {detected[r] for r, want in targets if not want}
        if len(sat) > 1 or None in vio:
            return None
        if sat:
            (lang,) = sat
            return {"language": lang} if lang in LANGUAGE_CODES and lang not in vio else None
        options = [c for c in LANGUAGE_CODES if c not in vio]
        return {"language": rng.choice(options)} if options else None
