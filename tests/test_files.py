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
    with atomic_output(path) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v1")
    assert sorted(p.name for p in path.iterdir()) == ["weights"]
    with atomic_output(path) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v2")
    assert (path / "weights").read_text() == "v2"
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v3, half")
        raise RuntimeError("killed mid-save")
    assert (path / "weights").read_text() == "v2" and not tmp.exists()


def test_two_writers_get_temporaries_of_their_own_and_a_dead_writers_is_removed(tmp_path: Path) -> None:
    """Issue 32: a fixed `<path>.tmp` let two writers overwrite each other's half-written output."""
    import os
    import subprocess
    import sys

    path = tmp_path / "run.json"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = tmp_path / f".run.json.{gone.stdout.strip()}.deadbeef.tmp"  # left by a writer killed mid-write
    dead.write_text("torn")
    live = tmp_path / f".run.json.{os.getppid()}.cafef00d.tmp"  # a writer that still runs (our parent)
    live.write_text("in progress")
    with atomic_output(path) as first, atomic_output(path) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("A")
        second.write_text("B")
    assert path.read_text() == "A"  # each replaced the path whole with its own content; the last one wins
    assert not dead.exists() and live.read_text() == "in progress"
