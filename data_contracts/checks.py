"""Row-level checks specific to preference data, computed as boolean columns for the suites.

Each function takes a pandas batch of one table and returns a DataFrame of `check_*` columns (True: the row
is fine). The great-expectations suites then require every `check_*` column to be all True.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pandas as pd

from mapl_core.construction.intra import condition_holds
from mapl_core.construction.render import leaks
from mapl_core.construction.sampling import MODEL_ARG_IDS, stored_verdicts
from mapl_core.instructions import REGISTRY, conflict_free
from mapl_core.paths import shared_data_dir

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case, whitespace collapsed: the form used for decontamination matches."""
    return _SPACE.sub(" ", text).strip().lower()


@functools.cache
def benchmark_prompts(path: str | None = None) -> frozenset[str] | None:
    """Normalized IFEval prompts (the evaluation set no training table may contain), or None if absent."""
    if path is None:
        shared = shared_data_dir()
        candidate = shared / "ifeval" / "input_data.jsonl" if shared else None
        if candidate is None or not candidate.is_file():
            return None
        path = str(candidate)
    with Path(path).open(encoding="utf-8") as fh:
        return frozenset(normalize_text(json.loads(line)["prompt"]) for line in fh if line.strip())


@functools.cache
def _by_prefix(bench: frozenset[str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for b in bench:
        index.setdefault(b[:30], []).append(b)
    return {k: tuple(v) for k, v in index.items()}


def _contaminated(messages, bench: frozenset[str]) -> bool:
    """A user turn equals a benchmark prompt, or starts with one (instructions appended after it)."""
    index = _by_prefix(bench)
    for m in messages:
        if m["role"] != "user":
            continue
        text = normalize_text(m["content"])
        if text in bench or any(text.startswith(b) for b in index.get(text[:30], ())):
            return True
    return False


def _labels_ok(ids, kwargs, follows, response: str) -> bool:
    try:
        return stored_verdicts(response, ids, kwargs) == list(follows)
    except (KeyError, ValueError, TypeError):
        return False


def _sources_ok(ids, sources) -> bool:
    """One source per instruction; "model" only for families whose arguments a model can propose."""
    ids, sources = list(ids), list(sources)
    return len(ids) == len(sources) and all(
        s == "rules" or (s == "model" and i in MODEL_ARG_IDS) for i, s in zip(ids, sources, strict=True)
    )


def _ids_ok(ids) -> bool:
    ids = list(ids)
    return bool(ids) and all(i in REGISTRY for i in ids) and conflict_free(ids)


def original_checks(df: pd.DataFrame, bench: frozenset[str] | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "check_chosen_differs": [
                c.strip() != r.strip() for c, r in zip(df.chosen, df.rejected, strict=True)
            ],
            "check_prompt_ends_with_user": [
                len(p) > 0 and p[-1]["role"] == "user" and p[-1]["content"].strip() != "" for p in df.prompt
            ],
            "check_not_benchmark_prompt": [True] * len(df)
            if bench is None
            else [not _contaminated(p, bench) for p in df.prompt],
        }
    )


def unmirrored_rows(df: pd.DataFrame) -> list[str]:
    """Row ids of a mirrored intra table (`construction.intra_pairing: mirrored`) whose twin — the same pair's
    other response — is missing or does not rank the same two prompts the other way round."""

    def key(prompt, kwargs) -> str:
        return json.dumps([[dict(m) for m in prompt], list(kwargs)], sort_keys=True, ensure_ascii=False)

    sides = {
        (r.pair_id, r.response_side): (key(r.prompt_w, r.kwargs_w), key(r.prompt_l, r.kwargs_l))
        for r in df.itertuples(index=False)
    }
    bad = []
    for r in df.itertuples(index=False):
        twin = sides.get((r.pair_id, "rejected" if r.response_side == "chosen" else "chosen"))
        w, lose = sides[(r.pair_id, r.response_side)]
        if twin != (lose, w):
            bad.append(r.row_id)
    return bad


def intra_checks(df: pd.DataFrame, bench: frozenset[str] | None) -> pd.DataFrame:
    rows = df.itertuples(index=False)
    out: dict[str, list[bool]] = {
        k: []
        for k in (
            "check_labels_verified",
            "check_instructions_valid",
            "check_condition_holds",
            "check_sources_valid",
            "check_no_response_leak",
            "check_not_benchmark_prompt",
        )
    }
    for r in rows:
        fw, fl = list(r.follows_w), list(r.follows_l)
        out["check_labels_verified"].append(
            _labels_ok(r.instructions_w, r.kwargs_w, fw, r.response)
            and _labels_ok(r.instructions_l, r.kwargs_l, fl, r.response)
        )
        out["check_instructions_valid"].append(
            _ids_ok(r.instructions_w) and list(r.instructions_w) == list(r.instructions_l) and len(fw) == r.k
        )
        out["check_condition_holds"].append(bool(condition_holds(r.condition, fw, fl)))
        out["check_sources_valid"].append(
            _sources_ok(r.instructions_w, r.sources_w) and _sources_ok(r.instructions_l, r.sources_l)
        )
        out["check_no_response_leak"].append(not leaks(list(r.texts_w) + list(r.texts_l), r.response))
        out["check_not_benchmark_prompt"].append(
            bench is None or not (_contaminated(r.prompt_w, bench) or _contaminated(r.prompt_l, bench))
        )
    return pd.DataFrame(out)


def inter_checks(df: pd.DataFrame, bench: frozenset[str] | None) -> pd.DataFrame:
    out: dict[str, list[bool]] = {
        k: []
        for k in (
            "check_labels_verified",
            "check_instructions_valid",
            "check_degree_consistent",
            "check_sources_valid",
            "check_chosen_differs",
            "check_no_response_leak",
            "check_not_benchmark_prompt",
        )
    }
    for r in df.itertuples(index=False):
        fc, fr = list(r.follows_chosen), list(r.follows_rejected)
        out["check_labels_verified"].append(
            _labels_ok(r.instructions, r.kwargs, fc, r.chosen)
            and _labels_ok(r.instructions, r.kwargs, fr, r.rejected)
        )
        out["check_instructions_valid"].append(_ids_ok(r.instructions) and len(fc) == r.k == len(fr))
        degree = (sum(fc) - sum(fr)) / r.k if r.k else float("nan")
        out["check_degree_consistent"].append(
            abs(degree - r.degree) < 1e-12 and r.consistent == (sum(fc) >= sum(fr))
        )
        out["check_sources_valid"].append(_sources_ok(r.instructions, r.sources))
        out["check_chosen_differs"].append(r.chosen.strip() != r.rejected.strip())
        out["check_no_response_leak"].append(
            not (leaks(list(r.texts), r.chosen) or leaks(list(r.texts), r.rejected))
        )
        out["check_not_benchmark_prompt"].append(bench is None or not _contaminated(r.prompt, bench))
    return pd.DataFrame(out)


def comparison_checks(df: pd.DataFrame, bench: frozenset[str] | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "check_stronger_is_stronger": list(df.stronger_degree > df.weaker_degree),
            "check_distinct_rows": list(df.stronger_row_id != df.weaker_row_id),
        }
    )


def quarantine_checks(df: pd.DataFrame, bench: frozenset[str] | None) -> pd.DataFrame:
    return pd.DataFrame({"check_has_reason": [bool(str(r).strip()) for r in df.reason]})


ROW_CHECKS = {
    "original": original_checks,
    "intra": intra_checks,
    "inter": inter_checks,
    "inter_comparisons": comparison_checks,
    "quarantine": quarantine_checks,
}
