"""Small pipeline recipes for tests: the shipped HH split (a few rows) and the tiny test model."""

from __future__ import annotations

from typing import Any

from corpus import HH_TEST


def tiny_recipe(model: str, rows: int = 40, **overrides: Any) -> dict[str, Any]:
    train = {"model": model, "data": "t", "max_steps": 2, "batch_size": 2, "max_length": 64,
             "limit_per_level": 8, "eval_limit_per_level": 4, "save_steps": 1, "logging_steps": 1}  # fmt: skip
    recipe = {
        "name": "tiny",
        "build": {"name": "t", "source": str(HH_TEST), "ingest": {"limit": rows}, "batch_size": 20},
        "reward_model": {"name": "rm-t", "kind": "rm", **train},
        "policy": {"name": "dpo-t", "kind": "dpo", **train},
        "evaluation": {"limit": 3, "max_new_tokens": 8, "backend": "transformers"},
        "workers": 1,
    }
    recipe.update(overrides)
    return recipe
