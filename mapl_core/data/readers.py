"""Reading source rows from files (JSONL/JSON/Parquet/CSV, optionally gzipped) or a hub id."""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mapl_core.files import open_text


class SourceError(ValueError):
    """A source that cannot be read at all (missing file, unknown format, malformed JSON document, corrupt
    gzip stream, hub unreachable). A bad *row* is not one: it is quarantined with its reason at ingest."""


CSV_FIELD_LIMIT = 64 << 20
"""Python's csv module refuses fields over 128 KiB; longer ones are read and then quarantined by `max_chars`."""


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
    rows = _read_checked(path) if path.is_file() else _read_hub(source, split)
    for n, row in enumerate(rows, start=1):
        if limit is not None and n > limit:
            return
        yield n, row


def _read_checked(path: Path) -> Iterator[Any]:
    """`_read_file`, with a file that breaks off midway reported as a SourceError naming it.

    Undecodable bytes are not an error here: they are read as lone surrogates (`surrogateescape`) and the row
    holding them is quarantined at ingest, naming its field."""
    try:
        yield from _read_file(path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise SourceError(f"{path}: not a complete gzip file ({type(exc).__name__}: {exc})") from exc


def _read_file(path: Path) -> Iterator[Any]:
    kind = (_suffixes(path) or [""])[-1]
    if kind in (".jsonl", ".ndjson"):
        with open_text(path, errors="surrogateescape", encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        yield line.rstrip("\n")
    elif kind == ".json":
        with open_text(path, errors="surrogateescape", encoding="utf-8-sig") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise SourceError(
                    f"{path}: not a valid JSON document: line {exc.lineno}, column {exc.colno}: {exc.msg} "
                    "(one JSON object per line needs the .jsonl suffix)"
                ) from None
        if isinstance(data, dict):  # {"train": [...]} or {"data": [...]}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        yield from data
    elif kind == ".csv":
        csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
        with open_text(path, errors="surrogateescape", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            try:
                yield from reader
            except csv.Error as exc:
                raise SourceError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    elif kind == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
                yield from batch.to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
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
