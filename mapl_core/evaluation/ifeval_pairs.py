"""The IFEval-phrased reward-model benchmark: pairs of a policy's own responses to IFEval's prompts, ranked by
IFEval's checkers.

For every prompt, `samples` responses are sampled from a model (temperature > 0, one seed per sample, through
the generation cache), every response is labelled instruction by instruction (strict verdicts), and two
kinds of pairs are formed on the same prompt:
- a response that follows every instruction ≻ one that breaks at least one (`chosen_follows_all`);
- two responses whose verdicts differ in exactly one instruction, the one that follows it preferred
  (`one_instruction`).
A pair can be both. Identical and empty responses never pair. The rows go to a versioned table checked by
its contract (`data_contracts.ifeval_pairs`) before it is committed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field

from mapl_core.build import ContractFailed, ContractResult, source_fingerprint
from mapl_core.evaluation.ifeval_files import InputError, PromptItem, load_prompts, parse_prompt, prompts_path
from mapl_core.evaluation.ifeval_scoring import strict_verdicts
from mapl_core.generation.protocol import MAX_NEW_TOKENS
from mapl_core.names import Name
from mapl_core.storage.delta_tables import DatasetStore, StagedTable, VersionInfo


class IfevalPairsConfig(BaseModel):
    """How the benchmark table is made: which prompts, which model samples them, how many and how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field("ifeval_pairs", description="the table's name")
    prompts: str = Field("ifeval", description="'ifeval' (the shipped 541 prompts) or an IFEval-format file")
    limit: int | None = Field(None, ge=1, description="the first N prompts (None: all)")
    model: str = Field("default", description="the policy whose responses are ranked (default: SmolLM2-135M)")
    backend: Literal["auto", "vllm", "transformers"] = "auto"
    samples: int = Field(4, ge=2, le=64, description="responses per prompt")
    max_new_tokens: int = Field(384, ge=8, le=MAX_NEW_TOKENS)
    temperature: float = Field(1.0, gt=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    seed: int = 0
    batch_size: int = Field(64, ge=1)

    def sampling(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "seed": self.seed}  # fmt: skip

    def config_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> IfevalPairsConfig:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(raw)


SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("key", pa.int64()),
        ("prompt", pa.string()),
        ("instruction_id_list", pa.list_(pa.string())),
        (
            "kwargs",
            pa.string(),
        ),  # the prompt's kwargs as IFEval writes them (JSON), one object per instruction
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("chosen_sample", pa.int32()),
        ("rejected_sample", pa.int32()),
        ("follow_chosen", pa.list_(pa.bool_())),
        ("follow_rejected", pa.list_(pa.bool_())),
        ("chosen_follows_all", pa.bool_()),
        ("one_instruction", pa.bool_()),
        (
            "decided_by",
            pa.list_(pa.string()),
        ),  # instructions the chosen response follows and the other breaks
        ("broken_rejected", pa.int32()),
        ("chosen_chars", pa.int32()),
        ("rejected_chars", pa.int32()),
    ]
)


