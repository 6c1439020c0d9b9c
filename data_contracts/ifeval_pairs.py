"""The contract of the IFEval-phrased reward-model benchmark table (`mapl_core.evaluation.ifeval_pairs`).

Row checks (great-expectations over `check_*` columns): both responses non-empty and different, both
responses' stored verdicts equal what the checkers say now (labels re-verified), and the stored preference
follows from them (the chosen response follows every instruction and the other does not, or the two differ in
exactly one instruction, which the chosen one follows). Whole-table checks: no duplicate pair id, and no pair
twice (the same prompt, chosen and rejected text).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from data_contracts.runner import EXAMPLES, _batch_definition, _failure, _summary
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
    df = pq.read_table(staged.path).to_pandas() if staged.rows else pd.DataFrame()
    failures: list[dict] = []
    expectations: dict[str, dict] = {}
    if staged.rows:
        checks = pair_checks(df)
        checked = df.assign(**{c: checks[c].to_numpy() for c in checks})
        result = (
            _batch_definition()
            .get_batch(batch_parameters={"dataframe": checked})
            .validate(_suite(staged.name, list(checks.columns)), result_format={"result_format": "COMPLETE"})
        )
        for r in result.results:
            key = f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')})"
            idx = (r.result.get("unexpected_index_list") or [])[:EXAMPLES]
            examples = [{"row": int(i), "pair_id": str(df.pair_id.iloc[i])} for i in idx]
            expectations[key] = {"success": bool(r.success),
                                 "unexpected_count": int(r.result.get("unexpected_count") or 0),
                                 "examples": examples}  # fmt: skip
        failures += [{"expectation": k, **v} for k, v in expectations.items() if not v["success"]]
        failures += _duplicates(df)
    else:
        failures.append(_failure("at least 1 pair", 1, [0]))
    metrics = {"rows": staged.rows}
    if staged.rows:
        metrics |= {"prompts": int(df.key.nunique()), "follows_all_pairs": int(df.chosen_follows_all.sum()),
                    "one_instruction_pairs": int(df.one_instruction.sum()),
                    "chosen_shorter_share": float((df.chosen_chars < df.rejected_chars).mean())}  # fmt: skip
    success = not failures
    summary = _summary(staged.name, success, failures, metrics)
    report_dir.mkdir(parents=True, exist_ok=True)
    report_json, report_md = report_dir / f"{staged.name}.json", report_dir / f"{staged.name}.md"
    report = {"table": staged.name, "success": success, "metrics": metrics, "expectations": expectations,
              "failures": failures}  # fmt: skip
    report_json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    report_md.write_text(summary + "\n")
    return ContractResult(staged.name, success, summary, failures, metrics, report_json, report_md)
