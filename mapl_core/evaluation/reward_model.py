"""Score a reward-model folder on comparisons: accuracy (margin > 0) per level or named group."""

from __future__ import annotations

from pathlib import Path

from mapl_core.training.examples import Comparison


def score_reward_model(
    model_dir: str | Path,
    comparisons: list[Comparison],
    groups: list[str] | None = None,
    max_length: int = 256,
    truncation: str = "half",
    batch_size: int = 32,
) -> dict[str, dict[str, float]]:
    """{group: {"loss", "accuracy", "rows"}} of the reward model saved in `model_dir` (an HF folder with
    its tokenizer, as `mapl train rm` writes it). Comparisons are encoded by the rule the model trained
    with (`max_length`, `truncation`); `groups` names the column of each (default: its level)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mapl_core.training.encoding import encode_comparisons
    from mapl_core.training.metrics import level_metrics
    from mapl_core.training.reward import sequence_scores

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    columns = encode_comparisons(comparisons, tokenizer, max_length, truncation)[0]
    return level_metrics(model, columns, pad, sequence_scores, batch_size, groups)
