"""Each pipeline stage as a plain function: inputs are table versions and recipes, the output a JSON-able
record of what was read and written (what the Prefect tasks persist and the UI's artifacts show).

Stages that write tables first look for a committed version carrying their stage key (`reusable`): a stage
whose output already exists is not built again, even when the orchestrator's own result cache is gone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mapl_core.build import (
    CONSTRUCT_KINDS,
    INGEST_KINDS,
    ContractFailed,
    build,
    build_lock,
    source_fingerprint,
    table_name,
)
from mapl_core.config import BuildConfig
from mapl_core.evaluation.ifeval_pairs import IfevalPairsConfig
from mapl_core.generation.engines import model_revision
from mapl_core.pipeline.config import EvaluationConfig
from mapl_core.pipeline.keys import stage_key
from mapl_core.storage.delta_tables import DatasetStore, TableRef
from mapl_core.training.config import TrainConfig

log = logging.getLogger(__name__)

Record = dict[str, Any]


def ingest_key(cfg: BuildConfig) -> str:
    return stage_key(
        "ingest", config=cfg.config_hash(), source=cfg.source, sha256=source_fingerprint(cfg.source)
    )


def construct_key(cfg: BuildConfig, original: tuple[str, int]) -> str:
    proposer = None
    if cfg.proposals is not None:
        proposer = cfg.proposals.base_url or model_revision(_model_path(cfg.proposals.model))
    return stage_key("construct", config=cfg.config_hash(), original=list(original), proposer=proposer)


def train_key(cfg: TrainConfig, data_versions: dict[str, int]) -> str:
    from mapl_core.training.run import resolve_training_model

    revision = model_revision(resolve_training_model(cfg.model, cfg.kind))
    return stage_key("train", config=cfg.config_hash(), data=data_versions, model=revision)


def _model_path(model: str) -> str:
    from mapl_core.generation.default_model import resolve_model

    return resolve_model(model)


def reusable(store: DatasetStore, names: list[str], key: str) -> Record | None:
    """The latest versions of `names` if every one of them was committed by the stage run `key`."""
    found = {}
    for name in names:
        if name not in store.names():
            return None
        latest = store.versions(name)[-1]
        if latest.metadata.get("stage_key") != key:
            return None
        found[name] = latest
    return {
        "tables": {n: v.version for n, v in found.items()},
        "rows": {n: v.rows for n, v in found.items()},
        "contracts": {n: v.contract for n, v in found.items()},
    }


def _record(outcome, key: str, seconds: float) -> Record:
    return {
        "key": key,
        "tables": {v.name: v.version for v in outcome.versions.values()},
        "rows": {v.name: v.rows for v in outcome.versions.values()},
        "contracts": {
            outcome.versions[k].name: {"success": c.success, "metrics": c.metrics}
            for k, c in outcome.contracts.items()
        },
        "seconds": round(seconds, 2),
        "reused": False,
    }


def ingest_stage(cfg: BuildConfig, store: DatasetStore, contracts, refresh: bool = False) -> Record:
    """Source file or hub id → the original and quarantine tables (contract-checked, committed atomically).
    `refresh` ingests again even when the latest versions carry this run's key."""
    key = ingest_key(cfg)
    names = [table_name(cfg, k) for k in INGEST_KINDS]
    if not refresh and (found := reusable(store, names, key)) is not None:
        return {"key": key, **found, "seconds": 0.0, "reused": True}
    t0 = time.perf_counter()
    outcome = build(cfg, store, contracts, stage="ingest", metadata={"stage_key": key})
    return _record(outcome, key, time.perf_counter() - t0)


