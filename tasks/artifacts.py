"""What a run shows in the Prefect UI: table artifacts (versions read and written, contract results,
training and evaluation metrics) and links to the tables and model folders. Keys are stable per pipeline
name, so the UI's Artifacts page keeps each one's history across runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def table_uri(root: str | Path, name: str) -> str:
    return f"file://{Path(root).resolve() / 'tables' / name}"


def publish_tables(
    pipeline: str, stage: str, record: dict[str, Any], root: str, read: list[str] = ()
) -> None:
    rows = [{"table": f"{name}@{v}", "direction": "read", "rows": None, "contracts": None} for name, v in
            (r.split("@") for r in read)]  # fmt: skip
    for name, version in record.get("tables", {}).items():
        contract = (record.get("contracts") or {}).get(name) or {}
        rows.append({"table": f"{name}@{version}", "direction": "written", "rows": record["rows"].get(name),
                     "contracts": "passed" if contract.get("success") else ("—" if not contract else "FAILED")})  # fmt: skip
    note = (
        " (reused: these versions already existed for this input and config)" if record.get("reused") else ""
    )
    create_table_artifact(key=artifact_key(pipeline, stage, "tables"), table=rows,
                          description=f"**{stage}**: dataset versions read and written{note}")  # fmt: skip
    for name in record.get("tables", {}):
        create_link_artifact(table_uri(root, name), link_text=f"{name}@{record['tables'][name]}",
                             key=artifact_key(pipeline, name))  # fmt: skip


def publish_contracts(pipeline: str, gate: dict[str, Any]) -> None:
    rows = []
    for t in gate["tables"]:
        m = t.get("metrics") or {}
        extra = {k: v for k, v in m.items() if isinstance(v, int | float | str) and k != "rows"}
        rows.append({"table": t["table"], "rows": t["rows"], "contracts": "passed" if t["contracts"] else "FAILED",
                     "metrics": ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))})  # fmt: skip
    create_table_artifact(key=artifact_key(pipeline, "data-contracts"), table=rows,
                          description="Data contracts (great-expectations) of every table version trained on")  # fmt: skip


def publish_training(pipeline: str, role: str, record: dict[str, Any]) -> None:
    rows = [{"level": lv, **{k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}}
            for lv, m in record["metrics"].items()]  # fmt: skip
    versions = ", ".join(f"{k}@{v}" for k, v in record["data_versions"].items())
    create_table_artifact(key=artifact_key(pipeline, role, "metrics"), table=rows or [{"level": "—"}],
                          description=f"**{role}** ({record['name']}, {record['steps']} steps) held-out "
                                      f"per-level metrics; data {versions}")  # fmt: skip
    create_link_artifact(f"file://{record['model_dir']}", link_text=f"{record['name']} model folder",
                         key=artifact_key(pipeline, role, "model"))  # fmt: skip


def publish_comparison(pipeline: str, rows: list[dict[str, Any]], markdown: str) -> None:
    create_table_artifact(key=artifact_key(pipeline, "baseline-vs-mapl"), table=rows,
                          description="Benchmark evaluation: baseline vs MAPL")  # fmt: skip
    create_markdown_artifact(markdown, key=artifact_key(pipeline, "summary"), description="Run summary")
