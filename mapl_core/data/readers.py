"""Reading source rows from files (JSONL/JSON/Parquet/CSV, optionally gzipped) or a hub id."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mapl_core.files import open_text


class SourceError(ValueError):
    """A source that cannot be read at all (missing file, unknown format, hub unreachable)."""


def _suffixes(path: Path) -> list[str]:
    s = [x.lower() for x in path.suffixes]
    return s[:-1] if s and s[-1] == ".gz" else s


def read_rows(source: str, split: str = "train", limit: int | None = None) -> Iterator[tuple[int, Any]]:
    """(1-based row number, row) for every row of `source`; a row that is not valid JSON is a str.

    `source` is a local file, or otherwise a hub id read with `datasets.load_dataset(source, split=split)`
    (offline, that only works for ids already in the local cache).
    """
    path = Path(source)
    # a folder is read by `datasets.load_dataset`, exactly like a hub id (that is how the hub path is tested)
    rows = _read_file(path) if path.is_file() else _read_hub(source, split)
    for n, row in enumerate(rows, start=1):
        if limit is not None and n > limit:
            return
        yield n, row


def _read_file(path: Path) -> Iterator[Any]:
    kind = (_suffixes(path) or [""])[-1]
    if kind in (".jsonl", ".ndjson"):
        with open_text(path, errors="surrogateescape") as fh:
            for line in fh:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        yield line.rstrip("\n")
    elif kind == ".json":
        with open_text(path, errors="surrogateescape") as fh:
            data = json.load(fh)
        if isinstance(data, dict):  # {"train": [...]} or {"data": [...]}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        yield from data
    elif kind == ".csv":
        with open_text(path, errors="surrogateescape") as fh:
            yield from csv.DictReader(fh)
    elif kind == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    else:
        raise SourceError(
            f"{path}: unknown format {kind or '(no suffix)'}; use .jsonl, .json, .csv or .parquet"
        )


def _read_hub(source: str, split: str) -> Iterator[Any]:
    if not Path(source).is_dir() and _looks_like_path(source):
        raise SourceError(f"{source}: no such file, and not a hub id (expected owner/name)")
    try:
        import datasets

        ds = datasets.load_dataset(source, split=split, streaming=True)
    except Exception as exc:  # offline, missing, or private: all say the same to the user
        raise SourceError(f"{source}: could not load from the hub ({type(exc).__name__}: {exc})") from exc
    yield from ds


def _looks_like_path(source: str) -> bool:
    """Hub ids are `owner/name`; anything else that does not exist is a missing local file."""
    return source.startswith(("/", ".", "~")) or bool(Path(source).suffix) or source.count("/") != 1
