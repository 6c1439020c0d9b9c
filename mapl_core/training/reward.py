"""The MAPL reward model trainer: TRL's `RewardTrainer` with comparison rows of every level.

Only the data path and the loss change; everything else is TRL's (peft/LoRA, gradient accumulation,
accelerate/DeepSpeed, bf16, checkpoints and resume, logging). Per-level loss and accuracy are logged at
every log step as `<level>_loss` / `<level>_accuracy`.
"""

from __future__ import annotations

import torch
from trl import RewardTrainer

from mapl_core.training.encoding import ComparisonCollator
from mapl_core.training.mixing import KeepsStreamOrder
from mapl_core.training.objective import batch_loss

SIGNATURE = ["seq_ids", "coefs", "level", "response_starts"]


def sequence_scores(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    kwargs = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    if getattr(model.config, "use_cache", None) is not None:
        kwargs["use_cache"] = False
    return model(**kwargs).logits.squeeze(-1)


class MaplRewardTrainer(KeepsStreamOrder, RewardTrainer):
    def __init__(self, *args, level_weights: dict[str, float], **kwargs):
        self.level_weights = dict(level_weights)
        super().__init__(*args, **kwargs)
        self.data_collator = ComparisonCollator(self.processing_class.pad_token_id)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "seq_ids" in (dataset.column_names or []):
            return dataset  # already encoded by `encoding.encode_comparisons` (truncated, never dropped)
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = SIGNATURE

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        scores = sequence_scores(model, inputs)
        loss, margins = batch_loss(scores, inputs, self.level_weights, self._metrics[mode])
        return (loss, {"margins": margins}) if return_outputs else loss
