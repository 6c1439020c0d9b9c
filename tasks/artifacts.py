"""What a run shows in the Prefect UI: table artifacts (versions read and written, contract results,
training and evaluation metrics) and links to the tables and model folders. Keys are stable per pipeline
name, so the UI's Artifacts page keeps each one's history across runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from mapl_core.evaluation.stats import difference_interval, points, wilson
from mapl_core.storage.delta_tables import TableRef


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def table_uri(root: str | Path, name: str) -> str:
    return f"file://{Path(root).resolve() / 'tables' / name}"


def publish_tables(
    pipeline: str, stage: str, record: dict[str, Any], root: str, read: list[str] = ()
) -> None:
    rows = [
        {"table": str(TableRef.parse(r)), "direction": "read", "rows": None, "contracts": None} for r in read
    ]
    for name, version in record.get("tables", {}).items():
        contract = (record.get("contracts") or {}).get(name) or {}
        rows.append({"table": str(TableRef(name, version)), "direction": "written", "rows": record["rows"].get(name),
                     "contracts": "passed" if contract.get("success") else ("—" if not contract else "FAILED")})  # fmt: skip
    note = (
        " (reused: these versions already existed for this input and config)" if record.get("reused") else ""
    )
    create_table_artifact(key=artifact_key(pipeline, stage, "tables"), table=rows,
                          description=f"**{stage}**: dataset versions read and written{note}")  # fmt: skip
    for name in record.get("tables", {}):
        create_link_artifact(table_uri(root, name), link_text=str(TableRef(name, record["tables"][name])),
                             key=artifact_key(pipeline, name))  # fmt: skip


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats rounded to `digits` places, inside lists and dicts too: what an artifact shows a reader."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def contract_rows(gate: dict[str, Any]) -> list[dict[str, Any]]:
    """The data-contracts artifact's rows: each table version, its rows, its result and its scalar metrics."""
    rows = []
    for t in gate["tables"]:
        m = rounded(t.get("metrics") or {})
        extra = {k: v for k, v in m.items() if isinstance(v, int | float | str) and k != "rows"}
        rows.append({"table": t["table"], "rows": t["rows"], "contracts": "passed" if t["contracts"] else "FAILED",
                     "metrics": ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))})  # fmt: skip
    return rows


def publish_contracts(pipeline: str, gate: dict[str, Any]) -> None:
    rows = contract_rows(gate)
    create_table_artifact(key=artifact_key(pipeline, "data-contracts"), table=rows,
                          description="Data contracts (great-expectations) of every table version trained on")  # fmt: skip


def publish_training(pipeline: str, role: str, record: dict[str, Any]) -> None:
    rows = [{"level": lv, **rounded(m)} for lv, m in record["metrics"].items()]
    versions = ", ".join(f"{k}@{v}" for k, v in record["data_versions"].items())
    create_table_artifact(key=artifact_key(pipeline, role, "metrics"), table=rows or [{"level": "—"}],
                          description=f"**{role}** ({record['name']}, {record['steps']} steps) held-out "
                                      f"per-level metrics; data {versions}")  # fmt: skip
    create_link_artifact(f"file://{record['model_dir']}", link_text=f"{record['name']} model folder",
                         key=artifact_key(pipeline, role, "model"))  # fmt: skip


def publish_comparison(pipeline: str, rows: list[dict[str, Any]], markdown: str) -> None:
    create_table_artifact(key=artifact_key(pipeline, "baseline-vs-mapl"), table=display_rows(rows),
                          description="Benchmark evaluation: baseline vs MAPL")  # fmt: skip
    create_markdown_artifact(markdown, key=artifact_key(pipeline, "summary"), description="Run summary")


def publish_rm_benchmark(pipeline: str, record: dict[str, Any]) -> None:
    from mapl_core.evaluation.rm_benchmark import record_table

    lines = record_table(record)
    rows = [dict(zip(lines[0], cells, strict=True)) for cells in lines[1:]]
    create_table_artifact(key=artifact_key(pipeline, "reward-models-on-ifeval-pairs"), table=rows,
                          description=f"Reward-model accuracy on {record['table']} (IFEval-phrased pairs), "
                                      "95% intervals resampling prompts")  # fmt: skip


LEVELS = ("original", "intra", "inter", "inter_decided", "inter_margin")
BENCH_GROUPS = ("all pairs", "follows all ≻ breaks some", "one instruction differs", "chosen shorter",
                "chosen longer")  # fmt: skip


