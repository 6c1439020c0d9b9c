"""Cache keys of the pipeline's stages.

A key is built from what determines a stage's output and nothing else: the input table versions (or a
source file's SHA-256), the recipe's config hash, the model's revision and mapl_core's version. Never from
DataFrames (slow, and the same data in another order would miss) and never from source text (a formatter
would invalidate every cache).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mapl_core import __version__


def stage_key(stage: str, **parts: Any) -> str:
    payload = {"stage": stage, "mapl_core": __version__, **parts}
    return (
        f"{stage}-"
        + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
    )