def propose_stage(cfg: BuildConfig, store: DatasetStore, original: tuple[str, int]) -> Record:
    """Prompt-condition generation: the configured language model (vLLM) proposes candidate arguments for
    every response of an original table version. Answers go to the proposal cache, where construction finds
    them (so construction starts no engine). Without `proposals:` in the recipe, rule-based only: nothing to do."""
    if cfg.proposals is None:
        return {"proposals": "off (rules only)", "input": str(TableRef(*original))}
    from mapl_core.build import propose_batch, table_batches
    from mapl_core.data.ingest import IngestReport
    from mapl_core.generation.proposals import open_proposer

    t0 = time.perf_counter()
    proposer = open_proposer(
        cfg.proposals, store.cache_dir() / "proposals.jsonl", cfg.construction.max_end_phrase_words
    )
    try:
        for pairs, _ in table_batches(store, original, cfg.proposals.batch_size, IngestReport(cfg.source)):
            propose_batch(proposer, pairs)
    finally:
        proposer.cache.close()
        getattr(proposer.generator, "close", lambda: None)()
    return {"proposals": proposer.describe(), "input": str(TableRef(*original)),
            "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip


def construct_stage(
    cfg: BuildConfig,
    store: DatasetStore,
    contracts,
    original: tuple[str, int],
    workers: int = 1,
    batch_map: Callable[[Iterator], Iterator] | None = None,
    progress: Callable[[int], None] | None = None,
    refresh: bool = False,
    retry_if: Callable[[BaseException], bool] | None = None,
    attempts: int = 1,
) -> Record:
    """Prompt-condition generation (model proposals, when configured) and instruction-combination sampling
    over a committed original table version → the intra, inter and comparison tables (`refresh`: built and
    committed again even when the latest versions carry this run's key).

    A failure for which `retry_if` holds (a worker killed mid-batch, a lost commit race) builds again, up to
    `attempts` times in all, 2, 4, 8 … s apart: a failed build commits nothing, so building again is safe, and
    a table another writer committed meanwhile is found and reused."""
    key = construct_key(cfg, original)
    names = [table_name(cfg, k) for k in CONSTRUCT_KINDS]
    # the reuse check and the build under one lock: a run that waited for another's build then finds it
    with build_lock(store, cfg):
        for attempt in range(1, attempts + 1):
            if not refresh and (found := reusable(store, names, key)) is not None:
                return {
                    "key": key,
                    **found,
                    "seconds": 0.0,
                    "reused": True,
                    "input": str(TableRef(*original)),
                }
            t0 = time.perf_counter()
            try:
                outcome = build(cfg, store, contracts, workers=workers, stage="construct", original=original,
                                metadata={"stage_key": key}, batch_map=batch_map, progress=progress)  # fmt: skip
            except Exception as exc:
                if attempt == attempts or retry_if is None or not retry_if(exc):
                    raise
                log.warning("construction failed (%s: %s); building again (attempt %d of %d)",
                            type(exc).__name__, exc, attempt + 1, attempts)  # fmt: skip
                time.sleep(2**attempt)
                continue
            return {**_record(outcome, key, time.perf_counter() - t0), "input": str(TableRef(*original))}
        raise AssertionError("unreachable")


def contract_gate(store: DatasetStore, tables: dict[str, int]) -> Record:
    """Every table version about to be trained on has a passing data-contract result, or this raises."""
    rows, failed = [], []
    for name, version in sorted(tables.items()):
        info = next((v for v in store.versions(name) if v.version == version), None)
        contract = info.contract if info else None
        ok = bool(contract and contract.get("success"))
        rows.append({"table": str(TableRef(name, version)), "rows": info.rows if info else None, "contracts": ok,
                     "metrics": (contract or {}).get("metrics", {})})  # fmt: skip
        if not ok:
            failed.append(str(TableRef(name, version)))
    if failed:
        raise ContractFailed(f"no passing data-contract result for {', '.join(failed)}", [])
    return {"tables": rows}


def train_stage(cfg: TrainConfig, store: DatasetStore, data_versions: dict[str, int], output: Path,
                refresh: bool = False) -> Record:  # fmt: skip
    """A reward model or a policy on pinned table versions; a re-run resumes from the same run's last
    checkpoint (`refresh`: trains from step 0)."""
    from mapl_core.training.run import train

    cfg = cfg.model_copy(update={"data_versions": data_versions})
    outcome = train(cfg, store, output, fresh=refresh)
    return {
        "key": train_key(cfg, data_versions),
        "kind": cfg.kind,
        "name": cfg.name,
        "model_dir": str(outcome.model_dir),
        "data_versions": outcome.data_versions,
        "metrics": outcome.metrics,
        "steps": outcome.steps,
        "train_seconds": round(outcome.train_seconds, 2),
        "resumed_from": outcome.resumed_from,
        "truncated": outcome.encoding["train"].get("truncated"),
    }


def policy_folder(model_dir: Path) -> Path:
    """A folder an inference engine can load: a LoRA adapter merged into its base model, once per adapter.

    The merge sits beside the adapter (`<output>/merged`) and records the adapter's revision: a policy
    retrained under the same name gets a new merge instead of the old one (written by `files.atomic_output`,
    so a reader never finds a half-written folder)."""
    if not (model_dir / "adapter_config.json").is_file():
        return model_dir
    merged = model_dir.parent / "merged"
    source = {"adapter": model_revision(str(model_dir))}
    marker = merged / "merged_from.json"
    if marker.is_file() and json.loads(marker.read_text()) == source:
        return merged
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    from mapl_core.files import atomic_output

    model = AutoPeftModelForCausalLM.from_pretrained(str(model_dir)).merge_and_unload()
    with atomic_output(merged) as tmp:
        model.save_pretrained(str(tmp))
        AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(tmp))
        (tmp / "merged_from.json").write_text(json.dumps(source))
    return merged


