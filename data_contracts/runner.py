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


def check_rows(kind: str, rows: list[dict[str, Any]] | pd.DataFrame, cfg: BuildConfig) -> dict[str, Any]:
    """Validate one batch; returns per-expectation results with example rows and batch aggregates."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    out: dict[str, Any] = {"rows": len(df), "expectations": {}, "condition": {}, "length": [0, 0]}
    if df.empty:
        return out
    bench = benchmark_prompts(cfg.contracts.benchmark_prompts) if cfg.contracts.decontaminate else None
    checks = ROW_CHECKS[kind](df, bench)
    df = df.assign(**{c: checks[c].to_numpy() for c in checks})
    suite = suite_for(kind, cfg, list(checks.columns))
    result = (
        _batch_definition()
        .get_batch(batch_parameters={"dataframe": df})
        .validate(suite, result_format={"result_format": "COMPLETE"})
    )
    for r in result.results:
        key = f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')})"
        idx = (r.result.get("unexpected_index_list") or [])[:EXAMPLES]
        out["expectations"][key] = {
            "success": bool(r.success),
            "unexpected_count": int(r.result.get("unexpected_count") or 0),
            "examples": [_example(df, i) for i in idx],
        }
    if kind == "intra":
        out["condition"] = {str(k): int(v) for k, v in Counter(int(c) for c in df["condition"]).items()}
    if kind in ("original", "inter"):
        out["length"] = [int(df["chosen"].str.len().sum()), int(df["rejected"].str.len().sum())]
    source_cols = {"intra": ("sources_w", "sources_l"), "inter": ("sources",)}.get(kind, ())
    out["sources"] = dict(Counter(s for col in source_cols for lst in df[col] for s in lst))
    out["decontamination"] = "on" if bench is not None else "skipped (no benchmark prompts)"
    return out


def finish(
    kind: str, staged: StagedTable, batches: list[dict[str, Any]], cfg: BuildConfig, report_dir: Path
) -> ContractResult:
    """Aggregate batch results, run the whole-table checks, write the report; returns the contract result."""
    per_exp: dict[str, dict[str, Any]] = {}
    condition: Counter = Counter()
    sources: Counter = Counter()
    length = [0, 0]
    offset = 0
    for b in batches:
        for key, r in b["expectations"].items():
            agg = per_exp.setdefault(key, {"success": True, "unexpected_count": 0, "examples": []})
            agg["success"] &= r["success"]
            agg["unexpected_count"] += r["unexpected_count"]
            for ex in r["examples"][: EXAMPLES - len(agg["examples"])]:
                agg["examples"].append({**ex, "row": ex["row"] + offset})
        condition.update(b["condition"])
        sources.update(b.get("sources", {}))
        length = [length[0] + b["length"][0], length[1] + b["length"][1]]
        offset += b["rows"]

    failures = [{"expectation": k, **v} for k, v in per_exp.items() if not v["success"]]
    if kind in UNIQUE_KEY and staged.rows:
        import pyarrow.compute as pc

        counts = pc.value_counts(pq.read_table(staged.path, columns=[UNIQUE_KEY[kind]]).column(0))
        dupes = counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist()
        if dupes:
            failures.append(
                {
                    "expectation": f"unique({UNIQUE_KEY[kind]})",
                    "unexpected_count": len(dupes),
                    "examples": dupes[:EXAMPLES],
                }
            )
    metrics: dict[str, Any] = {"rows": staged.rows}
    if kind == "intra" and cfg.construction.intra_pairing == "mirrored" and staged.rows:
        # a whole-table property: the two rows of a twin may sit in different batches
        cols = ["row_id", "pair_id", "response_side", "prompt_w", "prompt_l", "kwargs_w", "kwargs_l"]
        bad = unmirrored_rows(pq.read_table(staged.path, columns=cols).to_pandas())
        if bad:
            failures.append(
                {
                    "expectation": "mirrored twins (each pair's other response ranks the same prompts reversed)",
                    "unexpected_count": len(bad),
                    "examples": bad[:EXAMPLES],
                }
            )
    if batches:
        metrics["decontamination"] = batches[-1].get("decontamination", "on")
    if condition:
        total = sum(condition.values())
        shares = {k: v / total for k, v in sorted(condition.items())}
        metrics["condition_share"] = shares
        if cfg.construction.condition_mix not in (0.0, 1.0) and (
            len(shares) < 2 or min(shares.values()) < cfg.contracts.min_condition_share
        ):
            failures.append(
                {
                    "expectation": f"each condition's share >= {cfg.contracts.min_condition_share}",
                    "unexpected_count": 1,
                    "examples": [shares],
                }
            )
    if sources:  # how many instructions got their arguments from the model's proposals
        metrics["arguments_from_model"] = sources["model"]
        metrics["arguments_from_model_share"] = sources["model"] / sum(sources.values())
    if offset and kind in ("original", "inter"):
        metrics["mean_chars_chosen"] = length[0] / offset
        metrics["mean_chars_rejected"] = length[1] / offset
        metrics["length_bias_chosen_over_rejected"] = length[0] / max(length[1], 1)
    if kind in ("original", "intra", "inter") and staged.rows < cfg.contracts.min_rows:
        failures.append(
            {
                "expectation": f"at least {cfg.contracts.min_rows} rows",
                "unexpected_count": 1,
                "examples": [staged.rows],
            }
        )
    if offset != staged.rows:
        failures.append(
            {
                "expectation": "every row validated",
                "unexpected_count": abs(staged.rows - offset),
                "examples": [offset, staged.rows],
            }
        )

    success = not failures
    table = f"{cfg.name}_{kind}"
    summary = _summary(table, success, failures, metrics)
    report_dir.mkdir(parents=True, exist_ok=True)
    report_json, report_md = report_dir / f"{table}.json", report_dir / f"{table}.md"
    report = {
        "table": table,
        "success": success,
        "metrics": metrics,
        "expectations": per_exp,
        "failures": failures,
    }
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
