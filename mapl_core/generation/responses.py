"""Writing responses for a prompt file (IFEval format or plain prompts), resumable through the cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mapl_core.files import atomic_output
from mapl_core.generation.cache import GenerationCache, cache_key
from mapl_core.generation.engines import Generator, SamplingConfig
from mapl_core.generation.protocol import PromptRefused


@dataclass
class GenerationReport:
    prompts: int
    generated: int
    from_cache: int
    failed: int = 0  # prompts the engine refused (too long for the model): an empty response and an `error`


def _generate(generator: Generator, batch: list, params: SamplingConfig) -> list[str | PromptRefused]:
    """Texts for `batch`; a prompt the engine refuses (vLLM: longer than the model's context) is its error.

    Why: one overlong prompt fails the engine's whole batch, and it would fail it again on every resume. The
    batch is halved until the refused prompts stand alone; the rest are generated (and cached) as usual."""
    try:
        return list(generator.generate(batch, params))
    except PromptRefused as exc:
        if len(batch) == 1:
            return [exc]
        mid = len(batch) // 2
        return _generate(generator, batch[:mid], params) + _generate(generator, batch[mid:], params)


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
    errors: dict[str, str] = {}  # refused prompts are not cached: a larger context may take them later
    # one sample at a time: vLLM takes one seed per request, and a batch of one sample pads evenly
    for s in range(samples):
        mine = [i for i in todo if jobs[i][1] == s]
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            texts = _generate(
                generator,
                [[{"role": "user", "content": jobs[i][0]["prompt"]}] for i in chunk],
                jobs[chunk[0]][2],
            )
            errors.update(
                (keys[i], str(t)) for i, t in zip(chunk, texts, strict=True) if isinstance(t, PromptRefused)
            )
            cache.put_many([(keys[i], t) for i, t in zip(chunk, texts, strict=True) if isinstance(t, str)])
            if progress:
                progress(len(chunk))
    with atomic_output(out) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for (p, s, _), k in zip(jobs, keys, strict=True):
            row = {**p, "sample": s} if samples > 1 else dict(p)
            if k in errors:  # scored as an empty answer: it follows nothing
                row = {**row, "response": "", "error": errors[k]}
            else:
                row = {**row, "response": cache.get(k)}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    generated = len(todo) - sum(1 for i in todo if keys[i] in errors)
    return GenerationReport(len(jobs), generated, len(jobs) - len(todo), len(errors))
