"""Bad input ends in a clear error naming the file, not a traceback or a partial version (issue 32; the first kinds
of its corpus: an empty source file, and limits on generation lengths)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mapl_core.build import IngestFailed, build
from mapl_core.config import BuildConfig
from mapl_core.generation.protocol import MAX_NEW_TOKENS, SamplingConfig
from mapl_core.pipeline.config import EvaluationConfig
from mapl_core.storage.delta_tables import DatasetStore


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv"])
def test_an_empty_source_says_so_and_commits_nothing(name: str, tmp_path: Path) -> None:
    source = tmp_path / name
    source.write_text("")
    store = DatasetStore(tmp_path / "root")
    with pytest.raises(IngestFailed, match=rf"{name}: no rows read \(an empty file or split\?\)") as raised:
        build(BuildConfig(name="e", source=str(source)), store)
    assert store.names() == []  # not even an empty quarantine version
    assert "0 of 0" not in str(raised.value)  # what it said before


def test_generation_lengths_have_an_upper_bound() -> None:
    with pytest.raises(ValueError, match=f"outside 1..{MAX_NEW_TOKENS}"):
        SamplingConfig(max_new_tokens=10**6)
    with pytest.raises(ValueError, match="outside"):
        SamplingConfig(max_new_tokens=0)
    with pytest.raises(ValidationError, match="less than or equal"):
        EvaluationConfig(max_new_tokens=10**6)
    done = subprocess.run([sys.executable, "-m", "mapl_cli.main", "generate", "--prompts", "p.jsonl", "--out",
                           "o.jsonl", "--max-new-tokens", "1000000"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "max-new-tokens" in done.stderr and "Traceback" not in done.stderr
