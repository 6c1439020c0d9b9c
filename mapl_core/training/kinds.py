"""One object per model kind: how `train` loads the model, makes the trainer and scores held-out rows.

`train` (training.run) holds the sequence every kind shares; what differs between a reward model and a DPO
policy lives here, so neither needs a `kind == "rm"` branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mapl_core.training.config import TrainConfig


@dataclass
class RewardModelKind:
    """A sequence classifier with one scalar output (a fresh head on the base model)."""

    cfg: TrainConfig

    def load_model(self, path: str):
        import torch
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)

    def trainer_config(self, common: dict[str, Any]):
        from trl import RewardConfig

        return RewardConfig(**common)

    def lora_task(self, model) -> tuple[str, list[str] | None]:
        """peft's task type, and the modules to keep trainable: the fresh head must learn."""
        return "SEQ_CLS", [n for n in ("score", "classifier") if hasattr(model, n)]

    def make_trainer(self, common: dict[str, Any], **_context):
        from mapl_core.training.reward import MaplRewardTrainer

        return MaplRewardTrainer(**common)

    def held_out_columns(self, trainer, eval_cols: dict[str, list]) -> dict[str, list]:
        return eval_cols

    def scorer(self, trainer):
        from mapl_core.training.reward import sequence_scores

        return sequence_scores


@dataclass
class PolicyKind:
    """A causal LM trained with MAPL-DPO; its score is the implicit reward β·(log π − log π_ref)."""

    cfg: TrainConfig

    def load_model(self, path: str):
        import torch
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)

    def trainer_config(self, common: dict[str, Any]):
        from trl import DPOConfig

        return DPOConfig(**common, beta=self.cfg.beta)

    def lora_task(self, model) -> tuple[str, list[str] | None]:
        return "CAUSAL_LM", None

    def make_trainer(self, common: dict[str, Any], *, store, revision: str, tokenizer):
        from mapl_core.training.dpo import MaplDPOTrainer, ref_cache_key, token_digest

        cfg = self.cfg
        # the stored log-probs are keyed by the token ids they score: two recipes that select the same
        # comparisons (the held-out rows of every arm of an experiment) share them, whatever else differs
        datasets = {"train": common["train_dataset"], "eval": common.get("eval_dataset")}
        keys = {
            name: ref_cache_key(revision, token_digest(ds), tokenizer, cfg.max_length, cfg.truncation)
            for name, ds in datasets.items()
            if ds is not None
        }
        return MaplDPOTrainer(**common, ref_cache_dir=store.cache_dir() / "ref_logps", ref_cache_keys=keys)

    def held_out_columns(self, trainer, eval_cols: dict[str, list]) -> dict[str, list]:
        if trainer.eval_dataset is None:
            return {}
        return {**eval_cols, "ref_logps": trainer.eval_dataset["ref_logps"]}

    def scorer(self, trainer):
        beta = self.cfg.beta

        def implicit_reward(model, batch):
            return beta * (trainer._sequence_logps(model, batch) - batch["ref_logps"])

        return implicit_reward


def model_kind(cfg: TrainConfig) -> RewardModelKind | PolicyKind:
    return RewardModelKind(cfg) if cfg.kind == "rm" else PolicyKind(cfg)
