"""`mapl build`: ingest → intra + inter construction → data contracts → atomic commits.

The two halves also run alone (the pipeline's stages): `stage="ingest"` writes only the original and
quarantine tables; `stage="construct"` reads a committed original table version (`original=`, e.g.
`("hh_original", 3)`) and writes the intra, inter and comparison tables from it.

Plain Python (no orchestrator): the Prefect tasks and the CLI call `build`. Tables are staged first, checked
by the contracts (`contracts` passed in, normally `data_contracts.CONTRACTS`: row checks run in the workers), and only then committed,
each in one atomic Delta commit. A build that fails leaves no new version of any table behind, except the
quarantine table when too many source rows are bad (so the bad rows can be inspected).
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from mapl_core.code_version import code_version
from mapl_core.config import BuildConfig
from mapl_core.construction.inter import build_inter
from mapl_core.construction.intra import build_intra, build_intra_mirrored
from mapl_core.data import schema
from mapl_core.data.ingest import IngestReport, Pair, Quarantined, ingest, split_of
from mapl_core.data.readers import read_rows
from mapl_core.generation.proposals import CandidateProposer, ModelCandidates, open_proposer
from mapl_core.redaction import redacted
from mapl_core.storage.delta_tables import DatasetStore, StagedTable, TableRef, VersionInfo

KINDS = {
    "original": schema.ORIGINAL,
    "quarantine": schema.QUARANTINE,
    "intra": schema.INTRA,
    "inter": schema.INTER,
    "inter_comparisons": schema.INTER_COMPARISONS,
}


class IngestFailed(RuntimeError):
    """Too many source rows are bad; the quarantine table holds them with reasons."""


class ContractFailed(RuntimeError):
    """A data contract failed; nothing was committed. `reports` lists the validation reports written."""

    def __init__(self, message: str, reports: list[Path]):
        super().__init__(message)
        self.reports = reports


@dataclass
class ContractResult:
    table: str
    success: bool
    summary: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    report_json: Path | None = None
    report_md: Path | None = None


class Contracts(Protocol):
    """Data contracts as the build runs them: rows checked where they are built, then the whole table."""

    def check_rows(self, kind: str, rows: list[dict[str, Any]], cfg: BuildConfig) -> dict[str, Any]: ...

    def finish(
        self,
        kind: str,
        staged: StagedTable,
        batches: list[dict[str, Any]],
        cfg: BuildConfig,
        report_dir: Path,
    ) -> ContractResult: ...


@dataclass
class BuildOutcome:
    ingest: IngestReport
    versions: dict[str, VersionInfo]
    contracts: dict[str, ContractResult]
    seconds: float


def table_name(cfg: BuildConfig, kind: str) -> str:
    return f"{cfg.name}_{kind}"


def source_fingerprint(source: str) -> str:
    """SHA-256 of a local source file (hub ids are recorded by name and split)."""
    path = Path(source)
    if not path.is_file():
        return "hub"
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


Built = dict[str, Any]
INGEST_KINDS = ("original", "quarantine")
CONSTRUCT_KINDS = ("intra", "inter", "inter_comparisons")
STAGES = {"all": INGEST_KINDS + CONSTRUCT_KINDS, "ingest": INGEST_KINDS, "construct": CONSTRUCT_KINDS}


Candidates = dict[str, tuple[ModelCandidates, ModelCandidates]]
"""Model proposals per pair id: (for the chosen response, for the rejected one)."""


def construct_batch(
    pairs: list[tuple[Pair, str]],
    cfg: BuildConfig,
    contracts: Contracts | None = None,
    candidates: Candidates | None = None,
) -> Built:
    """Rows of every constructed table for a batch (a pure function of its input), and, with `contracts`,
    each table's row-level contract results for those rows."""
    intra, inter, comparisons = [], [], []
    for pair, split in pairs:
        model = (candidates or {}).get(pair.pair_id)
        if cfg.construction.intra_pairing == "mirrored":
            intra += build_intra_mirrored(pair, split, cfg.construction, cfg.seed, model or ())
        else:
            for i, side in enumerate(("chosen", "rejected")):
                row = build_intra(pair, split, side, cfg.construction, cfg.seed, model[i] if model else None)
                if row is not None:
                    intra.append(row)
        rows, comps = build_inter(pair, split, cfg.construction, cfg.seed, model or ())
        inter += rows
        comparisons += comps
    built: Built = {
        "pairs": len(pairs),
        "rows": {"intra": intra, "inter": inter, "inter_comparisons": comparisons},
    }
    if contracts is not None:
        built["checks"] = {
            kind: contracts.check_rows(kind, rows, cfg) for kind, rows in built["rows"].items()
        }
    return built


