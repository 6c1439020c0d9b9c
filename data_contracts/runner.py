"""Running a table's contract: row-level checks per batch (where the rows are built), then the whole table.

`check_rows` validates one batch of rows with the table's great-expectations suite (plus the `check_*`
columns of `checks.py`) and returns a small picklable summary; the build runs it in its worker processes
right after construction. `finish` aggregates the batches, adds the whole-table checks (unique keys,
condition shares, minimum rows) and writes the validation report (JSON + Markdown) next to the tables.
`validate` does both on a staged file, for a table checked on its own.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from data_contracts.checks import ROW_CHECKS, benchmark_prompts, unmirrored_rows
from data_contracts.suites import suite_for
from mapl_core.build import ContractResult
from mapl_core.config import BuildConfig
from mapl_core.storage.delta_tables import StagedTable

BATCH_ROWS = 20_000
UNIQUE_KEY = {"original": "pair_id", "intra": "row_id", "inter": "row_id"}
EXAMPLES = 5
_ID_FIELDS = ("pair_id", "row_id", "source_row", "response_side")


@functools.cache
def _batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("mapl").add_dataframe_asset("staged")
    return asset.add_batch_definition_whole_dataframe("batch")


def run_suite(df: pd.DataFrame, suite) -> dict[str, dict[str, Any]]:
    """Validate `df` (its `check_*` columns included) with a great-expectations suite: per expectation, its
    success, how many rows broke it and the first few of them."""
    result = (
        _batch_definition()
        .get_batch(batch_parameters={"dataframe": df})
        .validate(suite, result_format={"result_format": "COMPLETE"})
    )
    out = {}
    for r in result.results:
        key = f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')})"
        idx = (r.result.get("unexpected_index_list") or [])[:EXAMPLES]
        out[key] = {
            "success": bool(r.success),
            "unexpected_count": int(r.result.get("unexpected_count") or 0),
            "examples": [_example(df, i) for i in idx],
        }
    return out


def check_rows(kind: str, rows: list[dict[str, Any]] | pd.DataFrame, cfg: BuildConfig) -> dict[str, Any]:
    """Validate one batch; returns per-expectation results with example rows and batch aggregates."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    out: dict[str, Any] = {"rows": len(df), "expectations": {}, "condition": {}, "length": [0, 0]}
    if df.empty:
        return out
    bench = benchmark_prompts(cfg.contracts.benchmark_prompts) if cfg.contracts.decontaminate else None
    checks = ROW_CHECKS[kind](df, bench)
    df = df.assign(**{c: checks[c].to_numpy() for c in checks})
    out["expectations"] = run_suite(df, suite_for(kind, cfg, list(checks.columns)))
    if kind == "intra":
        out["condition"] = {str(k): int(v) for k, v in Counter(int(c) for c in df["condition"]).items()}
    if kind in ("original", "inter"):
        out["length"] = [int(df["chosen"].str.len().sum()), int(df["rejected"].str.len().sum())]
    source_cols = {"intra": ("sources_w", "sources_l"), "inter": ("sources",)}.get(kind, ())
    out["sources"] = dict(Counter(s for col in source_cols for lst in df[col] for s in lst))
    out["decontamination"] = "on" if bench is not None else "skipped (no benchmark prompts)"
    return out


@dataclass
class Batches:
    """The row checks of every batch of one table, added up."""

    expectations: dict[str, dict[str, Any]] = field(default_factory=dict)
    condition: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    length: list[int] = field(default_factory=lambda: [0, 0])
    rows: int = 0
    decontamination: str | None = None

    @classmethod
    def add_up(cls, batches: list[dict[str, Any]]) -> Batches:
        agg = cls()
        for b in batches:
            for key, r in b["expectations"].items():
                exp = agg.expectations.setdefault(
                    key, {"success": True, "unexpected_count": 0, "examples": []}
                )
                exp["success"] &= r["success"]
                exp["unexpected_count"] += r["unexpected_count"]
                for ex in r["examples"][: EXAMPLES - len(exp["examples"])]:
                    exp["examples"].append({**ex, "row": ex["row"] + agg.rows})
            agg.condition.update(b["condition"])
            agg.sources.update(b.get("sources", {}))
            agg.length = [agg.length[0] + b["length"][0], agg.length[1] + b["length"][1]]
            agg.rows += b["rows"]
            agg.decontamination = b.get("decontamination", "on")
        return agg


def _failure(expectation: str, count: int, examples: list) -> dict[str, Any]:
    return {"expectation": expectation, "unexpected_count": count, "examples": examples[:EXAMPLES]}


# Whole-table checks: each (kind, staged table, added-up batches, recipe) -> a failure or None. They see the
# whole table, which the row checks, one batch at a time, cannot.


def unique_keys(kind: str, staged: StagedTable, agg: Batches, cfg: BuildConfig) -> dict | None:
    if kind not in UNIQUE_KEY or not staged.rows:
        return None
    import pyarrow.compute as pc

    counts = pc.value_counts(pq.read_table(staged.path, columns=[UNIQUE_KEY[kind]]).column(0))
    dupes = counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist()
    return _failure(f"unique({UNIQUE_KEY[kind]})", len(dupes), dupes) if dupes else None


