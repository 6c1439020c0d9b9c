"""Writing responses for a prompt file (IFEval format or plain prompts), resumable through the cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
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


def sample_params(params: SamplingConfig, sample: int) -> SamplingConfig:
    """Sample `sample` of several per prompt: the same settings with its own seed (`seed + sample`)."""
    return replace(params, seed=params.seed + sample)


def generate_responses(
    prompts: list[dict],
    generator: Generator,
    params: SamplingConfig,
    cache: GenerationCache,
    out: Path,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    samples: int = 1,
) -> GenerationReport:
    """Generate what the cache lacks, batch by batch (each batch cached as soon as it is done), then write
    `out` (JSONL: key, prompt, response) atomically. `samples` > 1: that many responses per prompt, each
    with its own seed (`sample_params`), rows in prompt order with a `sample` field."""
    jobs = [(p, s, sample_params(params, s)) for p in prompts for s in range(samples)]
    keys = [
        cache_key(
            generator.revision, generator.engine, [{"role": "user", "content": p["prompt"]}], sp.as_key()
        )
        for p, _, sp in jobs
    ]
    todo = [i for i, k in enumerate(keys) if cache.get(k) is None]
    # one sample at a time: vLLM takes one seed per request, and a batch of one sample pads evenly
    for s in range(samples):
        mine = [i for i in todo if jobs[i][1] == s]
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            texts = generator.generate(
                [[{"role": "user", "content": jobs[i][0]["prompt"]}] for i in chunk], jobs[chunk[0]][2]
            )
            cache.put_many([(keys[i], t) for i, t in zip(chunk, texts, strict=True)])
            if progress:
                progress(len(chunk))
    with atomic_output(out) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for (p, s, _), k in zip(jobs, keys, strict=True):
            row = {**p, "sample": s} if samples > 1 else dict(p)
            fh.write(json.dumps({**row, "response": cache.get(k)}, ensure_ascii=False) + "\n")
    return GenerationReport(len(jobs), len(todo), len(jobs) - len(todo))
