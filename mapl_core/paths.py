"""Where mapl keeps its data, and where the workplace's shared data lives."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """The data root: `$MAPL_DATA_ROOT`, else `./.mapl` in the current directory."""
    return Path(os.environ.get("MAPL_DATA_ROOT", ".mapl")).expanduser().resolve()


def shared_data_dir() -> Path | None:
    """The shared data folder (`$MAPL_SHARED_DATA`, else `<repo>/../shared/data`) or None if absent."""
    env = os.environ.get("MAPL_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None
