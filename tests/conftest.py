"""Test set-up: offline, deterministic, NLTK Punkt from the shared data (or the project's data folder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _punkt() -> None:
    from mapl_core.nltk_data import ensure_punkt

    ensure_punkt()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny random Llama with its own tokenizer (tests/tiny_model.py), once per test module."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict:
    """The four tables of a small HH build (24 source rows, no contracts) as DataFrames, for training tests.

    `MAPL_TEST_TABLES` names a folder of Parquet exports of this same build (benchmarks/gpu_check/): the
    training tests then run on a machine that has the training stack but not the build's (deltalake)."""
    from mapl_core.training.run import TABLE_KINDS

    exported = os.environ.get("MAPL_TEST_TABLES")
    if exported:
        import pyarrow.parquet as pq

        return {k: pq.read_table(Path(exported) / f"{k}.parquet").to_pandas() for k in TABLE_KINDS}
    store = build_training_tables(tmp_path_factory.mktemp("root"))
    return {k: store.to_pandas(f"t_{k}") for k in TABLE_KINDS}


def build_training_tables(root: Path):
    """Commit the `tables` fixture's build (`t_*`) under `root`; returns its DatasetStore. Also what
    benchmarks/gpu_check/prepare.sh exports."""
    from corpus import HH_TEST

    from mapl_core.build import build
    from mapl_core.config import BuildConfig, IngestConfig
    from mapl_core.storage.delta_tables import DatasetStore

    store = DatasetStore(root)
    build(BuildConfig(name="t", source=str(HH_TEST), ingest=IngestConfig(limit=24), batch_size=24), store)
    return store
