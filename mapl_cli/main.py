"""The `mapl` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mapl_core.paths import data_root, shared_data_dir

app = typer.Typer(
    name="mapl",
    help="MAPL: verifiable-instruction preference data, training and IFEval-style evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole: paths are copied and grepped


def _shared(rel: str) -> Path | None:
    root = shared_data_dir()
    return root / rel if root is not None and (root / rel).exists() else None


@app.command("evaluate-responses")
def evaluate_responses(
    prompts: Annotated[
        Path, typer.Option(help="IFEval-format prompts (JSONL: key, prompt, instruction_id_list, kwargs).")
    ],
    responses: Annotated[Path, typer.Option(help="Responses (JSONL: prompt, response; optional key).")],
    out: Annotated[Path | None, typer.Option(help="Folder for verdicts.jsonl and summary.json.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip bad lines and report each, instead of failing.")
    ] = False,
    per_instruction: Annotated[bool, typer.Option(help="Print the per-instruction-type table.")] = True,
) -> None:
    """Score responses with IFEval's four metrics (prompt/instruction level, strict/loose)."""
    from mapl_core.evaluation.ifeval_files import InputError
    from mapl_core.evaluation.ifeval_scoring import evaluate_files, write_evaluation

    try:
        evaluation = evaluate_files(prompts, responses, skip_invalid=skip_invalid)
    except InputError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        err.print("Fix the lines above, or pass --skip-invalid to score the rest and report them.")
        raise typer.Exit(2) from None
    s = evaluation.summary
    if evaluation.skipped:
        err.print(f"[yellow]skipped {len(evaluation.skipped)} problem(s):[/]")
        for issue in evaluation.skipped:
            err.print(f"  {issue}", highlight=False, markup=False)
    table = Table(title=f"IFEval metrics ({s.prompts} prompts, {s.instructions} instructions)")
    for col in ("metric", "strict", "loose"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    table.add_row(
        "prompt-level accuracy", f"{s.prompt_level_strict_acc:.4f}", f"{s.prompt_level_loose_acc:.4f}"
    )
    table.add_row(
        "instruction-level accuracy", f"{s.inst_level_strict_acc:.4f}", f"{s.inst_level_loose_acc:.4f}"
    )
    console.print(table)
    if per_instruction:
        t2 = Table(title="Per instruction type")
        for col in ("instruction", "n", "strict", "loose"):
            t2.add_column(col, justify="left" if col == "instruction" else "right")
        for iid, row in s.per_instruction.items():
            t2.add_row(iid, str(row["count"]), f"{row['strict_acc']:.3f}", f"{row['loose_acc']:.3f}")
        console.print(t2)
    if out is not None:
        verdicts_path, summary_path = write_evaluation(evaluation, out)
        console.print(f"wrote {verdicts_path} and {summary_path}")


@app.command("baseline-responses")
def baseline_responses(
    out: Annotated[Path, typer.Option(help="Where to write the responses JSONL.")] = Path(
        ".mapl/eval/hh_baseline.jsonl"
    ),
    prompts: Annotated[Path | None, typer.Option(help="IFEval prompts (default: the shared copy).")] = None,
    hh: Annotated[
        Path | None, typer.Option(help="HH-RLHF JSONL(.gz) (default: the shared harmless-base test split).")
    ] = None,
) -> None:
    """Write instruction-blind responses (real HH-RLHF assistant turns) for IFEval prompts: a floor baseline."""
    from mapl_core.evaluation.baseline_responses import build_baseline

    prompts = prompts or _shared("ifeval/input_data.jsonl")
    hh = hh or _shared("hh-rlhf/harmless-base-test.jsonl.gz")
    if prompts is None or hh is None:
        err.print("error: pass --prompts and --hh (the shared data folder was not found)")
        raise typer.Exit(2)
    n = build_baseline(prompts, hh, out)
    console.print(f"wrote {n} responses to {out}")


@app.command("instructions")
def instructions(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the instruction families (IFEval ids), their arguments and conflicts."""
    from mapl_core.instructions import CONFLICTS, REGISTRY

    rows = []
    for iid, fam in REGISTRY.items():
        args = {a.name: (a.kind if a.kind != "int" else f"int {a.lo}..{a.hi}") for a in fam.args}
        rows.append(
            {
                "id": iid,
                "args": args,
                "conflicts": sorted(CONFLICTS[iid] - {iid}),
                "example": fam.phrasings[0],
            }
        )
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} instruction families")
    table.add_column("id")
    table.add_column("arguments")
    table.add_column("conflicts with", justify="right")
    for r in rows:
        table.add_row(
            r["id"], ", ".join(f"{k}: {v}" for k, v in r["args"].items()) or "-", str(len(r["conflicts"]))
        )
    console.print(table)


from mapl_cli.datasets import build_command, datasets_app  # noqa: E402
from mapl_cli.generation import generate_command, models_app  # noqa: E402
from mapl_cli.orchestration import run_command, serve_command, stage_command, ui_command  # noqa: E402
from mapl_cli.rm_bench import rm_bench_app  # noqa: E402
from mapl_cli.training import train_app  # noqa: E402

app.command("build")(build_command)
app.add_typer(datasets_app, name="datasets")
app.command("generate")(generate_command)
app.add_typer(models_app, name="models")
app.add_typer(train_app, name="train")
app.add_typer(rm_bench_app, name="rm-bench")
app.command("run")(run_command)
app.command("stage")(stage_command)
app.command("serve")(serve_command)
app.command("ui")(ui_command)


@app.command("where")
def where() -> None:
    """Show the data root and the shared data folder mapl uses."""
    console.print(f"data root:   {data_root()}")
    console.print(f"shared data: {shared_data_dir()}")


if __name__ == "__main__":
    app()
