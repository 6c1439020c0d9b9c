"""What a trained model folder says about itself: model card, metrics.json, training curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mapl_core.training.objective import LEVELS

if TYPE_CHECKING:
    from mapl_core.training.config import TrainConfig
    from mapl_core.training.outcome import TrainOutcome


def write_model_card(folder: Path, cfg: TrainConfig, outcome: TrainOutcome, base_model: str) -> None:
    from mapl_core.code_version import code_version

    version = code_version()
    summary = {
        "kind": cfg.kind,
        "base_model": base_model,
        "data": {f"{cfg.data}_{k}": v for k, v in outcome.data_versions.items()},
        "config_hash": cfg.config_hash(),
        "code_version": version,
        "steps": outcome.steps,
        "train_seconds": round(outcome.train_seconds, 1),
        "comparisons_per_second": round(outcome.comparisons_per_second, 3),
        "resumed_from": outcome.resumed_from,
        "reference_logps_from_cache": outcome.ref_cache_hit,
        "encoding": outcome.encoding,
        "eval_split": cfg.eval_split,
        "metrics": outcome.metrics,
    }
    (folder / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "mapl_train_config.yaml").write_text(
        yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    )
    plot_curves(outcome.log_history, folder / "training_curves.png")

    rows = "\n".join(
        f"| {lv} | {m['loss']:.4f} | {m['accuracy']:.3f} | {m['rows']} |"
        for lv in (*LEVELS, "inter_decided")  # the held-out inter pairs the instructions decide, again
        if (m := outcome.metrics.get(lv))
    )
    tables = "\n".join(f"| {cfg.data}_{k} | {v} |" for k, v in outcome.data_versions.items())
    trunc = outcome.encoding["train"]
    card = f"""---
library_name: transformers
tags: [mapl, trl, {"reward-model" if cfg.kind == "rm" else "dpo"}]
base_model: {base_model}
---

# {cfg.name}

{"A reward model" if cfg.kind == "rm" else "A DPO policy"} trained by mapl {version} with the MAPL objective
(original + λ_intra·intra + λ_inter·inter; λ = {cfg.levels.intra} / {cfg.levels.inter}, inter variant
`{cfg.levels.inter_variant}`) on TRL, {outcome.steps} steps in {outcome.train_seconds:.0f} s.

## Data (contract-checked table versions)

| table | version |
|---|---:|
{tables}

Training sequences truncated by the documented rule (`{cfg.truncation}`, max length {cfg.max_length}):
{trunc["truncated"]} of {trunc["sequences"]} (none dropped).

## Held-out metrics ({cfg.eval_split} split)

| level | loss | accuracy | comparisons |
|---|---:|---:|---:|
{rows}

## Config

```yaml
{yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).strip()}
```

Config hash `{cfg.config_hash()}`. Curves: `training_curves.png`; everything above as JSON: `metrics.json`.
"""
    (folder / "README.md").write_text(card)


# one colour per level in both panels (the total loss is black), so a level reads the same left and right
COLOURS = {
    "loss": "black",
    **dict(zip(LEVELS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=False)),
}


def plot_curves(history: list[dict], path: Path) -> None:
    """`training_curves.png`: the figure of `curves_figure`."""
    import matplotlib.pyplot as plt

    fig = curves_figure(history)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curves_figure(history: list[dict]):
    """Training loss and each level's loss and accuracy against the step, a level in one colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        series = [("loss", "loss")] if key == "loss" else []
        series += [(f"{lv}_{key}", lv) for lv in LEVELS]
        for name, colour in series:
            points = [(h["step"], h[name]) for h in history if name in h and "step" in h]
            if points:
                ax.plot(*zip(*points, strict=True), label=name, color=COLOURS[colour],
                        marker="." if len(points) < 30 else None)  # fmt: skip
        ax.set_xlabel("step")
        ax.set_title(key)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
