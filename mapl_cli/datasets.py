"""`mapl build` and `mapl datasets …`: building, listing, inspecting and pulling table versions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mapl_core.paths import data_root, shared_data_dir

console = Console()
err = Console(stderr=True, soft_wrap=True)
datasets_app = typer.Typer(help="List, inspect and pull dataset table versions.", no_args_is_help=True)


def _store(root: Path | None):
    from mapl_core.storage.delta_tables import DatasetStore

    return DatasetStore(root or data_root())


def build_command(
    config: Annotated[Path | None, typer.Option(help="Build recipe YAML (see configs/).")] = None,
    source: Annotated[
        str | None, typer.Option(help="Preference data: file path or hub id (overrides the recipe).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Table name prefix (overrides the recipe).")] = None,
    limit: Annotated[int | None, typer.Option(help="Read at most this many source rows.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (overrides the recipe).")] = None,
    workers: Annotated[int, typer.Option(help="Construction processes.")] = 1,
    propose_with: Annotated[
        str | None,
        typer.Option(
            help="A model that proposes candidate words and end phrases ('default', a folder or hub id); "
            "overrides the recipe's proposals.model."
        ),
    ] = None,
    data_root_opt: Annotated[
        Path | None, typer.Option("--data-root", help="Where tables live (default ./.mapl).")
    ] = None,
) -> None:
    """Ingest → intra + inter construction → data contracts → one atomic commit per table."""
    cfg = _build_recipe(config, source, name, limit, seed, propose_with)
    store = _store(data_root_opt)
    outcome = _run_build(cfg, store, workers)
    _print_build(cfg, store, outcome)


def _build_recipe(config, source, name, limit, seed, propose_with):
    """The recipe (or the defaults) with the flags applied; an invalid one exits 2 with the reason."""
    from mapl_core.config import BuildConfig

    raw: dict = {}
    if config is not None:
        import yaml

        raw = yaml.safe_load(config.read_text()) or {}
    default_hh = shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz" if shared_data_dir() else None
    for key, value in (("source", source), ("name", name), ("seed", seed)):
        if value is not None:
            raw[key] = value
    raw.setdefault("source", str(default_hh) if default_hh else None)
    if limit is not None:
        raw.setdefault("ingest", {})["limit"] = limit
    if propose_with is not None:
        raw["proposals"] = {**(raw.get("proposals") or {}), "model": propose_with}
    try:
        return BuildConfig.model_validate(raw)
    except Exception as exc:
        err.print(f"[bold red]error:[/] invalid build config: {exc}")
        raise typer.Exit(2) from None


def _run_build(cfg, store, workers: int):
    """The build with a progress bar; a failure the user can act on exits 2 with its message."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from data_contracts import CONTRACTS
    from mapl_core.build import ContractFailed, IngestFailed, build
    from mapl_core.data.readers import SourceError
    from mapl_core.generation.default_model import DefaultModelMissing
    from mapl_core.generation.server import ServerError, ServerUnavailable

    columns = (
        TextColumn("building"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pairs"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("build", total=cfg.ingest.limit)
        try:
            return build(
                cfg, store, contracts=CONTRACTS, workers=workers, progress=lambda n: bar.advance(task, n)
            )
        except (IngestFailed, SourceError, DefaultModelMissing, ServerError, ServerUnavailable) as exc:
            err.print(f"[bold red]build failed:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except ContractFailed as exc:
            err.print(f"[bold red]data contract failed; nothing was committed.[/]\n{exc}", highlight=False)
            for p in exc.reports:
                err.print(f"  report: {p}")
            raise typer.Exit(2) from None


def _print_build(cfg, store, outcome) -> None:
    r = outcome.ingest
    table = Table(
        title=f"build {cfg.name} ({r.pairs} pairs, {r.quarantined} quarantined, {outcome.seconds:.1f} s)"
    )
    for col in ("table", "version", "rows", "contract"):
        table.add_column(col)
    for kind, v in outcome.versions.items():
        c = outcome.contracts.get(kind)
        table.add_row(v.name, str(v.version), str(v.rows), "passed" if c and c.success else "-")
    console.print(table)
    intra = outcome.contracts.get("intra")
    if cfg.proposals is not None and intra is not None:
        inter = outcome.contracts["inter"]
        console.print(
            f"model-proposed arguments ({cfg.proposals.model}): "
            f"{intra.metrics.get('arguments_from_model', 0)} instructions in intra, "
            f"{inter.metrics.get('arguments_from_model', 0)} in inter"
        )
    console.print(
        f"tables under {store.root}/tables; pull one with: mapl datasets pull {cfg.name}_intra --to out.parquet"
    )


@datasets_app.command("list")
def list_command(data_root_opt: Annotated[Path | None, typer.Option("--data-root")] = None) -> None:
    """Every table with its latest version."""
    store = _store(data_root_opt)
    table = Table(title=f"tables under {store.root}")
    for col in ("name", "latest", "rows", "written", "config"):
        table.add_column(col)
    for name in store.names():
        v = store.versions(name)[-1]
        when = dt.datetime.fromtimestamp(v.timestamp_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(name, str(v.version), str(v.rows), when, v.metadata.get("config_hash", "-"))
    console.print(table)


@datasets_app.command("show")
def show_command(ref: str, data_root_opt: Annotated[Path | None, typer.Option("--data-root")] = None) -> None:
    """Versions of NAME (or one version, NAME@V) with their lineage metadata and schema."""
    from mapl_core.storage.delta_tables import TableNotFound, parse_ref

    store = _store(data_root_opt)
    name, version = parse_ref(ref)
    try:
        versions = store.versions(name)
    except TableNotFound as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    for v in versions:
        if version is not None and v.version != version:
            continue
        meta = {
            k: v.metadata[k]
            for k in ("rows", "fingerprint", "config_hash", "code_version", "seed", "inputs", "contract")
            if k in v.metadata
        }
        console.print(f"[bold]{name}@{v.version}[/]", json.dumps(meta, indent=2))
    console.print(str(store.read(name, version).schema))


@datasets_app.command("pull")
def pull_command(
    ref: str,
    to: Annotated[Path, typer.Option(help="Output file: .parquet or .jsonl")],
    view: Annotated[
        str | None,
        typer.Option(help="trl or two_sided: a trainer-ready view of a build (REF is the build name)."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Keep only this split: train, validation or test (the held-out set).")
    ] = None,
    data_root_opt: Annotated[Path | None, typer.Option("--data-root")] = None,
) -> None:
    """Write NAME[@VERSION] (default: latest) to a Parquet or JSONL file."""
    import pyarrow.parquet as pq

    from mapl_core.data.views import VIEWS, trl_view, two_sided_view
    from mapl_core.files import atomic_output
    from mapl_core.storage.delta_tables import TableNotFound, parse_ref

    store = _store(data_root_opt)
    name, version = parse_ref(ref)
    try:
        if view is None:
            table = store.read(name, version)
        elif view in VIEWS:
            latest = {k: store.read(f"{name}_{k}") for k in ("original", "intra", "inter")}
            table = (
                trl_view(latest["original"], latest["inter"])
                if view == "trl"
                else two_sided_view(latest["original"], latest["intra"], latest["inter"])
            )
        else:
            err.print(f"error: unknown view {view!r}; use one of {VIEWS}")
            raise typer.Exit(2)
    except TableNotFound as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    if split is not None:
        if "split" not in table.column_names:
            err.print(f"error: {ref} has no split column")
            raise typer.Exit(2)
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table["split"], split))
    if to.suffix not in (".parquet", ".jsonl"):
        err.print(f"error: {to}: use a .parquet or .jsonl file name")
        raise typer.Exit(2)
    with atomic_output(to) as tmp:
        if to.suffix == ".parquet":
            pq.write_table(table, tmp)
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                for row in table.to_pylist():
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    console.print(f"wrote {table.num_rows} rows of {ref}{f' ({view})' if view else ''} to {to}")
