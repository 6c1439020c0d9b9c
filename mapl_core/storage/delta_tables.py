"""Versioned dataset tables: Delta Lake (Parquet underneath) under the data root.

Each build writes a table in one atomic Delta commit, so a crash or kill mid-build leaves no new version
visible (data files written before the commit are unreferenced and invisible). Every commit carries mapl's
metadata under `mapl.*` keys: input versions, config hash, code version, seed, row count, fingerprint.
Old versions stay readable (`read(name, version)`).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from mapl_core.names import check_name, inside

META_PREFIX = "mapl."


class TableNotFound(LookupError):
    """No table (or no such version) under the data root."""


@dataclass(frozen=True)
class StagedTable:
    name: str
    path: Path
    schema: pa.Schema
    rows: int
    fingerprint: str


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    timestamp_ms: int
    rows: int | None
    metadata: dict[str, str]

    @property
    def contract(self) -> dict[str, Any] | None:
        """The data-contract result recorded in this version's commit metadata (None: none recorded)."""
        return json.loads(self.metadata.get("contract", "null") or "null")


class TableRef(NamedTuple):
    """One table version, `name@version` as users write it (version None: the latest). A tuple, so code that
    unpacks `(name, version)` keeps working; `str()` gives the written form back."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, ref: str | tuple[str, int | None]) -> TableRef:
        """`name`, `name@version`, or a (name, version) pair."""
        if not isinstance(ref, str):
            return cls(*ref)
        name, _, version = ref.partition("@")
        if version and not version.isdigit():
            raise ValueError(f"{ref!r}: the version after @ must be a number")
        return cls(name, int(version) if version else None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_ref(ref: str) -> TableRef:
    """`name` or `name@version` → TableRef(name, version or None)."""
    return TableRef.parse(ref)


class Fingerprint:
    """SHA-256 over the Arrow IPC bytes of every batch, in order: equal content ⇔ equal fingerprint."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, batch: pa.RecordBatch) -> None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        self._h.update(sink.getvalue().to_pybytes())

    def hexdigest(self) -> str:
        return self._h.hexdigest()[:32]


class Stager:
    """A table being written to its staging Parquet file, with its row count and fingerprint."""

    def __init__(self, name: str, schema: pa.Schema, path: Path):
        import pyarrow.parquet as pq

        self.name, self.schema, self.path = name, schema, path
        self.rows = 0
        self._fingerprint = Fingerprint()
        self._writer = pq.ParquetWriter(path, schema)

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        for b in batches:
            b = b.cast(self.schema) if b.schema != self.schema else b
            self._fingerprint.update(b)
            self.rows += b.num_rows
            self._writer.write_batch(b)

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write(pa.RecordBatch.from_pylist(rows, schema=self.schema))

    def close(self) -> StagedTable:
        self._writer.close()
        return StagedTable(self.name, self.path, self.schema, self.rows, self._fingerprint.hexdigest())

    def abort(self) -> None:
        self._writer.close()
        self.path.unlink(missing_ok=True)