def evaluate_policy_stage(model: str, cfg: EvaluationConfig, store: DatasetStore, out_dir: Path) -> Record:
    """IFEval-style benchmark of one policy: generate responses (cached; in a child process, one engine per
    process — see `generation.isolated`), score the four IFEval metrics."""
    from mapl_core.evaluation.ifeval_scoring import evaluate_files, write_evaluation
    from mapl_core.generation.default_model import resolve_model
    from mapl_core.generation.isolated import generate_isolated
    from mapl_core.generation.responses import read_prompts

    prompts = ifeval_prompts(cfg)
    path = resolve_model(model) if model == "default" else str(policy_folder(Path(model)))
    rows = read_prompts(prompts)[: cfg.limit]
    subset = out_dir / "prompts.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = {r["prompt"] for r in rows}
    with prompts.open(encoding="utf-8") as src:
        subset.write_text(
            "".join(line for line in src if line.strip() and json.loads(line)["prompt"] in keep)
        )
    sampling = {"max_new_tokens": cfg.max_new_tokens, "temperature": 0.0, "top_p": 1.0, "seed": 0}
    report = generate_isolated(path, cfg.backend, rows, out_dir / "responses.jsonl",
                               store.cache_dir() / "generations.jsonl", sampling, cfg.batch_size)  # fmt: skip
    evaluation = evaluate_files(subset, out_dir / "responses.jsonl")
    write_evaluation(evaluation, out_dir)
    s = evaluation.summary
    return {
        "model": path,
        "engine": report["engine"],
        "prompts": s.prompts,
        "instructions": s.instructions,
        "generated": report["generated"],
        "from_cache": report["from_cache"],
        "prompt_level_strict": s.prompt_level_strict_acc,
        "prompt_level_loose": s.prompt_level_loose_acc,
        "inst_level_strict": s.inst_level_strict_acc,
        "inst_level_loose": s.inst_level_loose_acc,
        "out_dir": str(out_dir),
    }


def ifeval_prompts(cfg: EvaluationConfig) -> Path:
    from mapl_core.evaluation.ifeval_files import prompts_path

    return prompts_path(cfg.prompts)


def rm_pairs_stage(cfg: IfevalPairsConfig, store: DatasetStore, validate, refresh: bool = False) -> Record:
    """The IFEval-phrased reward-model benchmark table (`evaluation.rm_benchmark`): built once per recipe,
    sampling model and code, then reused (`refresh`: built again, from the generation cache)."""
    from mapl_core.evaluation.rm_benchmark import build_benchmark, pairs_key

    outcome = build_benchmark(cfg, store, validate, refresh)
    return {"key": pairs_key(cfg), "tables": {cfg.name: outcome.version.version},
            "rows": {cfg.name: outcome.version.rows}, "contracts": {cfg.name: outcome.contract},
            "stats": outcome.stats, "reused": outcome.reused, "seconds": round(outcome.seconds, 2)}  # fmt: skip


def evaluate_reward_models_stage(store: DatasetStore, table: str, models: dict[str, str]) -> Record:
    """Each reward model's accuracy on the benchmark table version, and MAPL's paired difference from the
    baseline when both are there."""
    from mapl_core.evaluation.rm_benchmark import score_benchmark

    reference = "baseline" if "baseline" in models else None
    return score_benchmark(store, table, models, reference)
