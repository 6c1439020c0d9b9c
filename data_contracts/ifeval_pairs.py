"""The contract of the IFEval-phrased reward-model benchmark table (`mapl_core.evaluation.ifeval_pairs`).

Row checks (great-expectations over `check_*` columns): both responses non-empty and different, both
responses' stored verdicts equal what the checkers say now (labels re-verified), and the stored preference
follows from them (the chosen response follows every instruction and the other does not, or the two differ in
exactly one instruction, which the chosen one follows). Whole-table checks: no duplicate pair id, and no pair
twice (the same prompt, chosen and rejected text).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from data_contracts.runner import _failure, run_suite, write_report
from mapl_core.build import ContractResult
from mapl_core.evaluation.ifeval_pairs import stored_verdicts
from mapl_core.storage.delta_tables import StagedTable


def _verified(ids, kwargs: str, prompt: str, response: str, stored) -> bool:
    try:
        return stored_verdicts(ids, kwargs, prompt, response) == list(stored)
    except (ValueError, TypeError, KeyError):
        return False


def _preference_holds(chosen, rejected, follows_all: bool, one: bool, decided) -> bool:
    chosen, rejected = list(chosen), list(rejected)
    if len(chosen) != len(rejected) or not (follows_all or one):
        return False
    differing = [i for i, (a, b) in enumerate(zip(chosen, rejected, strict=True)) if a != b]
    ok_all = not follows_all or (all(chosen) and not all(rejected))
    ok_one = not one or (len(differing) == 1 and chosen[differing[0]])
    return (
        ok_all
        and ok_one
        and len(list(decided)) == sum(a and not b for a, b in zip(chosen, rejected, strict=True))
    )


def pair_checks(df: pd.DataFrame) -> pd.DataFrame:
    rows = list(df.itertuples(index=False))
    return pd.DataFrame(
        {
            "check_both_non_empty": [bool(r.chosen.strip()) and bool(r.rejected.strip()) for r in rows],
            "check_responses_differ": [r.chosen != r.rejected for r in rows],
            "check_chosen_labels": [
                _verified(r.instruction_id_list, r.kwargs, r.prompt, r.chosen, r.follow_chosen) for r in rows
            ],
            "check_rejected_labels": [
                _verified(r.instruction_id_list, r.kwargs, r.prompt, r.rejected, r.follow_rejected)
                for r in rows
            ],
            "check_preference": [
                _preference_holds(
                    r.follow_chosen, r.follow_rejected, r.chosen_follows_all, r.one_instruction, r.decided_by
                )
                for r in rows
            ],
        }
    )


def _suite(name: str, check_columns: list[str]):
    import great_expectations as gx

    E = gx.expectations
    exp = [E.ExpectColumnValuesToBeInSet(column=c, value_set=[True]) for c in check_columns]
    exp += [
        E.ExpectColumnValuesToNotBeNull(column=c) for c in ("pair_id", "key", "prompt", "chosen", "rejected")
    ]
    exp += [E.ExpectColumnValuesToBeBetween(column="broken_rejected", min_value=1)]
    return gx.ExpectationSuite(name=name, expectations=exp)


def _duplicates(df: pd.DataFrame) -> list[dict]:
    out = []
    ids = df["pair_id"][df["pair_id"].duplicated()].tolist()
    if ids:
        out.append(_failure("unique(pair_id)", len(ids), ids))
    triples = df[["key", "chosen", "rejected"]].duplicated()
    if triples.any():
        out.append(
            _failure("unique(key, chosen, rejected)", int(triples.sum()), df["pair_id"][triples].tolist())
        )
    return out


def validate_pairs(staged: StagedTable, report_dir: Path) -> ContractResult:
    """Check a staged benchmark table (small enough to read whole: thousands of rows) and write its report."""
    if not staged.rows:
        failure = _failure("at least 1 pair", 1, [0])
        return write_report(staged.name, {}, [failure], {"rows": 0}, report_dir)
    df = pq.read_table(staged.path).to_pandas()
    checks = pair_checks(df)
    checked = df.assign(**{c: checks[c].to_numpy() for c in checks})
    expectations = run_suite(checked, _suite(staged.name, list(checks.columns)))
    failures = [{"expectation": k, **v} for k, v in expectations.items() if not v["success"]]
    failures += _duplicates(df)
    metrics = {"rows": staged.rows, "prompts": int(df.key.nunique()),
               "follows_all_pairs": int(df.chosen_follows_all.sum()),
               "one_instruction_pairs": int(df.one_instruction.sum()),
               "chosen_shorter_share": float((df.chosen_chars < df.rejected_chars).mean())}  # fmt: skip
    return write_report(staged.name, expectations, failures, metrics, report_dir)
