"""Scoring reward models on the IFEval-phrased pairs table: accuracy (margin > 0) overall, by pair kind, by
how many instructions the rejected response breaks, by instruction type, and length-controlled (pairs where
the chosen response is the shorter one vs the longer one, so a length prior cannot pass for instruction
reading). Intervals resample whole prompts (`stats.cluster_bootstrap`); differences between two models are
paired on the same pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mapl_core.evaluation.stats import cluster_bootstrap
from mapl_core.training.examples import Comparison

DEFAULT_ENCODING = (
    512,
    "half",
)  # a folder not trained by mapl: BERT-sized context, prompt and response halved


def pair_comparisons(df: pd.DataFrame) -> list[Comparison]:
    """One comparison per row: the prompt as a single user turn, chosen ≻ rejected (encoded as the original
    level: a plain pair)."""
    out = []
    for r in df.itertuples(index=False):
        messages = [{"role": "user", "content": r.prompt}]
        out.append(
            Comparison("original", ((messages, r.chosen, 1.0), (messages, r.rejected, -1.0)), r.pair_id)
        )
    return out


def encoding_rule(model_dir: str | Path) -> tuple[int, str]:
    """(max_length, truncation) the reward model in `model_dir` was trained with (its `mapl_train_config.yaml`),
    else DEFAULT_ENCODING: a model is scored as it was trained to read."""
    recipe = Path(model_dir) / "mapl_train_config.yaml"
    if not recipe.is_file():
        return DEFAULT_ENCODING
    cfg = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    return int(cfg.get("max_length", DEFAULT_ENCODING[0])), str(cfg.get("truncation", DEFAULT_ENCODING[1]))


def reward_margins(
    model_dir: str | Path,
    comparisons: list[Comparison],
    max_length: int | None = None,
    truncation: str | None = None,
    batch_size: int = 32,
) -> tuple[list[float], dict[str, Any]]:
    """Per-comparison margins (score(chosen) − score(rejected)) of the reward model in `model_dir`, and how
    the comparisons were encoded (length, rule, share truncated)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mapl_core.training.encoding import encode_comparisons
    from mapl_core.training.metrics import distinct_sequences, sequence_score_table
    from mapl_core.training.reward import sequence_scores

    rule = encoding_rule(model_dir)
    max_length, truncation = max_length or rule[0], truncation or rule[1]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    columns, report = encode_comparisons(comparisons, tokenizer, max_length, truncation)
    sequences, sides = distinct_sequences(columns)
    scores = sequence_score_table(model, sequences, pad, sequence_scores, 2 * batch_size).tolist()
    margins = [
        sum(c * scores[i] for c, i in zip(coefs, own, strict=True))
        for own, coefs in zip(sides, columns["coefs"], strict=True)
    ]
    share = report.truncated / report.sequences if report.sequences else 0.0
    encoding = {"max_length": max_length, "truncation": truncation, "sequences": report.sequences,
                "truncated_share": share}  # fmt: skip
    return margins, encoding


def groups(df: pd.DataFrame, subsets: dict[str, set[str]] | None = None) -> dict[str, pd.Series]:
    """Row masks of every reported group, in table order: overall, pair kinds, rejected's broken count,
    length-controlled, each named family subset (pairs decided only by its instructions), each type."""
    out = {
        "all pairs": pd.Series(True, index=df.index),
        "follows all ≻ breaks some": df.chosen_follows_all.astype(bool),
        "one instruction differs": df.one_instruction.astype(bool),
        "rejected breaks 1": df.broken_rejected == 1,
        "rejected breaks 2": df.broken_rejected == 2,
        "rejected breaks 3+": df.broken_rejected >= 3,
        "chosen shorter": df.chosen_chars < df.rejected_chars,
        "chosen longer": df.chosen_chars > df.rejected_chars,
    }
    for name, families in (subsets or {}).items():
        out[name] = df.decided_by.map(lambda d, f=families: bool(len(d)) and set(d) <= f)
    for iid in sorted({i for d in df.decided_by for i in d}):
        out[f"type {iid}"] = df.decided_by.map(lambda d, i=iid: i in set(d))
    return out


def accuracy_rows(df: pd.DataFrame, margins: dict[str, list[float]], reference: str | None = None,
                  subsets: dict[str, set[str]] | None = None, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """One row per group: pairs, prompts, each model's accuracy with its interval and, with a `reference`
    model, each other model's paired difference from it with its interval (all as proportions)."""
    correct = {m: pd.Series([float(x > 0) for x in v], index=df.index) for m, v in margins.items()}
    rows = []
    for name, mask in groups(df, subsets).items():
        if not mask.any():
            continue
        keys = df.key[mask].tolist()
        row: dict[str, Any] = {"group": name, "pairs": int(mask.sum()), "prompts": len(set(keys))}
        for model, c in correct.items():
            values = c[mask].tolist()
            low, high = cluster_bootstrap(values, keys, seed=seed)
            row[model] = {"accuracy": sum(values) / len(values), "low": low, "high": high}
            if reference is not None and model != reference:
                diff = (c[mask] - correct[reference][mask]).tolist()
                low, high = cluster_bootstrap(diff, keys, seed=seed)
                row[f"{model} − {reference}"] = {
                    "difference": sum(diff) / len(diff),
                    "low": low,
                    "high": high,
                }
        rows.append(row)
    return rows