def pair_id(key: Any, chosen: str, rejected: str) -> str:
    payload = json.dumps([key, chosen, rejected], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@functools.lru_cache(maxsize=4096)
def _stored_item(ids: tuple[str, ...], kwargs_json: str, prompt: str) -> PromptItem:
    obj = {"key": 0, "prompt": prompt, "instruction_id_list": list(ids), "kwargs": json.loads(kwargs_json)}
    item, issues = parse_prompt("<table>", 0, obj)
    if item is None:
        raise ValueError("; ".join(str(i) for i in issues))
    return item


def stored_verdicts(ids: Iterable[str], kwargs_json: str, prompt: str, response: str) -> list[bool]:
    """Strict verdicts of `response` under a stored row's instructions (what the contract re-verifies; the
    instructions are parsed once per prompt, not once per response)."""
    return strict_verdicts(_stored_item(tuple(ids), kwargs_json, prompt), response)


def label(item: PromptItem, responses: list[str]) -> list[list[bool]]:
    """Every response's strict verdicts, in sample order."""
    return [strict_verdicts(item, text) for text in responses]


def form_pairs(
    item: PromptItem, responses: list[str], verdicts: list[list[bool]] | None = None
) -> list[dict[str, Any]]:
    """Every pair of distinct non-empty responses of one prompt that the checkers rank (module docstring),
    in sample order; `verdicts` are the responses' `label`s when already computed."""
    verdicts = verdicts if verdicts is not None else label(item, responses)
    first: dict[str, int] = {}
    for j, text in enumerate(responses):
        if text.strip():
            first.setdefault(text, j)
    labelled = [(j, text, verdicts[j]) for text, j in first.items()]
    kwargs = json.dumps(item.raw_kwargs, sort_keys=True, ensure_ascii=False)
    rows = []
    for ja, a, va in labelled:
        for jb, b, vb in labelled:
            decided = [iid for iid, x, y in zip(item.instruction_id_list, va, vb, strict=True) if x and not y]
            differing = sum(x != y for x, y in zip(va, vb, strict=True))
            follows_all = all(va) and not all(vb)
            one = differing == 1 and len(decided) == 1
            if not (follows_all or one):
                continue
            rows.append({
                "pair_id": pair_id(item.key, a, b), "key": int(item.key), "prompt": item.prompt,
                "instruction_id_list": list(item.instruction_id_list), "kwargs": kwargs,
                "chosen": a, "rejected": b, "chosen_sample": ja, "rejected_sample": jb,
                "follow_chosen": list(va), "follow_rejected": list(vb),
                "chosen_follows_all": follows_all, "one_instruction": one, "decided_by": decided,
                "broken_rejected": sum(not y for y in vb), "chosen_chars": len(a), "rejected_chars": len(b),
            })  # fmt: skip
    return rows


@dataclass
class PairsOutcome:
    """What a build of the table wrote (or found already written) and what it saw."""

    version: VersionInfo
    contract: dict[str, Any]
    stats: dict[str, Any]
    reused: bool = False
    seconds: float = 0.0
    generation: dict[str, Any] = field(default_factory=dict)


def pair_stats(
    items: list[PromptItem],
    responses: dict[int, list[str]],
    verdicts: dict[int, list[list[bool]]],
    rows: list[dict],
) -> dict[str, Any]:
    """Counts the table's page reports: prompts, responses that follow all, prompts with a pair, pair kinds."""
    with_pair = {r["key"] for r in rows}
    n_resp = sum(len(responses[int(i.key)]) for i in items)
    follow_all = sum(all(v) for i in items for v in verdicts[int(i.key)])
    return {
        "prompts": len(items),
        "responses": n_resp,
        "empty_responses": sum(not t.strip() for i in items for t in responses[int(i.key)]),
        "responses_following_all": follow_all,
        "prompts_with_pair": len(with_pair),
        "prompts_with_pair_share": len(with_pair) / len(items) if items else 0.0,
        "pairs": len(rows),
        "pairs_follows_all": sum(r["chosen_follows_all"] for r in rows),
        "pairs_one_instruction": sum(r["one_instruction"] for r in rows),
    }


Validate = Callable[[StagedTable, Path], ContractResult]


def commit_pairs(store: DatasetStore, cfg: IfevalPairsConfig, rows: list[dict], validate: Validate,
                 metadata: dict[str, Any]) -> tuple[VersionInfo, ContractResult]:  # fmt: skip
    """Stage the rows, run the contract, and commit one new version only if it passes (else nothing is
    visible and ContractFailed names the report)."""
    rows = sorted(rows, key=lambda r: (r["key"], r["chosen_sample"], r["rejected_sample"]))
    staged = store.stage(cfg.name, SCHEMA, [pa.RecordBatch.from_pylist(rows, schema=SCHEMA)] if rows else [])
    try:
        result = validate(staged, Path(store.root) / "reports" / cfg.name)
    except BaseException:
        store.discard(staged)
        raise
    if not result.success:
        store.discard(staged)
        reports = [p for p in (result.report_json, result.report_md) if p is not None]
        raise ContractFailed(result.summary, reports)
    contract = {"success": True, "metrics": result.metrics}
    return store.commit(staged, {**metadata, "contract": contract}), result


def read_items(cfg: IfevalPairsConfig) -> list[PromptItem]:
    path = prompts_path(cfg.prompts)
    items, issues = load_prompts(path)
    if issues:
        raise InputError(issues)
    return items[: cfg.limit]


def build_pairs(cfg: IfevalPairsConfig, store: DatasetStore, validate: Validate, key: str,
                generate: Callable[[list[PromptItem]], tuple[dict[int, list[str]], dict[str, Any]]],
                refresh: bool = False) -> PairsOutcome:  # fmt: skip
    """Sample (through `generate`, which returns responses by prompt key and a generation report), label,
    pair, check and commit; a latest version that carries `key` is reused unless `refresh`."""
    if not refresh and cfg.name in store.names():
        latest = store.versions(cfg.name)[-1]
        if latest.metadata.get("stage_key") == key:
            meta = latest.metadata
            return PairsOutcome(latest, json.loads(meta.get("contract", "{}")), json.loads(meta["stats"]),
                                reused=True)  # fmt: skip
    t0 = time.perf_counter()
    items = read_items(cfg)
    responses, generation = generate(items)
    verdicts = {int(item.key): label(item, responses[int(item.key)]) for item in items}  # once per response
    rows = [r for item in items for r in form_pairs(item, responses[int(item.key)], verdicts[int(item.key)])]
    stats = pair_stats(items, responses, verdicts, rows)
    meta = {"stage_key": key, "recipe": cfg.model_dump(mode="json"), "stats": stats, "generation": generation,
            "prompts_sha256": source_fingerprint(str(prompts_path(cfg.prompts)))}  # fmt: skip
    version, result = commit_pairs(store, cfg, rows, validate, meta)
    return PairsOutcome(version, {"success": True, "metrics": result.metrics}, stats,
                        seconds=time.perf_counter() - t0, generation=generation)  # fmt: skip


def isolated_sampler(cfg: IfevalPairsConfig, cache_path: Path, out: Path):
    """`generate` for `build_pairs`: every sample of every prompt from one child process (one engine per
    process, `generation.isolated`), through the generation cache; responses written to `out` (JSONL)."""
    from mapl_core.generation.default_model import resolve_model
    from mapl_core.generation.isolated import generate_isolated

    def generate(items: list[PromptItem]) -> tuple[dict[int, list[str]], dict[str, Any]]:
        prompts = [{"key": item.key, "prompt": item.prompt} for item in items]
        report = generate_isolated(resolve_model(cfg.model), cfg.backend, prompts, out, cache_path,
                                   cfg.sampling(), cfg.batch_size, samples=cfg.samples)  # fmt: skip
        responses: dict[int, list[str]] = {int(item.key): [] for item in items}
        with out.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                responses[int(row["key"])].append(row["response"])
        return responses, {**report, "sampling": cfg.sampling(), "samples": cfg.samples}

    return generate
