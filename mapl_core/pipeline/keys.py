"""Cache keys of the pipeline's stages.

A key is built from what determines a stage's output and nothing else: the input table versions (or a
source file's SHA-256), the recipe's config hash, the model's revision, mapl_core's version and the stage's
code (`code_digest`: the first-party modules the stage can import, by syntax tree). Never from DataFrames
(slow, and the same data in another order would miss) and never from source text (a formatter would
invalidate every cache).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mapl_core import __version__
from mapl_core.pipeline.code_digest import code_digest

# the modules each stage runs from (their imports are followed): a change to what they do reruns the stage
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "ingest": ("mapl_core.build", "data_contracts"),
    "propose": ("mapl_core.build",),
    "construct": ("mapl_core.build", "data_contracts"),
    "train": ("mapl_core.training.run",),
    "evaluate": ("mapl_core.pipeline.stages",),
    "rm_pairs": ("mapl_core.evaluation.ifeval_pairs", "data_contracts.ifeval_pairs"),
}


def stage_key(stage: str, **parts: Any) -> str:
    if stage not in STAGE_CODE:
        raise ValueError(f"unknown stage {stage!r} (known: {', '.join(STAGE_CODE)})")
    payload = {"stage": stage, "mapl_core": __version__, "code": code_digest(*STAGE_CODE[stage]), **parts}
    return (
        f"{stage}-"
        + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
    )
