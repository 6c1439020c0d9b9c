"""IFEval's loose scoring: a response also counts if a relaxed variant of it follows the instruction."""

from __future__ import annotations


def loose_variants(response: str) -> list[str]:
    """The reference's eight variants, in its order, without duplicates and without blank ones.

    Variants: the response; without its first line; without its last line; without both; and each of those
    four with every `*` removed. The reference tries all eight in order and stops at the first that
    follows; a variant that is blank never follows, and a repeated variant gives the same verdict, so
    dropping both leaves every verdict unchanged.
    """
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    ordered = [
        response,
        response.replace("*", ""),
        no_first,
        no_last,
        no_both,
        no_first.replace("*", ""),
        no_last.replace("*", ""),
        no_both.replace("*", ""),
    ]
    seen: set[str] = set()
    out = []
    for text in ordered:
        if text not in seen and text.strip():
            seen.add(text)
            out.append(text)
    return out
