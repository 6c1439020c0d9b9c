"""What a finished training reports (the model card, the pipeline and the CLI read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainOutcome:
    output: Path
    model_dir: Path
    data_versions: dict[str, int]
    metrics: dict[str, dict[str, float]]
    encoding: dict[str, Any]
    train_seconds: float
    steps: int
    comparisons_per_second: float
    resumed_from: str | None = None
    ref_cache_hit: bool | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)
