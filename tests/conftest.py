"""Test set-up: offline, deterministic, NLTK Punkt from the shared data (or the project's data folder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _punkt() -> None:
    from mapl_core.nltk_data import ensure_punkt

    ensure_punkt()
