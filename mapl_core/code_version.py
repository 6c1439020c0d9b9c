"""Which code made a dataset version or a model: mapl's version and the checkout's commit (see code_version)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mapl_core import __version__


def code_version(at: Path | None = None) -> str:
    """mapl's version plus the git commit of the checkout (of `at`, default mapl's own), when there is one,
    marked `.dirty` when tracked files differ from that commit: a dataset or model made then cannot be
    remade from the commit alone."""
    here = at or Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return __version__
    if not sha:
        return __version__
    try:
        dirty = ".dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    except (OSError, subprocess.SubprocessError):
        dirty = ".unknown"  # status timed out: do not claim a clean tree
    return f"{__version__}+{sha}{dirty}"
