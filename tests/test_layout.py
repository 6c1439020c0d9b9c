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


def test_a_reader_can_hold_each_function_in_their_head() -> None:
    """No function of the product's packages is over 80 lines (docstring included)."""
    long = []
    for package in ("mapl_core", "flows", "tasks", "data_contracts", "mapl_cli", "deployments"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                if is_function and (lines := node.end_lineno - node.lineno + 1) > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_the_readme_and_the_training_guide_stay_readable() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    assert [n for n, line in enumerate(readme, 1) if len(line) > 200] == []
    assert len((ROOT / "docs" / "training.md").read_text().splitlines()) < 250
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1]
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in (".git", ".venv", ".mapl")}
    folders -= {p for p in folders if p.startswith(".") and p != ".ci"}
    assert [f for f in sorted(folders) if f"`{f}/`" not in layout] == []  # every top-level folder is named


def test_every_record_the_docs_link_is_in_the_results_index() -> None:
    import re

    index = (ROOT / "benchmarks" / "results" / "README.md").read_text()
    records = {p.name for p in (ROOT / "benchmarks" / "results").iterdir() if p.name != "README.md"}
    assert [r for r in sorted(records) if r not in index] == []  # every record is listed
    linked = set()
    for doc in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        linked |= set(re.findall(r"benchmarks/results/([\w.\-]+\.(?:json|md))", doc.read_text()))
    assert [r for r in sorted(linked - {"README.md"}) if r not in records] == []  # every record linked exists
