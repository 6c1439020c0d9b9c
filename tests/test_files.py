"""files.atomic_output: a file or a folder appears whole or not at all, and a failed write keeps the old one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapl_core.files import atomic_output


def test_a_file_is_replaced_whole_and_a_failed_write_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    with atomic_output(path) as tmp:
        tmp.write_text("one")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("tw")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "one" and not tmp.exists()


def test_a_folder_is_replaced_whole_and_a_failed_write_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "model"
    (tmp_path / "model.tmp").mkdir()
    (tmp_path / "model.tmp" / "stale.bin").write_text("a crashed writer's leftovers")
    with atomic_output(path) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v1")
    assert sorted(p.name for p in path.iterdir()) == ["weights"]  # the stale folder was not carried over
    with atomic_output(path) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v2")
    assert (path / "weights").read_text() == "v2"
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v3, half")
        raise RuntimeError("killed mid-save")
    assert (path / "weights").read_text() == "v2" and not tmp.exists()
