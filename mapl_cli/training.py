"""`mapl train rm` and `mapl train dpo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mapl_core.paths import data_root

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
train_app = typer.Typer(
    help="Train a reward model or a DPO policy with the MAPL objectives.", no_args_is_help=True
)

SeedOption = Annotated[int | None, typer.Option(help="Overrides the recipe's seed.")]
BaselineFlag = Annotated[
    bool,
    typer.Option(
        "--baseline",
        help="The recipe's baseline arm: original pairs only (λ_intra = λ_inter = 0), same steps and "
        "settings; saved as <name>-baseline unless --name is given.",
    ),
]


def _run(kind: str, config: Path | None, overrides: dict, baseline: bool = False) -> None:
    from pydantic import ValidationError

    from mapl_core.generation.default_model import DefaultModelMissing
    from mapl_core.storage.delta_tables import DatasetStore, TableNotFound
    from mapl_core.training.config import TrainConfig
    from mapl_core.training.run import TrainingDataRejected, train

    try:
        if config is not None:
            cfg = TrainConfig.from_yaml(config, kind=kind, **overrides)
        else:
            cfg = TrainConfig.model_validate(
                {"kind": kind, **{k: v for k, v in overrides.items() if v is not None}}
            )
        if baseline:
            cfg = cfg.baseline(overrides.get("name"))
    except (OSError, ValidationError) as exc:
        err.print(f"[bold red]error:[/] invalid training config: {exc}")
        raise typer.Exit(2) from None
    try:
        outcome = train(cfg, DatasetStore(data_root()))
    except (TrainingDataRejected, TableNotFound, DefaultModelMissing) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    table = Table(title=f"{cfg.kind} {cfg.name}: {outcome.steps} steps, {outcome.train_seconds:.0f} s "
                        f"(held-out {cfg.eval_split} split)")  # fmt: skip
    for col in ("level", "loss", "accuracy", "comparisons"):
        table.add_column(col)
    for level, m in outcome.metrics.items():
        table.add_row(level, f"{m['loss']:.4f}", f"{m['accuracy']:.3f}", str(m["rows"]))
    console.print(table)
    trunc = outcome.encoding["train"]
    console.print(
        f"truncated (kept, never dropped): {trunc['truncated']} of {trunc['sequences']} training sequences "
        f"(max length {outcome.encoding['max_length']}, rule {outcome.encoding['truncation']})"
    )
    if outcome.ref_cache_hit is not None:
        console.print(
            f"reference log-probs: {'reused from the cache' if outcome.ref_cache_hit else 'computed and stored'}"
        )
    console.print(f"model: {outcome.model_dir} (model card README.md, metrics.json, training_curves.png)")


@train_app.command("rm")
def rm_command(
    config: Annotated[Path | None, typer.Option(help="Training recipe YAML (see configs/).")] = None,
    data: Annotated[str | None, typer.Option(help="Build name whose tables to train on.")] = None,
    model: Annotated[
        str | None, typer.Option(help="'default' (MiniLM), 'smollm2', a folder or hub id.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    seed: SeedOption = None,
    name: Annotated[str | None, typer.Option(help="Output folder name under <data root>/models.")] = None,
    baseline: BaselineFlag = False,
) -> None:
    """A reward model with the MAPL objective (original + intra + inter comparisons)."""
    _run(
        "rm",
        config,
        {"data": data, "model": model, "max_steps": max_steps, "seed": seed, "name": name},
        baseline,
    )


@train_app.command("dpo")
def dpo_command(
    config: Annotated[Path | None, typer.Option(help="Training recipe YAML (see configs/).")] = None,
    data: Annotated[str | None, typer.Option(help="Build name whose tables to train on.")] = None,
    model: Annotated[
        str | None, typer.Option(help="'default' (SmolLM2-135M-Instruct), a folder or hub id.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    seed: SeedOption = None,
    name: Annotated[str | None, typer.Option(help="Output folder name under <data root>/models.")] = None,
    baseline: BaselineFlag = False,
) -> None:
    """A DPO policy with the MAPL objective; reference log-probs are computed once and reused."""
    _run(
        "dpo",
        config,
        {"data": data, "model": model, "max_steps": max_steps, "seed": seed, "name": name},
        baseline,
    )