def bench_rows(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows of the baseline-vs-MAPL table from the reward-model benchmark record (its intervals resample
    prompts, so they are the record's own, not Wilson's)."""
    rows = []
    for r in (record or {}).get("rows", []):
        if r["group"] not in BENCH_GROUPS or "mapl" not in r:
            continue
        row: dict[str, Any] = {"model": "reward model", "metric": f"IFEval pairs: {r['group']}", "n": r["pairs"],
                               "base model": None, "base model ci95": None,
                               "mapl": rounded(r["mapl"]["accuracy"]),
                               "mapl ci95": [rounded(r["mapl"]["low"]), rounded(r["mapl"]["high"])]}  # fmt: skip
        base, diff = r.get("baseline"), r.get("mapl − baseline")
        row["baseline"] = None if base is None else rounded(base["accuracy"])
        row["baseline ci95"] = None if base is None else [rounded(base["low"]), rounded(base["high"])]
        if diff is not None:
            row["delta"] = rounded(diff["difference"])
            row["delta ci95"] = [rounded(diff["low"]), rounded(diff["high"])]
            row["reads"] = _reads(diff["low"], diff["high"])
        rows.append(row)
    return rows


def _reads(low: float, high: float) -> str:
    return "MAPL higher" if low > 0 else "MAPL lower" if high < 0 else "no difference shown at this n"


def _row(
    model: str, metric: str, n: int, base: float | None, mapl: float | None, untrained: float | None = None
):
    """One row of the baseline-vs-MAPL table: the accuracies, their 95% intervals, and the difference's."""
    row: dict[str, Any] = {"model": model, "metric": metric, "n": n, "base model": rounded(untrained),
                           "baseline": rounded(base), "mapl": rounded(mapl), "delta": None if base is None else rounded(mapl - base)}  # fmt: skip
    for key, value in (("base model", untrained), ("baseline", base), ("mapl", mapl)):
        row[f"{key} ci95"] = None if value is None else [rounded(v) for v in wilson(value * n, n)]
    if base is not None:
        low, high = difference_interval(base, n, mapl, n)
        row["delta ci95"] = [rounded(low), rounded(high)]
        row["reads"] = _reads(low, high)
    return row


def comparison(
    trained: dict[str, dict], evals: dict[str, dict], rm_bench: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Rows of the baseline-vs-MAPL table: held-out per-level accuracy, reward-model accuracy on the
    IFEval-phrased pairs and IFEval accuracy, each with its n and 95% intervals (Wilson for an accuracy,
    Newcombe for the difference, prompt-resampling for the pairs), so a reader sees what n can tell."""
    rows = []
    for kind in ("rm", "policy"):
        base, mapl = trained.get(f"{kind}_baseline"), trained.get(kind)
        if mapl is None:
            continue
        for lv in LEVELS:
            m = mapl["metrics"].get(lv)
            if m is None:
                continue
            b = (base or {}).get("metrics", {}).get(lv, {}).get("accuracy")
            model = "reward model" if kind == "rm" else "policy (implicit reward)"
            rows.append(_row(model, f"held-out {lv} accuracy", int(m["rows"]), b, m["accuracy"]))
        if kind == "rm":
            rows += bench_rows(rm_bench)
    if "mapl" in evals:
        for metric, unit in (("prompt_level_strict", "prompts"), ("prompt_level_loose", "prompts"),
                             ("inst_level_strict", "instructions")):  # fmt: skip
            n = int(evals["mapl"].get(unit) or evals["mapl"]["prompts"])
            rows.append(_row("policy", f"IFEval {metric}", n, evals.get("baseline", {}).get(metric),
                             evals["mapl"][metric], evals.get("base", {}).get(metric)))  # fmt: skip
    return rows


def display_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The table as a reader sees it (terminal, Markdown, Prefect artifact): points with their intervals."""

    def cell(row: dict, key: str) -> str:
        value, ci = row.get(key), row.get(f"{key} ci95")
        return "—" if value is None or ci is None else points(value, *ci)

    out = []
    for r in rows:
        delta = "—" if r.get("delta ci95") is None else points(r["delta"], *r["delta ci95"], signed=True)
        out.append({"model": r["model"], "metric": r["metric"], "n": str(r["n"]), "base model": cell(r, "base model"),
                    "baseline": cell(r, "baseline"), "MAPL": cell(r, "mapl"), "Δ (points)": delta,
                    "reads": r.get("reads", "—")})  # fmt: skip
    return out


def summary_markdown(pipeline: str, tables: dict[str, int], trained: dict, rows: list[dict]) -> str:
    """The run summary as Markdown: dataset versions, model folders, the baseline-vs-MAPL table."""
    lines = [f"# mapl pipeline `{pipeline}`", "", "## Dataset versions", ""]
    lines += [f"- `{n}@{v}`" for n, v in sorted(tables.items())]
    lines += ["", "## Models", ""] + [f"- {role}: `{r['model_dir']}`" for role, r in trained.items()]
    shown = display_rows(rows)
    lines += ["", "## Baseline vs MAPL", "", "Accuracy in %, with 95% intervals; n rows or prompts each.", ""]
    if shown:
        lines += ["| " + " | ".join(shown[0]) + " |", "|---|---|" + "---:|" * (len(shown[0]) - 3) + "---|"]
        lines += ["| " + " | ".join(r.values()) + " |" for r in shown]
    return "\n".join(lines) + "\n"
