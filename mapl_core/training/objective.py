"""The MAPL objective: one pairwise kernel `−log σ(s(a) − s(b))` over comparisons of every level.

A comparison is a signed sum of sequence scores: `margin = Σ_i c_i · s_i`. The levels are
- original: `s(x, y_w) − s(x, y_l)` (standard Bradley–Terry / DPO);
- intra: `s(x_w, y) − s(x_l, y)` (same response, two prompts: response-conditioned BT / DPO);
- inter (pairwise): `s(x'_j, y_w) − s(x'_j, y_l)` on combinations consistent with the human preference;
- inter (margin ranking): `Δ_j − Δ_j'` with `Δ = s(x', y_w) − s(x', y_l)` and degree d_j > d_j', i.e. four
  sequences with coefficients (+1, −1, −1, +1).
`s` is the reward model's score, or `β · (log π(y|x) − log π_ref(y|x))` for DPO. The total loss is
`Σ_level λ_level · mean(−log σ(margin))` over the rows of that level in the batch (levels absent from a
batch contribute nothing), so with λ_intra = λ_inter = 0 it is exactly TRL's stock loss on the original
rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LEVELS = ("original", "intra", "inter", "inter_margin")
LEVEL_INDEX = {name: i for i, name in enumerate(LEVELS)}


def comparison_margins(
    scores: torch.Tensor, coefs: torch.Tensor, owner: torch.Tensor, n: int
) -> torch.Tensor:
    """Margins of `n` comparisons from flat per-sequence `scores`: margin[k] = Σ coefs[i] · scores[i] over
    the sequences i with owner[i] == k."""
    return torch.zeros(n, dtype=scores.dtype, device=scores.device).index_add(0, owner, coefs * scores)


def mapl_loss(
    margins: torch.Tensor, levels: torch.Tensor, weights: dict[str, float]
) -> tuple[torch.Tensor, dict[str, tuple[float, float, int]]]:
    """(total loss, {level: (mean loss, accuracy, rows)}) for a batch of comparison margins."""
    per_row = -F.logsigmoid(margins)
    total = margins.new_zeros(())
    stats: dict[str, tuple[float, float, int]] = {}
    for name, idx in LEVEL_INDEX.items():
        mask = levels == idx
        rows = int(mask.sum())
        if rows == 0:
            continue
        level_loss = per_row[mask].mean()
        weight = weights.get(name, 0.0)
        if weight:
            total = total + weight * level_loss
        stats[name] = (float(level_loss.detach()), float((margins[mask] > 0).float().mean()), rows)
    if not total.requires_grad and margins.requires_grad:
        total = total + 0.0 * margins.sum()  # a batch of zero-weight rows: no update, but a valid graph
    return total, stats


def batch_loss(
    scores: torch.Tensor, batch: dict[str, torch.Tensor], weights: dict[str, float], log: dict[str, list]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, margins) of a collated batch from its flat sequence scores; appends each level's loss and
    accuracy to `log` (a trainer's `_metrics[mode]`), which TRL averages at every log step."""
    margins = comparison_margins(scores, batch["coefs"], batch["owner"], len(batch["levels"]))
    loss, stats = mapl_loss(margins, batch["levels"], weights)
    for level, (level_loss, accuracy, _) in stats.items():
        log[f"{level}_loss"].append(level_loss)
        log[f"{level}_accuracy"].append(accuracy)
    return loss, margins