def mirrored_twins(kind: str, staged: StagedTable, agg: Batches, cfg: BuildConfig) -> dict | None:
    """The two rows of a twin may sit in different batches, so this is a whole-table property."""
    if kind != "intra" or cfg.construction.intra_pairing != "mirrored" or not staged.rows:
        return None
    cols = ["row_id", "pair_id", "response_side", "prompt_w", "prompt_l", "kwargs_w", "kwargs_l"]
    bad = unmirrored_rows(pq.read_table(staged.path, columns=cols).to_pandas())
    what = "mirrored twins (each pair's other response ranks the same prompts reversed)"
    return _failure(what, len(bad), bad) if bad else None


def condition_shares(kind: str, staged: StagedTable, agg: Batches, cfg: BuildConfig) -> dict | None:
    shares = _condition_shares(agg)
    if not shares or cfg.construction.condition_mix in (0.0, 1.0):
        return None
    floor = cfg.contracts.min_condition_share
    if len(shares) < 2 or min(shares.values()) < floor:
        return _failure(f"each condition's share >= {floor}", 1, [shares])
    return None


def minimum_rows(kind: str, staged: StagedTable, agg: Batches, cfg: BuildConfig) -> dict | None:
    if kind in ("original", "intra", "inter") and staged.rows < cfg.contracts.min_rows:
        return _failure(f"at least {cfg.contracts.min_rows} rows", 1, [staged.rows])
    return None


def every_row_validated(kind: str, staged: StagedTable, agg: Batches, cfg: BuildConfig) -> dict | None:
    if agg.rows != staged.rows:
        return _failure("every row validated", abs(staged.rows - agg.rows), [agg.rows, staged.rows])
    return None


TABLE_CHECKS = (unique_keys, mirrored_twins, condition_shares, minimum_rows, every_row_validated)


def _condition_shares(agg: Batches) -> dict[str, float]:
    total = sum(agg.condition.values())
    return {k: v / total for k, v in sorted(agg.condition.items())} if total else {}


def table_metrics(kind: str, staged: StagedTable, agg: Batches) -> dict[str, Any]:
    metrics: dict[str, Any] = {"rows": staged.rows}
    if agg.decontamination is not None:
        metrics["decontamination"] = agg.decontamination
    if shares := _condition_shares(agg):
        metrics["condition_share"] = shares
    if agg.sources:  # how many instructions got their arguments from the model's proposals
        metrics["arguments_from_model"] = agg.sources["model"]
        metrics["arguments_from_model_share"] = agg.sources["model"] / sum(agg.sources.values())
    if agg.rows and kind in ("original", "inter"):
        metrics["mean_chars_chosen"] = agg.length[0] / agg.rows
        metrics["mean_chars_rejected"] = agg.length[1] / agg.rows
        metrics["length_bias_chosen_over_rejected"] = agg.length[0] / max(agg.length[1], 1)
    return metrics


def finish(
    kind: str, staged: StagedTable, batches: list[dict[str, Any]], cfg: BuildConfig, report_dir: Path
) -> ContractResult:
    """Add up the batches' row checks, run the whole-table checks, write the report; the contract result."""
    agg = Batches.add_up(batches)
    failures = [{"expectation": k, **v} for k, v in agg.expectations.items() if not v["success"]]
    failures += [f for check in TABLE_CHECKS if (f := check(kind, staged, agg, cfg)) is not None]
    metrics = table_metrics(kind, staged, agg)
    return write_report(f"{cfg.name}_{kind}", agg.expectations, failures, metrics, report_dir)


def write_report(
    table: str, expectations: dict[str, dict], failures: list[dict], metrics: dict[str, Any], report_dir: Path
) -> ContractResult:
    """The validation report (JSON + Markdown, in `report_dir`) and the contract result: passed when
    nothing failed."""
    success = not failures
    summary = _summary(table, success, failures, metrics)
    report_dir.mkdir(parents=True, exist_ok=True)
    report_json, report_md = report_dir / f"{table}.json", report_dir / f"{table}.md"
    report = {"table": table, "success": success, "metrics": metrics, "expectations": expectations,
              "failures": failures}  # fmt: skip
    report_json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    report_md.write_text(summary + "\n")
    return ContractResult(table, success, summary, failures, metrics, report_json, report_md)


def validate(kind: str, staged: StagedTable, cfg: BuildConfig, report_dir: Path) -> ContractResult:
    """Check a staged table on its own: every batch, then the whole table."""
    batches = [
        check_rows(kind, batch.to_pandas(), cfg)
        for batch in pq.ParquetFile(staged.path).iter_batches(batch_size=BATCH_ROWS)
    ]
    return finish(kind, staged, batches, cfg, report_dir)


class GreatExpectationsContracts:
    """The contracts the build runs: `check_rows` in the workers, `finish` before the commit."""

    check_rows = staticmethod(check_rows)
    finish = staticmethod(finish)


CONTRACTS = GreatExpectationsContracts()


def _example(df, idx: int) -> dict[str, Any]:
    row = df.iloc[idx]
    keep = {k: str(row[k]) for k in _ID_FIELDS if k in row.index}
    failed = [c for c in row.index if c.startswith("check_") and not row[c]]
    return {"row": int(idx), **keep, "failed_checks": failed}


def _summary(table: str, success: bool, failures: list[dict], metrics: dict[str, Any]) -> str:
    lines = [f"## Contract for `{table}`: {'PASSED' if success else 'FAILED'}", ""]
    for f in failures:
        lines.append(
            f"- **{f['expectation']}** failed on {f['unexpected_count']} row(s); examples: {json.dumps(f['examples'][:EXAMPLES], default=str)}"
        )
    lines += ["", "Metrics: " + json.dumps(metrics, default=str)]
    return "\n".join(lines)
