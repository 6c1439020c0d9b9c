"""`mapl rm-bench …`: the reward-model benchmark on IFEval's own phrasing — build its table, score models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mapl_core.paths import data_root

console = Console()
err = Console(stderr=True, soft_wrap=True)
rm_bench_app = typer.Typer(
    help="Reward models on IFEval's own prompts: pairs of sampled responses ranked by IFEval's checkers.",
    no_args_is_help=True,
)
DataRoot = Annotated[Path | None, typer.Option("--data-root", help="Where tables live (default ./.mapl).")]


def _store(root: Path | None):
    from mapl_core.storage.delta_tables import DatasetStore

    return DatasetStore(root or data_root())


@rm_bench_app.command("build")
def build_command(
    config: Annotated[
        Path | None, typer.Option(help="Benchmark recipe YAML (configs/rm_bench_ifeval.yaml).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N prompts.")] = None,
    samples: Annotated[int | None, typer.Option(help="Responses per prompt.")] = None,
    model: Annotated[
        str | None, typer.Option(help="The sampling model: 'default', a folder or hub id.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The table's name.")] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Build a new version even if one exists.")
    ] = False,
    data_root_opt: DataRoot = None,
) -> None:
    """Sample responses to every prompt, label them with the checkers, pair them, check and commit the table."""
    from pydantic import ValidationError

    from data_contracts.ifeval_pairs import validate_pairs
    from mapl_core.build import ContractFailed
    from mapl_core.evaluation.ifeval_files import InputError
    from mapl_core.evaluation.ifeval_pairs import IfevalPairsConfig
    from mapl_core.evaluation.rm_benchmark import build_benchmark

    overrides = {"limit": limit, "samples": samples, "model": model, "name": name}
    try:
        cfg = (IfevalPairsConfig.from_yaml(config, **overrides) if config else
               IfevalPairsConfig.model_validate({k: v for k, v in overrides.items() if v is not None}))  # fmt: skip
    except (ValidationError, OSError) as exc:
        err.print(f"error: {config or 'the options'}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    limit = f"the first {cfg.limit}" if cfg.limit else "every"
    console.print(f"{cfg.name}: {cfg.samples} responses to {limit} prompt of {cfg.prompts} from {cfg.model} "
                  f"(up to {cfg.max_new_tokens} tokens); each batch is cached when done, so a stopped build "
                  "resumes")  # fmt: skip
    try:
        outcome = build_benchmark(cfg, _store(data_root_opt), validate_pairs, refresh=refresh)
    except (InputError, FileNotFoundError, ContractFailed) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    s = outcome.stats
    what = "reused" if outcome.reused else f"built in {outcome.seconds:.0f} s"
    console.print(f"{cfg.name}@{outcome.version.version}: {s['pairs']} pairs ({what}); contract passed")
    console.print(
        f"{s['prompts']} prompts × {cfg.samples} samples: {s['responses_following_all']} of {s['responses']} "
        f"responses follow every instruction; {s['prompts_with_pair']} prompts "
        f"({100 * s['prompts_with_pair_share']:.1f}%) yield a pair; {s['pairs_follows_all']} pairs follow-all ≻ "
        f"breaks, {s['pairs_one_instruction']} differ in one instruction"
    )


def _families(recipe: Path) -> set[str]:
    import yaml

    raw = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    families = (raw.get("construction") or {}).get("families")
    if not families:
        raise typer.BadParameter(f"{recipe} names no construction.families")
    return set(families)


@rm_bench_app.command("score")
def score_command(
    models: Annotated[list[str], typer.Argument(help="Reward-model folders, as NAME=FOLDER or FOLDER.")],
    table: Annotated[
        str, typer.Option(help="Table (NAME or NAME@VERSION; default its latest version).")
    ] = "ifeval_pairs",
    reference: Annotated[
        str | None, typer.Option(help="Compare the others with this model (its NAME).")
    ] = None,
    subset_families: Annotated[
        list[Path] | None,
        typer.Option(help="A build recipe: also report the pairs decided only by its families (repeatable)."),
    ] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per sequence (default: as trained).")] = None,
    truncation: Annotated[str | None, typer.Option(help="half | instructions (default: as trained).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the record (JSON) here.")] = None,
    data_root_opt: DataRoot = None,
) -> None:
    """Accuracy (margin > 0) of reward models on the benchmark, overall and by group, with 95% intervals."""
    from mapl_core.evaluation.rm_benchmark import record_table, score_benchmark
    from mapl_core.files import atomic_output
    from mapl_core.storage.delta_tables import TableNotFound

    named = dict(_named(m) for m in models)
    for n, folder in named.items():
        if not Path(folder).is_dir():
            err.print(f"error: {n}: {folder} is not a folder")
            raise typer.Exit(2)
    if reference is not None and reference not in named:
        err.print(f"error: --reference {reference!r} is none of {', '.join(named)}")
        raise typer.Exit(2)
    subsets = {f"decided by {p.stem} families": _families(p) for p in subset_families or []}
    try:
        record = score_benchmark(
            _store(data_root_opt), table, named, reference, subsets, max_length, truncation
        )
    except (TableNotFound, ValueError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    lines = record_table(record)
    view = Table(title=f"Reward-model accuracy on {record['table']} (95% intervals, prompts resampled)")
    for i, col in enumerate(lines[0]):
        view.add_column(col, justify="left" if i == 0 else "right")
    for cells in lines[1:]:
        view.add_row(*cells)
    console.print(view)
    if out is not None:
        with atomic_output(out) as tmp:
            tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        console.print(f"wrote {out}")


def _named(spec: str) -> tuple[str, str]:
    name, sep, folder = spec.partition("=")
    return (name, folder) if sep else (Path(spec).name or spec, spec)
