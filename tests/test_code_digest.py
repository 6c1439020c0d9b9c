"""Stage cache keys follow the stage's code: what the code does moves the key, its formatting does not."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from mapl_core.pipeline import code_digest as cd
from mapl_core.pipeline.keys import STAGE_CODE, stage_key

B = '''
"""Module b."""
THRESHOLD = 3


def check(words):
    """How many words."""
    return len(words) >= THRESHOLD
'''
B_REFORMATTED = '''
"""Module b, documented anew."""

THRESHOLD = 3  # the smallest count


def check(
    words,
):
    return len(words) >= THRESHOLD
'''


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A first-party package `probe_pkg`: a imports b inside a function, c is imported by nobody."""
    pkg = tmp_path / "probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "def run(words):\n    from probe_pkg.b import check\n\n    return check(words)\n"
    )
    (pkg / "b.py").write_text(B)
    (pkg / "c.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cd, "FIRST_PARTY", (*cd.FIRST_PARTY, "probe_pkg"))
    yield pkg
    cd.code_digest.cache_clear()
    cd._package_dir.cache_clear()
    sys.modules.pop("probe_pkg", None)


def digest() -> str:
    cd.code_digest.cache_clear()
    return cd.code_digest("probe_pkg.a")


def test_the_digest_covers_what_the_entry_imports_and_only_its_logic(probe: Path) -> None:
    assert cd.reachable("probe_pkg.a") == ["probe_pkg", "probe_pkg.a", "probe_pkg.b"]  # through a lazy import
    before = digest()
    (probe / "b.py").write_text(textwrap.dedent(B_REFORMATTED))
    assert digest() == before  # formatting, comments and docstrings
    (probe / "c.py").write_text("X = 2\n")
    assert digest() == before  # a module the stage cannot reach
    (probe / "b.py").write_text(B.replace("THRESHOLD = 3", "THRESHOLD = 4"))
    assert digest() != before  # what the stage does


def test_every_stage_key_carries_its_code() -> None:
    for stage, entries in STAGE_CODE.items():
        assert cd.code_digest(*entries)  # every entry is a first-party module
        assert stage_key(stage, x=1) == stage_key(stage, x=1) != stage_key(stage, x=2)
    assert "mapl_core.training.mixing" in cd.reachable(*STAGE_CODE["train"])
    assert "mapl_core.training.mixing" not in cd.reachable(*STAGE_CODE["construct"])  # no rebuild for it
    assert "mapl_core.evaluation.ifeval_scoring" in cd.reachable(*STAGE_CODE["evaluate"])
    with pytest.raises(ValueError, match="unknown stage"):
        stage_key("trian")
    with pytest.raises(ValueError, match="not first-party"):
        cd.code_digest("numpy")
