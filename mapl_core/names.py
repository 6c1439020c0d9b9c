"""Names that become paths: builds, tables, trainings and pipelines. One pattern, checked where a recipe is
validated, and paths built from a name resolved and checked to stay inside their root.

Why: a name is joined to the data root (`tables/<name>`, `models/<name>`, `reports/<name>`); `../x` or an
absolute path would write, and on a rerun delete, folders outside it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
RULE = "1-128 letters, digits, '_', '-' or '.', starting with a letter or digit (no '/', no '..')"


class UnsafeName(ValueError):
    """A name that could leave its root as a path."""


def check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not PATTERN.fullmatch(value) or ".." in value:
        raise UnsafeName(f"{what} {value!r} is not allowed: {RULE}")
    return value


def inside(root: str | Path, *parts: str) -> Path:
    """`root/parts…`, resolved, refused unless it stays inside `root` (links followed)."""
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise UnsafeName(f"{'/'.join(parts)!r} leaves {base}")
    return path


Name = Annotated[str, AfterValidator(check_name)]
"""A recipe field that becomes a path component (pydantic validates it with `check_name`)."""
