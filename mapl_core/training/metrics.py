"""Per-level loss and accuracy of a scorer over encoded comparisons (held-out evaluation, the quality table).

Comparisons share sequences (an inter combination's two sides appear in its pairwise row and in every
margin-ranking row that uses it), so each distinct sequence is scored once, in batches of similar length,
and the margins are summed from those scores afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from mapl_core.training.encoding import ComparisonCollator
from mapl_core.training.objective import LEVELS

Scorer = Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]


def distinct_sequences(columns: dict[str, list]) -> tuple[list[tuple], list[list[int]]]:
    """(distinct sequences as (ids, response start, reference log-prob or None), and for each comparison the
    indices of its sides in that list)."""
    index: dict[tuple, int] = {}
    sides: list[list[int]] = []
    refs = columns.get("ref_logps")
    for k, (seqs, starts) in enumerate(zip(columns["seq_ids"], columns["response_starts"], strict=True)):
        own = []
        for j, (ids, start) in enumerate(zip(seqs, starts, strict=True)):
            key = (tuple(ids), start, None if refs is None else refs[k][j])
            own.append(index.setdefault(key, len(index)))
        sides.append(own)
    return list(index), sides


@torch.no_grad()
def sequence_score_table(
    model, sequences: list[tuple], pad_token_id: int, scorer: Scorer, batch_size: int
) -> torch.Tensor:
    """Scores of `sequences` ((ids, start, ref log-prob)), `batch_size` sequences per forward pass, shortest
    first so a batch pads little."""
    collate = ComparisonCollator(pad_token_id)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    scores = torch.empty(len(sequences), dtype=torch.float64)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        rows = []
        for i in chunk:
            ids, resp_start, ref = sequences[i]
            row = {"seq_ids": [list(ids)], "response_starts": [resp_start], "coefs": [1.0], "level": 0}
            if ref is not None:
                row["ref_logps"] = [ref]
            rows.append(row)
        batch = {k: v.to(model.device) for k, v in collate(rows).items()}
        scores[chunk] = scorer(model, batch).double().cpu()
    return scores


def level_metrics(
    model,
    columns: dict[str, list],
    pad_token_id: int,
    scorer: Scorer,
    batch_size: int = 16,
    groups: list[str] | None = None,
    also: list[str | None] | None = None,
) -> dict[str, dict[str, float]]:
    """{level: {"loss", "accuracy", "rows"}}; accuracy counts a comparison right when its margin is > 0.

    `groups`: a name per comparison to report under instead of its level (e.g. a subset of one level
    scored in the same pass); `also`: a second group per comparison (or None) it counts in as well, such as
    the decided subset of the inter level. `batch_size` counts comparisons (two sequences each) as in
    training; scoring runs `2 × batch_size` distinct sequences per forward pass."""
    was_training = model.training
    model.eval()
    try:
        sequences, sides = distinct_sequences(columns)
        scores = sequence_score_table(model, sequences, pad_token_id, scorer, 2 * batch_size)
    finally:
        model.train(was_training)
    values = scores.tolist()
    margins = torch.tensor(
        [
            sum(c * values[i] for c, i in zip(coefs, own, strict=True))
            for own, coefs in zip(sides, columns["coefs"], strict=True)
        ],
        dtype=torch.float64,
    )
    losses = (-F.logsigmoid(margins)).tolist()
    names = groups if groups is not None else [LEVELS[lv] for lv in columns["level"]]
    totals: dict[str, list[float]] = {}
    extra = also if also is not None else [None] * len(names)
    for name, second, margin, loss in zip(names, extra, margins.tolist(), losses, strict=True):
        for group in (name, second):
            if group is None:
                continue
            t = totals.setdefault(group, [0.0, 0.0, 0.0])
            t[0] += loss
            t[1] += float(margin > 0)
            t[2] += 1
    return {lv: {"loss": t[0] / t[2], "accuracy": t[1] / t[2], "rows": int(t[2])} for lv, t in totals.items()}
