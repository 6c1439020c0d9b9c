"""MAPL-DPO: TRL's `DPOTrainer` with comparison rows of every level, and reference log-probs kept on disk.

The score of a sequence is `β · (log π(y|x) − log π_ref(y|x))`, summed over the response's tokens exactly as
TRL's sigmoid DPO loss does; the comparisons and the loss are those of `objective`. Reference log-probs are
computed once, before training, with the reference (the initial policy, or the base model under a LoRA
adapter) and stored under `ref_cache_dir`, keyed by the reference model's revision, the dataset version,
the tokenizer and the maximum length: a second run with the same key loads them instead of running the
reference model again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from trl import DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from mapl_core.files import atomic_output
from mapl_core.training.encoding import ComparisonCollator
from mapl_core.training.mixing import KeepsStreamOrder
from mapl_core.training.objective import batch_loss

SIGNATURE = ["seq_ids", "coefs", "level", "response_starts", "ref_logps"]


def ref_cache_key(
    ref_revision: str, dataset_version: str, tokenizer, max_length: int, truncation: str = "half"
) -> str:
    """What the stored reference log-probs depend on, and nothing else (not the code's formatting)."""
    vocab = hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()[:16]
    template = getattr(tokenizer, "chat_template", None) or ""
    payload = [
        ref_revision,
        dataset_version,
        vocab,
        hashlib.sha256(template.encode()).hexdigest()[:16],
        max_length,
        truncation,
    ]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:24]


def token_digest(dataset) -> str:
    """The content address of encoded comparisons: their token ids and where each response starts."""
    h = hashlib.sha256()
    for seqs, starts in zip(dataset["seq_ids"], dataset["response_starts"], strict=True):
        h.update(json.dumps([seqs, starts]).encode())
    return h.hexdigest()[:24]


class MaplDPOTrainer(KeepsStreamOrder, DPOTrainer):
    def __init__(
        self,
        *args,
        level_weights: dict[str, float],
        ref_cache_dir: Path | None = None,
        ref_cache_keys: dict[str, str] | None = None,
        **kwargs,
    ):
        self.level_weights = dict(level_weights)
        self.ref_cache_dir = ref_cache_dir
        self.ref_cache_keys = ref_cache_keys or {}
        self.ref_cache_hits: dict[str, bool] = {}
        config = kwargs.get("args")
        if config is not None:
            config.precompute_ref_log_probs = True  # computed once (and stored), no reference model in memory
        super().__init__(*args, **kwargs)
        self.data_collator = self.comparison_collator

    @property
    def comparison_collator(self) -> ComparisonCollator:
        return ComparisonCollator(self.processing_class.pad_token_id)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "seq_ids" in (dataset.column_names or []):
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = SIGNATURE

    # ---- log-probabilities -----------------------------------------------------------------------
    def _sequence_logps(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["completion_mask"]
        labels = batch["input_ids"].masked_fill(mask == 0, -100)
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=labels,
            use_cache=False,
            fused_lm_head=True,
        )
        return out.log_probs[:, -(mask.size(1) - 1) :].sum(dim=1)

    @torch.no_grad()
    def reference_logps(self, dataset, batch_size: int) -> list[list[float]]:
        """Per example, the reference log-prob of each of its sequences."""
        model = self.ref_model or self.model
        adapter = contextlib.nullcontext()
        if self.ref_model is None and hasattr(self.model, "peft_config"):
            adapter = use_adapter(self.model, adapter_name="ref" if "ref" in self.model.peft_config else None)
        collate = self.comparison_collator
        out: list[list[float]] = []
        was_training = model.training
        model.eval()
        with adapter, disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            for start in range(0, len(dataset), batch_size):
                rows = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
                batch = {k: v.to(self.accelerator.device) for k, v in collate(rows).items()}
                flat = self._sequence_logps(model, batch).float().cpu().tolist()
                at = 0
                for row in rows:
                    n = len(row["seq_ids"])
                    out.append(flat[at : at + n])
                    at += n
        model.train(was_training)
        return out

    def _precompute_ref_logps(self, dataset, name: str, batch_size: int):
        if "ref_logps" in dataset.column_names:
            return dataset
        key = self.ref_cache_keys.get(name)
        path = self.ref_cache_dir / f"{key}.npz" if self.ref_cache_dir and key else None
        if path is not None and path.is_file():
            stored = np.load(path)
            values, lengths = stored["values"], stored["lengths"]
            if len(lengths) == len(dataset):
                bounds = np.concatenate([[0], np.cumsum(lengths)])
                logps = [values[bounds[i] : bounds[i + 1]].tolist() for i in range(len(lengths))]
                self.ref_cache_hits[name] = True
                return dataset.add_column("ref_logps", logps)
        logps = self.reference_logps(dataset, batch_size)
        self.ref_cache_hits[name] = False
        if path is not None:
            with atomic_output(path) as tmp, tmp.open("wb") as fh:
                np.savez(
                    fh,
                    values=np.array([v for r in logps for v in r]),
                    lengths=np.array([len(r) for r in logps]),
                )
        return dataset.add_column("ref_logps", logps)

    # ---- the loss --------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        logps = self._sequence_logps(model, inputs)
        scores = self.beta * (logps - inputs["ref_logps"])
        loss, margins = batch_loss(scores, inputs, self.level_weights, self._metrics[mode])
        return (loss, {"margins": margins}) if return_outputs else loss