def construct_job(
    args: tuple[list[tuple[Pair, str]], BuildConfig, Contracts | None, Candidates | None],
) -> Built:
    return construct_batch(*args)


def propose_batch(proposer: CandidateProposer, pairs: list[tuple[Pair, str]]) -> Candidates:
    """The model's candidates for a batch's pairs; past the proposer's `limit`, none (rules decide)."""
    pairs = pairs[: proposer.take(len(pairs))]
    got = proposer.propose([(p.prompt[-1]["content"], r) for p, _ in pairs for r in (p.chosen, p.rejected)])
    return {p.pair_id: (got[2 * i], got[2 * i + 1]) for i, (p, _) in enumerate(pairs)}


def _batches(it: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(it, size)):
        yield chunk


def build(
    cfg: BuildConfig,
    store: DatasetStore,
    contracts: Contracts | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    proposer: CandidateProposer | None = None,
    stage: str = "all",
    original: tuple[str, int] | None = None,
    metadata: dict[str, Any] | None = None,
    batch_map: Callable[[Iterator], Iterator[Built]] | None = None,
) -> BuildOutcome:
    """Build every table for `cfg` (or one `stage`'s) and commit them; see the module docstring.

    With `cfg.proposals`, a language model proposes candidate arguments for every response first (in this
    process, batch by batch, cached); pass `proposer` to reuse an open engine. `metadata` is added to every
    commit. `batch_map` runs the construction jobs (`construct_job` over an iterator, results in order), e.g.
    as tasks on a Dask cluster; by default `workers` local processes run them."""
    t0 = time.perf_counter()
    if stage not in STAGES:
        raise ValueError(f"unknown build stage {stage!r} ({' | '.join(STAGES)})")
    if (stage == "construct") != (original is not None):
        raise ValueError("stage 'construct' reads a committed original table: pass original=(name, version)")
    if stage == "ingest":
        proposer = None
    own_proposer = stage != "ingest" and cfg.proposals is not None and proposer is None
    if own_proposer:
        proposer = open_proposer(
            cfg.proposals, store.cache_dir() / "proposals.jsonl", cfg.construction.max_end_phrase_words
        )
    try:
        run = BuildRun(
            cfg, store, contracts, stage, original, metadata or {}, proposer if cfg.proposals else None
        )
        with build_lock(store, cfg):
            return run.execute(workers, progress, batch_map, t0)
    finally:
        if own_proposer:
            proposer.cache.close()


def build_lock(store: DatasetStore, cfg: BuildConfig) -> contextlib.AbstractContextManager:
    """One build of a name per data root at a time (a second `mapl build`, or a build beside `mapl run`, waits
    and says for whom): two would stage and commit the same tables in turns. A remote store has no lock here."""
    if "://" in store.root:
        return contextlib.nullcontext()
    from mapl_core.locking import exclusive

    lock = Path(store.root) / "locks" / f"build-{cfg.name}.lock"
    return exclusive(lock, f"the build {cfg.name!r} under {store.root}")


