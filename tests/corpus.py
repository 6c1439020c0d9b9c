"""A varied response corpus for comparing mapl's checks with the IFEval reference.

Three kinds of text: real assistant responses (HH-RLHF), those texts edited towards each prompt's own
instructions (so many responses sit on or near a verdict boundary), and adversarial edge cases.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IFEVAL_PROMPTS = SHARED / "ifeval" / "input_data.jsonl"
HH_TEST = SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz"

MULTILINGUAL = [
    "Bonjour, je voudrais réserver une table pour deux personnes ce soir, s'il vous plaît.",
    "Das Wetter ist heute sehr schön, und wir gehen im Park spazieren.",
    "Hola, ¿cómo estás? Espero que todo vaya bien en tu nuevo trabajo.",
    "Привет! Сегодня мы будем изучать русский язык и литературу.",
    "यह एक हिंदी वाक्य है जो भाषा पहचान के लिए लिखा गया है।",
    "これは日本語の文章です。言語の検出に使います。",
    "مرحبا، هذا نص عربي مكتوب من اليمين إلى اليسار.",
    "שלום, זהו טקסט בעברית לבדיקה.",
    "Tämä on suomenkielinen lause, jota käytetään kielen tunnistukseen.",
    "Xin chào, đây là một câu tiếng Việt để kiểm tra.",
]

EDGE_CASES = [
    "",
    " ",
    "\n\n\n",
    "\t \r\n",
    "*",
    "**",
    "***",
    "******",
    "a ****** b",
    "a ****** a",
    "******\n\nfirst\n******\nsecond\n******",
    '"',
    '""',
    '"x"',
    "<<>>",
    "<< >>",
    "<<a title>>\nbody",
    "[]",
    "[a][b] [c]",
    "P.S.",
    "p.s. lowercase postscript",
    "P.P.S. late",
    "SECTION 1 a SECTION 2 b SECTION 3 c",
    "Section1\nSection 2\nSection 3",
    "My answer is yes.",
    "my answer is yes.",
    '```json\n{"a": 1}\n```',
    "```\n[1, 2, 3]\n```",
    "```JSON\nnot json\n```",
    '{"unterminated": ',
    "[" * 5000 + "]" * 5000,
    "123 456 789",
    "!!!???...",
    "😀😀😀 emoji only 🎉",
    "🙂",
    "ALL CAPS SHOUTING TEXT HERE.",
    "all lowercase words only here",
    "Mixed Case With Commas, and more, and more.",
    "\ud800 lone surrogate \udfff",
    "bad bytes: " + b"\xff\xfe\x80abc".decode("utf-8", errors="surrogateescape"),
    "\u202eRTL override\u202c and \u200fmarks\u200e",
    "word " * 3000,
    "Sentence one. Sentence two! Sentence three? " * 50,
    "x" * 100_000,
    "\n".join(f"* item {i}" for i in range(12)),
    "\n".join(f"- item {i}" for i in range(5)) + "\n* star\n*bold*",
    "Para one.\n\nPara two.\n\n\n\nPara three.",
    "first paragraph\n***\nsecond paragraph\n***\nthird",
    "***\nonly\n***",
    "a\n***\n\n***\nb",
]


def hh_responses(n: int = 40, seed: int = 0) -> list[str]:
    """`n` real assistant responses (final turns of HH-RLHF chosen/rejected transcripts)."""
    with gzip.open(HH_TEST, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rng = random.Random(seed)
    picked = rng.sample(rows, n // 2)
    out = []
    for r in picked:
        for side in ("chosen", "rejected"):
            text = r[side].rsplit("\n\nAssistant:", 1)[-1].strip()
            if text:
                out.append(text)
    return out[:n]


def load_ifeval() -> list[dict]:
    with IFEVAL_PROMPTS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# ---- edits that move a text towards (or just past) one instruction ------------------------------------
def _words(text: str, n: int) -> str:
    base = text.split() or ["word"]
    return " ".join(base[i % len(base)] for i in range(n))


def _sentences(n: int) -> str:
    return " ".join(f"This is sentence number {i + 1}." for i in range(n))


def edits_for(instruction_id: str, kw: dict, prompt: str, text: str) -> list[str]:
    """Texts on both sides of the verdict boundary of one instruction, built from `text`."""
    t = text
    out: list[str] = []
    if instruction_id == "length_constraints:number_words":
        n = kw["num_words"]
        out += [_words(t, m) for m in (n - 1, n, n + 1) if m > 0]
    elif instruction_id == "length_constraints:number_sentences":
        n = kw["num_sentences"]
        out += [_sentences(m) for m in (n - 1, n, n + 1) if m > 0]
    elif instruction_id == "length_constraints:number_paragraphs":
        n = kw["num_paragraphs"]
        out += ["\n***\n".join([t] * m) for m in (n - 1, n, n + 1) if m > 0]
        out.append("***\n" + "\n\n***\n".join([t] * n) + "\n***")
    elif instruction_id == "length_constraints:nth_paragraph_first_word":
        n, k, w = kw["num_paragraphs"], kw["nth_paragraph"], kw["first_word"]
        paras = [t] * n
        paras[k - 1] = f"{w.capitalize()}, {t}"
        out += ["\n\n".join(paras), "\n\n".join(paras[:-1]), "\n\n".join(paras) + "\n\n"]
        paras[k - 1] = f'"{w}" {t}'
        out.append("\n\n".join(paras))
    elif instruction_id == "detectable_content:number_placeholders":
        n = kw["num_placeholders"]
        out += [t + " " + " ".join(f"[field {i}]" for i in range(m)) for m in (n - 1, n)]
    elif instruction_id == "detectable_content:postscript":
        out += [f"{t}\n\n{kw['postscript_marker']} one more thing", f"{t}\nP. S. spaced", f"{t}\nP.P.S also"]
    elif instruction_id == "detectable_format:number_bullet_lists":
        n = kw["num_bullets"]
        out += ["\n".join(f"* point {i}" for i in range(m)) for m in (n - 1, n, n + 1)]
        out.append("\n".join(f"- point {i}" for i in range(n)))
    elif instruction_id == "detectable_format:number_highlighted_sections":
        n = kw["num_highlights"]
        out += [t + " " + " ".join(f"*part {i}*" for i in range(m)) for m in (n - 1, n)]
        out.append(t + " " + " ".join(f"**bold {i}**" for i in range(n)))
    elif instruction_id == "detectable_format:multiple_sections":
        s, n = kw["section_spliter"], kw["num_sections"]
        out += ["\n".join(f"{s} {i + 1}\n{t}" for i in range(m)) for m in (n - 1, n)]
    elif instruction_id == "detectable_format:json_format":
        out += [json.dumps({"answer": t}), f"```json\n{json.dumps([t])}\n```", "{" + t + "}"]
    elif instruction_id == "detectable_format:title":
        out += [f"<<{t[:30]}>>\n{t}", f"<{t[:10]}>\n{t}"]
    elif instruction_id == "detectable_format:constrained_response":
        out += ["My answer is no.", f"{t} My answer is maybe.", "My answer is Yes."]
    elif instruction_id == "combination:two_responses":
        out += [f"{t}\n******\n{t[::-1]}", f"{t}\n******\n{t}", f"{t}\n******\n\n******\n{t}"]
    elif instruction_id == "combination:repeat_prompt":
        p = kw["prompt_to_repeat"]
        out += [f"{p}\n{t}", f"{p.upper()} {t}", f" {p[:-1]}"]
    elif instruction_id == "startend:end_checker":
        e = kw["end_phrase"]
        out += [f"{t} {e}", f'"{t} {e}"', f"{t} {e} Thanks.", f"{t} {e.lower()}\n"]
    elif instruction_id == "startend:quotation":
        out += [f'"{t}"', f'  "{t}"\n', f'"{t}']
    elif instruction_id == "change_case:english_capital":
        out += [t.upper(), "ÇA VA TRÈS BIEN MERCI BEAUCOUP MON AMI"]
    elif instruction_id == "change_case:english_lowercase":
        out += [t.lower(), "ça va très bien merci beaucoup mon ami"]
    elif instruction_id == "change_case:capital_word_frequency":
        n = kw["capital_frequency"]
        out += [t + " " + " ".join(["IMPORTANT"] * m) for m in (n - 1, n, n + 1) if m >= 0]
    elif instruction_id == "punctuation:no_comma":
        out += [t.replace(",", ""), t + ","]
    elif instruction_id == "keywords:existence":
        out += [t + " " + " ".join(kw["keywords"]), t + " " + kw["keywords"][0].upper()]
    elif instruction_id == "keywords:frequency":
        n = kw["frequency"]
        out += [t + (" " + kw["keyword"]) * m for m in (n - 1, n) if m >= 0]
    elif instruction_id == "keywords:forbidden_words":
        out += [t + " " + kw["forbidden_words"][0], t + " " + kw["forbidden_words"][-1] + "s"]
    elif instruction_id == "keywords:letter_frequency":
        c, n = kw["letter"], kw["let_frequency"]
        base = "".join(ch for ch in t if ch.lower() != c)
        out += [base + " " + c * m for m in (n - 1, n) if m >= 0]
    elif instruction_id == "language:response_language":
        out += MULTILINGUAL[:4]
    return out


def corpus_for_prompt(row: dict, base_texts: list[str], rng: random.Random) -> list[str]:
    """Responses to score against one IFEval prompt: shared texts plus edits aimed at its instructions."""
    texts = list(base_texts)
    seed_text = rng.choice(base_texts[:20])
    combined = seed_text
    for iid, kw in zip(row["instruction_id_list"], row["kwargs"], strict=True):
        for edited in edits_for(iid, kw, row["prompt"], seed_text):
            texts.append(edited)
        edited_all = edits_for(iid, kw, row["prompt"], combined)
        if edited_all:
            combined = edited_all[min(1, len(edited_all) - 1)]
    texts.append(combined)  # one text edited for all of the prompt's instructions at once
    return texts
