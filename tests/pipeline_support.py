"""Small pipeline recipes for tests: the shipped HH split (a few rows) and the tiny test model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corpus import HH_TEST

PAIRS_PROMPTS = Path(__file__).with_name("ifeval_pairs_prompts.jsonl")


def tiny_recipe(model: str, rows: int = 40, **overrides: Any) -> dict[str, Any]:
    train = {"model": model, "data": "t", "max_steps": 2, "batch_size": 2, "max_length": 64,
             "limit_per_level": 8, "eval_limit_per_level": 4, "save_steps": 1, "logging_steps": 1}  # fmt: skip
    # the reward-model benchmark: 6 IFEval-format prompts whose instructions the tiny model's short samples
    # both follow and break (a letter count, no commas), 4 samples each
    pairs = {"name": "t_ifeval_pairs", "prompts": str(PAIRS_PROMPTS), "samples": 4, "model": model,
             "backend": "transformers", "max_new_tokens": 12}  # fmt: skip
    recipe = {
        "name": "tiny",
        "build": {"name": "t", "source": str(HH_TEST), "ingest": {"limit": rows}, "batch_size": 20},
        "reward_model": {"name": "rm-t", "kind": "rm", **train},
        "policy": {"name": "dpo-t", "kind": "dpo", **train},
        "evaluation": {"limit": 3, "max_new_tokens": 8, "backend": "transformers", "reward_models": pairs},
        "workers": 1,
    }
    recipe.update(overrides)
    return recipe
