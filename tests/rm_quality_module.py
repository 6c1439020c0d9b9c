"""benchmarks/rm_quality.py loaded as a module (the script is not a package), for the tests that check it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rm_quality", ROOT / "benchmarks" / "rm_quality.py")
rmq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rmq)
