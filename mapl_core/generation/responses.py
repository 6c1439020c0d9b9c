"""Writing responses for a prompt file (IFEval format or plain prompts), resumable through the cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mapl_core.files import atomic_output
from mapl_core.generation.cache import GenerationCache, cache_key
from mapl_core.generation.engines import Generator, SamplingConfig


@dataclass
class GenerationReport:
    prompts: int
    generated: int
    from_cache: int


def read_prompts(path: Path) -> list[dict]:
    """Rows with `prompt` (and `key` when present): IFEval JSONL, JSONL with a `prompt` field, or text lines."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = line.rstrip("\n")
            if isinstance(obj, str):
                rows.append({"prompt": obj})
            elif isinstance(obj, dict) and isinstance(obj.get("prompt"), str):
                rows.append({k: obj[k] for k in ("key", "prompt") if k in obj})
            else:
                raise ValueError(
                    f"{path}:{n}: expected a JSON object with a text 'prompt' field, or a line of text"
                )
    return rows


def generate_responses(
    prompts: list[dict],
    generator: Generator,
    params: SamplingConfig,
    cache: GenerationCache,
    out: Path,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> GenerationReport:
    """Generate what the cache lacks, batch by batch (each batch cached as soon as it is done), then write
    `out` (JSONL: key, prompt, response) atomically."""
    keys = [
        cache_key(
            generator.revision, generator.engine, [{"role": "user", "content": p["prompt"]}], params.as_key()
        )
        for p in prompts
    ]
    todo = [i for i, k in enumerate(keys) if cache.get(k) is None]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        texts = generator.generate(
            [[{"role": "user", "content": prompts[i]["prompt"]}] for i in chunk], params
        )
        cache.put_many([(keys[i], t) for i, t in zip(chunk, texts, strict=True)])
        if progress:
            progress(len(chunk))
    with atomic_output(out) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for p, k in zip(prompts, keys, strict=True):
            fh.write(json.dumps({**p, "response": cache.get(k)}, ensure_ascii=False) + "\n")
    return GenerationReport(len(prompts), len(todo), len(prompts) - len(todo))