class DatasetStore:
    """Delta tables under `<root>/tables/<name>`; `root` may be a local path or an object-store URI."""

    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None):
        self.root = str(root)
        self.storage_options = storage_options
        self._local = "://" not in self.root

    def cache_dir(self) -> Path:
        """Where caches that belong with these tables live (model proposals, reference log-probs): beside
        them for a local store, under the local data root for an object store."""
        if self._local:
            return Path(self.root) / "cache"
        from mapl_core.paths import data_root

        return data_root() / "cache"

    def uri(self, name: str) -> str:
        """Where table `name` lives; a name that is not a safe path component is refused (`names`)."""
        check_name(name, "table name")
        return (
            str(inside(self.root, "tables", name))
            if self._local
            else f"{self.root.rstrip('/')}/tables/{name}"
        )

    # ---- writing: stage (stream to a local Parquet file), validate, then commit atomically ------------
    def stager(self, name: str, schema: pa.Schema) -> Stager:
        """An open staging file for `name`: `write(batch)` as rows are built, then `close()`."""
        staging = Path(self.root if self._local else os.environ.get("TMPDIR", "/tmp"), "staging")
        staging.mkdir(parents=True, exist_ok=True)
        return Stager(name, schema, staging / f"{name}-{uuid.uuid4().hex}.parquet")

    def stage(self, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> StagedTable:
        """Stream `batches` into a staging file (flat memory), counting rows and fingerprinting content.

        Nothing is visible as a dataset version until `commit`; `discard` removes the staging file.
        """
        stager = self.stager(name, schema)
        try:
            for batch in batches:
                stager.write(batch)
        except BaseException:
            stager.abort()
            raise
        return stager.close()

    def commit(self, staged: StagedTable, metadata: dict[str, Any]) -> VersionInfo:
        """Make a staged table the new version of its table, in one atomic Delta commit.

        Local roots: the staged Parquet file is moved into the table folder and added by a Delta transaction
        (no re-encoding, memory independent of the table's size; until the commit the file is unreferenced
        and invisible). Object stores: the staged file is streamed through `write_deltalake`.
        """
        from deltalake import CommitProperties

        custom = {f"{META_PREFIX}{k}": _meta_str(v) for k, v in metadata.items()}
        custom[f"{META_PREFIX}rows"] = str(staged.rows)
        custom[f"{META_PREFIX}fingerprint"] = staged.fingerprint
        props = CommitProperties(custom_metadata=custom)
        try:
            if self._local:
                self._commit_file(staged, props)
            else:
                self._commit_stream(staged, props)
        finally:
            self.discard(staged)
        return self.versions(staged.name)[-1]

    def _commit_file(self, staged: StagedTable, props) -> None:
        from deltalake import DeltaTable, Schema
        from deltalake.transaction import AddAction, create_table_with_add_actions

        table_dir = Path(self.uri(staged.name))
        table_dir.mkdir(parents=True, exist_ok=True)
        part = f"part-{uuid.uuid4().hex}.parquet"
        os.replace(staged.path, table_dir / part)
        st = (table_dir / part).stat()
        add = AddAction(
            part, st.st_size, {}, int(st.st_mtime * 1000), True, json.dumps({"numRecords": staged.rows})
        )
        schema = Schema.from_arrow(staged.schema)
        if (table_dir / "_delta_log").is_dir():
            DeltaTable(str(table_dir)).create_write_transaction(
                [add], "overwrite", schema, commit_properties=props
            )
        else:
            create_table_with_add_actions(
                str(table_dir), schema, [add], mode="error", commit_properties=props
            )

    def _commit_stream(self, staged: StagedTable, props) -> None:
        import pyarrow.parquet as pq
        from deltalake import write_deltalake

        parquet = pq.ParquetFile(staged.path)
        reader = pa.RecordBatchReader.from_batches(staged.schema, parquet.iter_batches(batch_size=8192))
        write_deltalake(
            self.uri(staged.name),
            reader,
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=self.storage_options,
            commit_properties=props,
        )

    @staticmethod
    def discard(staged: StagedTable) -> None:
        Path(staged.path).unlink(missing_ok=True)

    # ---- reading ----------------------------------------------------------------------------------
    def _table(self, name: str, version: int | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.uri(name), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            raise TableNotFound(f"no table {name!r} under {self.root}") from None
        except Exception as exc:
            if version is not None and "version" in str(exc).lower():
                raise TableNotFound(f"table {name!r} has no version {version}") from None
            raise

    def names(self) -> list[str]:
        if not self._local:
            raise NotImplementedError("listing tables is supported for local data roots")
        base = Path(self.root, "tables")
        return sorted(p.name for p in base.iterdir() if (p / "_delta_log").is_dir()) if base.is_dir() else []

    def versions(self, name: str) -> list[VersionInfo]:
        out = []
        for entry in sorted(self._table(name).history(), key=lambda e: e["version"]):
            meta = {k[len(META_PREFIX) :]: str(v) for k, v in entry.items() if k.startswith(META_PREFIX)}
            rows = int(meta["rows"]) if "rows" in meta else None
            out.append(VersionInfo(name, entry["version"], entry.get("timestamp", 0), rows, meta))
        return out

    def read(self, name: str, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
        table = self._table(name, version)
        if self._local:
            import pyarrow.fs as pafs

            # a native Arrow filesystem avoids delta-rs issue 2184 (abort at interpreter exit)
            fs = pafs.SubTreeFileSystem(self.uri(name), pafs.LocalFileSystem())
            return table.to_pyarrow_table(columns=columns, filesystem=fs)
        return table.to_pyarrow_table(columns=columns)

    def to_pandas(self, ref: str | TableRef):
        name, version = TableRef.parse(ref)
        return self.read(name, version).to_pandas()

    def to_dataset(self, ref: str | TableRef):
        """The table as a Hugging Face `datasets.Dataset`."""
        import datasets

        name, version = TableRef.parse(ref)
        return datasets.Dataset(self.read(name, version))


def _meta_str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
