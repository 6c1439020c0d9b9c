"""Issue 32: Prefect's cached results are read only from folders no one but this user can write. A result
record names the serializer that reads it back, and Prefect's serializers can import and call what a record
names, so a writable results folder on a shared data root let anyone run code in the next cached run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tasks.policies import UnsafeResults, keyed, prefect_dir, results_dir


def test_a_fresh_data_root_gets_private_results_and_keys(tmp_path: Path) -> None:
    results = results_dir(tmp_path)
    keyed(tmp_path, lambda params: "k")
    for folder in (results, prefect_dir(tmp_path) / "cache-keys"):
        assert stat.S_IMODE(os.lstat(folder).st_mode) & 0o077 == 0, folder


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o757])
def test_a_results_folder_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    folder = results_dir(tmp_path)
    folder.chmod(mode)
    with pytest.raises(
        UnsafeResults, match=rf"{folder} may be written by others \(mode {mode:o}\).*chmod 700"
    ):
        results_dir(tmp_path)
    folder.chmod(0o755)  # readable by others is fine: reading runs nothing
    assert results_dir(tmp_path) == folder


def test_a_symlinked_cache_key_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "root"
    (root / "prefect").mkdir(parents=True)
    (root / "prefect" / "cache-keys").symlink_to(elsewhere)
    with pytest.raises(UnsafeResults, match="cache-keys is a symlink"):
        keyed(root, lambda params: "k")
