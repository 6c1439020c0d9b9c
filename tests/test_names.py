"""Names that become paths stay inside the data root: one pattern for build, table, training and pipeline names
(issue 32: `mapl build --name ../../x` wrote tables outside the root; an absolute training name had folders
deleted outside it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from corpus import HH_TEST
from pydantic import ValidationError

from mapl_core.config import BuildConfig
from mapl_core.names import UnsafeName, check_name, inside
from mapl_core.pipeline.config import PipelineConfig
from mapl_core.storage.delta_tables import DatasetStore
from mapl_core.training.config import TrainConfig

BAD = ["../x", "../../x", "/tmp/x", "a/b", "..", ".hidden", "", "a..b", "x" * 129, "a b", "a\x00b", "nl\n"]


@pytest.mark.parametrize("name", BAD)
def test_unsafe_names_are_refused_everywhere_a_name_becomes_a_path(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafeName, match="is not allowed"):
        check_name(name)
    for make in (lambda: BuildConfig(name=name), lambda: TrainConfig(name=name), lambda: TrainConfig(data=name),
                 lambda: PipelineConfig.model_validate({"name": name, "build": {"name": "b", "source": "s"}})):  # fmt: skip
        with pytest.raises(ValidationError, match="letters, digits"):
            make()
    with pytest.raises(UnsafeName):
        DatasetStore(tmp_path).uri(name)


@pytest.mark.parametrize(
    "name", ["hh", "hh_lexical", "rm-hh-lexical-baseline", "rmq-lexical-mapl-mirrored-s0", "v1.2"]
)
def test_the_names_mapl_uses_are_allowed(name: str) -> None:
    assert check_name(name) == name and TrainConfig(name=name).name == name


def test_a_path_built_from_parts_must_stay_inside_its_root(tmp_path: Path) -> None:
    assert inside(tmp_path, "tables", "t_intra") == tmp_path.resolve() / "tables" / "t_intra"
    with pytest.raises(UnsafeName, match="leaves"):
        inside(tmp_path, "tables", "..", "..", "x")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "link").symlink_to(tmp_path.parent)  # a link out of the root is followed, refused
    with pytest.raises(UnsafeName, match="leaves"):
        inside(tmp_path, "tables", "link", "x")


def test_mapl_build_with_an_escaping_name_exits_with_the_rule_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cmd = [sys.executable, "-m", "mapl_cli.main", "build", "--source", str(HH_TEST), "--limit", "8", "--name",
           "../../escaped", "--data-root", str(root)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "is not allowed" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.rglob("escaped*")) and not (root / "tables").exists()