@dataclass
class BuildRun:
    """One build, as steps that read in order: source batches → construction jobs on an executor (serial,
    process pool or a `batch_map` such as Dask) → data contracts → one commit per table."""

    cfg: BuildConfig
    store: DatasetStore
    contracts: Contracts | None
    stage: str
    original: tuple[str, int] | None
    metadata: dict[str, Any]
    proposer: CandidateProposer | None
    report: IngestReport = field(init=False)
    stagers: dict[str, Any] = field(init=False)
    checks: dict[str, list[dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        self.kinds = STAGES[self.stage]
        self.report = IngestReport(self.cfg.source)
        self.stagers = {k: self.store.stager(table_name(self.cfg, k), KINDS[k]) for k in self.kinds}
        self.checks = {kind: [] for kind in self.kinds}

    def execute(self, workers: int, progress, batch_map, t0: float) -> BuildOutcome:
        staged = self.stage_tables(workers, progress, batch_map)
        meta = self.commit_metadata()
        self.refuse_bad_ingest(staged, meta)
        results = self.run_contracts(staged)
        versions = self.commit(staged, meta, results)
        return BuildOutcome(self.report, versions, results, time.perf_counter() - t0)

    def source_batches(self) -> Iterator[tuple[list[tuple[Pair, str]], list]]:
        """(pairs with their split, quarantined rows) per batch: from the source, or from a committed original
        table version under stage "construct"."""
        cfg = self.cfg
        if self.original is not None:
            return table_batches(self.store, self.original, cfg.batch_size, self.report)
        rows = read_rows(cfg.source, cfg.source_split, cfg.ingest.limit)
        return _ingest_batches(ingest(rows, cfg.source, cfg.shape, cfg.ingest, self.report), cfg)

    def pair_batches(self) -> Iterator[tuple[list[tuple[Pair, str]], Candidates | None]]:
        """Each source batch's original and quarantined rows staged (and row-checked), then its pairs with the
        model's proposals when there is a proposer."""
        for pairs, bad in self.source_batches():
            original_rows = [{**p.__dict__, "split": s} for p, s in pairs]
            for kind, rows in (("quarantine", bad), ("original", original_rows)):
                if kind not in self.stagers:
                    continue
                self.stagers[kind].write_rows(rows)
                if self.contracts is not None and rows:
                    self.checks[kind].append(self.contracts.check_rows(kind, rows, self.cfg))
            proposed = propose_batch(self.proposer, pairs) if self.proposer is not None and pairs else None
            yield pairs, proposed

    def stage_tables(self, workers: int, progress, batch_map) -> dict[str, StagedTable]:
        """Every table written to staging (not yet visible); on any failure the staged files are removed."""
        try:
            jobs = ((batch, self.cfg, self.contracts, cands) for batch, cands in self.pair_batches())
            if self.stage == "ingest":
                for batch, _ in self.pair_batches():
                    if progress is not None:
                        progress(len(batch))
            elif batch_map is not None:
                _drain(batch_map(jobs), self.stagers, self.checks, progress)
            elif workers > 1:
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                    _drain(_bounded_map(pool, jobs, window=2 * workers), self.stagers, self.checks, progress)
            else:
                _drain(map(construct_job, jobs), self.stagers, self.checks, progress)
            return {kind: s.close() for kind, s in self.stagers.items()}
        except BaseException:
            for s in self.stagers.values():
                s.abort()
            raise

    def commit_metadata(self) -> dict[str, Any]:
        cfg, report = self.cfg, self.report
        meta = {
            "config_hash": cfg.config_hash(),
            "config": redacted(cfg.model_dump(mode="json")),  # no credentials a server URL may carry
            "code_version": code_version(),
            "seed": cfg.seed,
            "inputs": {
                "source": cfg.source,
                "split": cfg.source_split,
                "sha256": source_fingerprint(cfg.source),
            },
            "ingest": {
                "rows_read": report.rows_read,
                "pairs": report.pairs,
                "quarantined": report.quarantined,
            },
            **self.metadata,
        }
        if self.proposer is not None:
            meta["proposals"] = self.proposer.describe()
        if self.original is not None:
            meta["inputs"] = {
                "table": str(TableRef(*self.original)),
                self.original[0]: self.original[1],
            }
        return meta

    def refuse_bad_ingest(self, staged: dict[str, StagedTable], meta: dict[str, Any]) -> None:
        """Too many bad source rows (or none read): commit the quarantine table alone, for inspection, and fail."""
        cfg, report = self.cfg, self.report
        if self.original is not None or (
            report.rows_read and report.bad_fraction <= cfg.ingest.max_bad_fraction
        ):
            return
        if not report.rows_read:  # nothing to inspect: say so plainly, commit nothing
            for s in staged.values():
                self.store.discard(s)
            raise IngestFailed(f"{cfg.source}: no rows read (an empty file or split?). Nothing was built.")
        quarantine = self.store.commit(staged.pop("quarantine"), meta)
        for s in staged.values():
            self.store.discard(s)
        reasons = ", ".join(f"{n} × {r}" for r, n in sorted(report.reasons.items(), key=lambda x: -x[1])[:5])
        raise IngestFailed(
            f"{cfg.source}: {report.quarantined} of {report.rows_read} rows are bad "
            f"({report.bad_fraction:.1%} > max_bad_fraction {cfg.ingest.max_bad_fraction:.1%}); "
            f"reasons: {reasons or 'no rows'}. Nothing was built; the bad rows are in table "
            f"{quarantine.name}@{quarantine.version}."
        )

    def run_contracts(self, staged: dict[str, StagedTable]) -> dict[str, ContractResult]:
        """Whole-table checks on every staged table; any failure discards them all and raises."""
        if self.contracts is None:
            return {}
        report_dir = Path(self.store.root) / "reports" / self.cfg.name / self.cfg.config_hash()
        results = {
            kind: self.contracts.finish(kind, st, self.checks[kind], self.cfg, report_dir)
            for kind, st in staged.items()
        }
        failed = [c for c in results.values() if not c.success]
        if failed:
            for s in staged.values():
                self.store.discard(s)
            reports = [p for c in failed for p in (c.report_json, c.report_md) if p is not None]
            raise ContractFailed("\n\n".join(c.summary for c in failed), reports)
        return results

    def commit(
        self, staged, meta: dict[str, Any], results: dict[str, ContractResult]
    ) -> dict[str, VersionInfo]:
        """One atomic commit per table, each recording its contract result and its input versions."""
        versions: dict[str, VersionInfo] = {}
        original_version = self.original[1] if self.original is not None else None
        for kind in self.kinds:
            extra: dict[str, Any] = {"kind": kind}
            if kind in results:
                extra["contract"] = {"success": results[kind].success, "metrics": results[kind].metrics}
            if original_version is not None:
                extra["inputs"] = {**meta["inputs"], table_name(self.cfg, "original"): original_version}
            versions[kind] = self.store.commit(staged[kind], {**meta, **extra})
            if kind == "original":
                original_version = versions[kind].version
        return versions


def _ingest_batches(items: Iterator, cfg: BuildConfig) -> Iterator[tuple[list[tuple[Pair, str]], list]]:
    """Source rows → (valid pairs with their split, quarantined rows), batch by batch."""
    for chunk in _batches(items, cfg.batch_size):
        pairs, bad = [], []
        for item in chunk:
            if isinstance(item, Quarantined):
                bad.append(item.__dict__)
            else:
                pairs.append((item, split_of(item.pair_id, cfg.ingest.split_fractions)))
        yield pairs, bad


def table_batches(
    store: DatasetStore, original: tuple[str, int], size: int, report: IngestReport
) -> Iterator[tuple[list[tuple[Pair, str]], list]]:
    """The pairs of a committed original table version, with the split they were given at ingest."""
    df = store.to_pandas(TableRef(*original))
    report.rows_read = report.pairs = len(df)
    fields = ("pair_id", "prompt", "chosen", "rejected", "source", "source_row")
    records = df.to_dict("records")
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        pairs = [
            (
                Pair(**{f: r[f] for f in fields} | {"prompt": [dict(m) for m in r["prompt"]]}),
                r["split"],
            )
            for r in chunk
        ]
        yield pairs, []


def _bounded_map(pool: ProcessPoolExecutor, jobs: Iterator, window: int) -> Iterator[Built]:
    """Results in order, with at most `window` batches in flight.

    The source is read only as fast as the workers consume it (`Pool.imap` would read all of it at once).
    A worker that dies (killed, out of memory) raises BrokenProcessPool instead of hanging the build.
    """
    pending: deque = deque()
    for job in jobs:
        pending.append(pool.submit(construct_job, job))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _drain(results: Iterator[Built], stagers, checks, progress) -> None:
    for built in results:
        for kind, rows in built["rows"].items():
            stagers[kind].write_rows(rows)
            if "checks" in built:
                checks[kind].append(built["checks"][kind])
        if progress is not None:
            progress(built["pairs"])
