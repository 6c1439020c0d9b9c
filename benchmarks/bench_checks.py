"""Checks per second: mapl's IFEval scorer against the reference (lm-eval's copy of Google's checkers).

Both score the same (prompt, response) pairs, strict and loose, in one run; mapl's time includes parsing and
validating the prompt's kwargs for every pair. Verdicts are compared pair by pair (the two prompts whose
`letter` is not a-z are left out: the reference's verdict on them is random). Then `propose` calls per
second per family on real responses.

    .venv/bin/python benchmarks/bench_checks.py [--responses-per-prompt 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpus import EDGE_CASES, MULTILINGUAL, hh_responses, load_ifeval
from reference_ifeval import _modules, row_reference_is_random

from mapl_core.evaluation.ifeval_files import parse_prompt
from mapl_core.evaluation.ifeval_scoring import score_prompt
from mapl_core.instructions import INSTRUCTION_IDS, ProposalContext, get_family
from mapl_core.instructions.text import clear_text_caches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--responses-per-prompt", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    utils = _modules()
    rows = [r for r in load_ifeval() if not row_reference_is_random(r)]
    texts = hh_responses(60, seed=3) + MULTILINGUAL + [e for e in EDGE_CASES if len(e) < 5000]
    rng = random.Random(0)
    pairs = [(row, t) for row in rows for t in rng.sample(texts, args.responses_per_prompt)]
    n_checks = sum(len(row["instruction_id_list"]) for row, _ in pairs) * 2  # strict + loose

    def run_reference() -> list:
        out = []
        for row, text in pairs:
            inp = utils.InputExample(0, row["instruction_id_list"], row["prompt"], row["kwargs"])
            s = utils.test_instruction_following_strict(inp, text).follow_instruction_list
            lo = utils.test_instruction_following_loose(inp, text).follow_instruction_list
            out.append((s, lo))
        return out

    def run_mapl() -> list:
        out = []
        for row, text in pairs:
            clear_text_caches()  # IFEval responses are unique: no measurement may come from an earlier pair
            item, _ = parse_prompt("bench", 0, row)
            v = score_prompt(item, text)
            out.append((v.follow_instruction_list_strict, v.follow_instruction_list_loose))
        return out

    ref_out, ours_out = run_reference(), run_mapl()  # warm-up, and the verdict comparison
    disagreements = sum(a != b for a, b in zip(ref_out, ours_out, strict=True))
    times = {"reference": [], "mapl": []}
    for _ in range(args.repeat):
        for name, fn in (("reference", run_reference), ("mapl", run_mapl)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ref_t, ours_t = statistics.median(times["reference"]), statistics.median(times["mapl"])

    print(
        f"# bench_checks — {date.today()} — {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"{len(pairs)} (prompt, response) pairs, {n_checks} checks (strict + loose), median of {args.repeat}"
    )
    print()
    print("| implementation | seconds | checks/s | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| reference (lm-eval 0.4.13) | {ref_t:.2f} | {n_checks / ref_t:,.0f} | 1.00× |")
    print(f"| mapl | {ours_t:.2f} | {n_checks / ours_t:,.0f} | {ref_t / ours_t:.2f}× |")
    print(f"\nprompt pairs whose verdict lists differ: {disagreements}")

    print("\n| family | propose calls/s | proposals made |")
    print("|---|---:|---:|")
    real = hh_responses(40, seed=5)
    for iid in INSTRUCTION_IDS:
        fam = get_family(iid)
        ctx = ProposalContext(prompt="Tell me something useful.")
        calls = made = 0
        t0 = time.perf_counter()
        for i, text in enumerate(real):
            clear_text_caches()
            for want in (True, False):
                made += fam.propose([(text, want)], random.Random(i), ctx) is not None
                calls += 1
        dt = time.perf_counter() - t0
        print(f"| {iid} | {calls / dt:,.0f} | {made}/{calls} |")


if __name__ == "__main__":
    main()
