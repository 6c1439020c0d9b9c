"""The code a stage runs, as a digest for its cache key: changed logic reruns the stage, reformatting does not.

A stage's code is the first-party modules its entry modules can import, followed transitively through every
`import` statement in them (those inside functions too, which is how mapl imports its heavy dependencies).
Each module counts by its syntax tree without docstrings, so formatting, comments and docstrings leave the
digest as it was, and any change to what the code does moves it. Third-party code counts through the model
revisions and versions the keys already hold, not here. The syntax tree's printed form can differ between
Python minor versions, so a data root shared by two Pythons keeps one cache per version.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

FIRST_PARTY = ("mapl_core", "data_contracts")


@cache
def _package_dir(top: str) -> Path | None:
    spec = importlib.util.find_spec(top)
    return (
        Path(next(iter(spec.submodule_search_locations)))
        if spec and spec.submodule_search_locations
        else None
    )


def module_file(name: str) -> Path | None:
    """The source file of first-party module or package `name`, or None (third-party, or not a module)."""
    top, *rest = name.split(".")
    base = _package_dir(top) if top in FIRST_PARTY else None
    if base is None:
        return None
    path = base.joinpath(*rest)
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):  # a docstring
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def _imported(name: str, tree: ast.AST, is_package: bool) -> set[str]:
    """First-party module names `tree` imports (with the packages above them, whose __init__ runs too)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*anchor, module] if module else anchor)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    closed = set()
    for module in found:
        parts = module.split(".")
        closed.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in closed if module_file(m) is not None}


def _trees(entries: tuple[str, ...]) -> dict[str, ast.AST]:
    """Every first-party module reachable from `entries`, by name, as its syntax tree without docstrings."""
    trees: dict[str, ast.AST] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in trees or (path := module_file(name)) is None:
            continue
        trees[name] = _strip_docstrings(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        todo.extend(_imported(name, trees[name], path.name == "__init__.py") - trees.keys())
    return trees


@cache
def code_digest(*entries: str) -> str:
    """Digest of the first-party code reachable from modules `entries` (16 hex digits)."""
    if missing := sorted(e for e in entries if module_file(e) is None):
        raise ValueError(f"not first-party modules: {missing}")
    h = hashlib.sha256()
    for name, tree in sorted(_trees(entries).items()):
        h.update(f"{name}\n{ast.dump(tree)}\n".encode())
    return h.hexdigest()[:16]


def reachable(*entries: str) -> list[str]:
    """The modules `code_digest(*entries)` covers, by name."""
    return sorted(_trees(entries))
