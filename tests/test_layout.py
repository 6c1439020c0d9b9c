"""The design card's layout: mapl_core is the pure library (no Prefect imports)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mapl_core_never_imports_prefect() -> None:
    offenders = []
    for path in (ROOT / "mapl_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "prefect"]
    assert offenders == []


def test_layout_folders_exist() -> None:
    for folder in (
        "mapl_core",
        "tasks",
        "flows",
        "data_contracts",
        "deployments",
        "tests",
        "benchmarks",
        "docs",
        "configs",
    ):
        assert (ROOT / folder).is_dir(), folder
