"""Running a table's contract on its staged file, batch by batch, and writing the validation report."""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from data_contracts.checks import ROW_CHECKS, benchmark_prompts
from data_contracts.suites import suite_for
from mapl_core.build import ContractResult
from mapl_core.config import BuildConfig
from mapl_core.storage.delta_tables import StagedTable

BATCH_ROWS = 20_000
UNIQUE_KEY = {"original": "pair_id", "intra": "row_id", "inter": "row_id"}
EXAMPLES = 5


@functools.cache
def _batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("mapl").add_dataframe_asset("staged")
    return asset.add_batch_definition_whole_dataframe("batch")


def validate(kind: str, staged: StagedTable, cfg: BuildConfig, report_dir: Path) -> ContractResult:
    """Validate one staged table; write `<report_dir>/<table>.json` and `.md`; return the result."""
    bench = benchmark_prompts(cfg.contracts.benchmark_prompts) if cfg.contracts.decontaminate else None
    per_exp: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    duplicates: list[Any] = []
    distribution: Counter = Counter()
    length = {"chosen": 0, "rejected": 0, "rows": 0}
    offset = 0
    bd = _batch_definition()
    for batch in pq.ParquetFile(staged.path).iter_batches(batch_size=BATCH_ROWS):
        df = batch.to_pandas()
        checks = ROW_CHECKS[kind](df, bench)
        for col in checks:
            df[col] = checks[col].to_numpy()
        suite = suite_for(kind, cfg, list(checks.columns))
        result = bd.get_batch(batch_parameters={"dataframe": df}).validate(
            suite, result_format={"result_format": "COMPLETE"}
        )
        for r in result.results:
            cfg_ = r.expectation_config
            key = f"{cfg_.type}({cfg_.kwargs.get('column', '')})"
            agg = per_exp.setdefault(key, {"success": True, "unexpected_count": 0, "examples": []})
            agg["success"] &= bool(r.success)
            agg["unexpected_count"] += int(r.result.get("unexpected_count") or 0)
            for idx in (r.result.get("unexpected_index_list") or [])[: EXAMPLES - len(agg["examples"])]:
                agg["examples"].append(_example(df, idx, offset))
        if kind in UNIQUE_KEY:
            for value in df[UNIQUE_KEY[kind]]:
                if value in seen and len(duplicates) < EXAMPLES:
                    duplicates.append(value)
                seen.add(value)
        if kind == "intra":
            distribution.update(int(c) for c in df["condition"])
        if kind in ("original", "inter"):
            length["chosen"] += int(df["chosen"].str.len().sum())
            length["rejected"] += int(df["rejected"].str.len().sum())
            length["rows"] += len(df)
        offset += len(df)

    failures = [{"expectation": k, **v} for k, v in per_exp.items() if not v["success"]]
    if kind in UNIQUE_KEY and duplicates:
        failures.append(
            {
                "expectation": f"unique({UNIQUE_KEY[kind]})",
                "unexpected_count": len(duplicates),
                "examples": duplicates,
            }
        )
    metrics: dict[str, Any] = {
        "rows": staged.rows,
        "decontamination": "on" if bench is not None else "skipped (no benchmark prompts)",
    }
    if distribution:
        total = sum(distribution.values())
        shares = {str(k): v / total for k, v in sorted(distribution.items())}
        metrics["condition_share"] = shares
        low = {k: s for k, s in shares.items() if s < cfg.contracts.min_condition_share}
        if cfg.construction.condition_mix not in (0.0, 1.0) and (low or len(shares) < 2):
            failures.append(
                {
                    "expectation": f"condition share >= {cfg.contracts.min_condition_share}",
                    "unexpected_count": 1,
                    "examples": [shares],
                }
            )
    if length["rows"]:
        metrics["mean_chars_chosen"] = length["chosen"] / length["rows"]
        metrics["mean_chars_rejected"] = length["rejected"] / length["rows"]
        metrics["length_bias_chosen_over_rejected"] = length["chosen"] / max(length["rejected"], 1)
    if kind in ("intra", "inter", "original") and staged.rows < cfg.contracts.min_rows:
        failures.append(
            {
                "expectation": f"at least {cfg.contracts.min_rows} rows",
                "unexpected_count": 1,
                "examples": [staged.rows],
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


def _example(df, idx: int, offset: int) -> dict[str, Any]:
    row = df.iloc[idx]
    keep = {k: row[k] for k in ("pair_id", "row_id", "source_row", "response_side") if k in row.index}
    failed = [c for c in row.index if c.startswith("check_") and not row[c]]
    return {"row": offset + int(idx), **{k: str(v) for k, v in keep.items()}, "failed_checks": failed}


def _summary(table: str, success: bool, failures: list[dict], metrics: dict[str, Any]) -> str:
    lines = [f"## Contract for `{table}`: {'PASSED' if success else 'FAILED'}", ""]
    for f in failures:
        lines.append(
            f"- **{f['expectation']}** failed on {f['unexpected_count']} row(s); examples: {json.dumps(f['examples'][:EXAMPLES], default=str)}"
        )
    lines += ["", "Metrics: " + json.dumps(metrics, default=str)]
    return "\n".join(lines)
