"""Per-level loss and accuracy of a scorer over encoded comparisons (held-out evaluation, the quality table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from mapl_core.training.encoding import ComparisonCollator
from mapl_core.training.objective import LEVELS, comparison_margins

Scorer = Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]


@torch.no_grad()
def level_metrics(
    model, columns: dict[str, list], pad_token_id: int, scorer: Scorer, batch_size: int = 16
) -> dict[str, dict[str, float]]:
    """{level: {"loss", "accuracy", "rows"}}; accuracy counts a comparison right when its margin is > 0."""
    was_training = model.training
    model.eval()
    collate = ComparisonCollator(pad_token_id)
    n = len(columns["level"])
    totals: dict[str, list[float]] = {}
    for start in range(0, n, batch_size):
        rows = [{k: columns[k][i] for k in columns} for i in range(start, min(n, start + batch_size))]
        batch = collate(rows)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        margins = comparison_margins(scorer(model, batch), batch["coefs"], batch["owner"], len(rows))
        losses = -F.logsigmoid(margins)
        for i, level in enumerate(batch["levels"].tolist()):
            t = totals.setdefault(LEVELS[level], [0.0, 0.0, 0.0])
            t[0] += float(losses[i])
            t[1] += float(margins[i] > 0)
            t[2] += 1
    model.train(was_training)
    return {lv: {"loss": t[0] / t[2], "accuracy": t[1] / t[2], "rows": int(t[2])} for lv, t in totals.items()}
