"""Build throughput: original pairs per second through ingest → intra + inter → contracts → commit.

The shipped HH-RLHF split is replicated to `--pairs` rows; every replica is made unique (a marker in the
first human turn and at the end of both responses), so no measurement cache can serve a later replica.
Reports pairs/s and peak RSS of the main process and of the largest worker.

    .venv/bin/python benchmarks/bench_build.py --pairs 100000 --workers 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from data_contracts import CONTRACTS
from mapl_core.build import build
from mapl_core.config import BuildConfig, IngestConfig
from mapl_core.paths import shared_data_dir
from mapl_core.storage.delta_tables import DatasetStore


def replicate(src: Path, n: int, out: Path) -> None:
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    with out.open("w", encoding="utf-8") as dst:
        for i in range(n):
            row = rows[i % len(rows)]
            tag = f" [{i}]"
            chosen = row["chosen"].replace("\n\nHuman: ", "\n\nHuman: " + tag.strip() + " ", 1) + tag
            rejected = row["rejected"].replace("\n\nHuman: ", "\n\nHuman: " + tag.strip() + " ", 1) + tag
            dst.write(json.dumps({"chosen": chosen, "rejected": rejected}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1000)
    args = ap.parse_args()

    src = shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    work = Path(tempfile.mkdtemp(prefix="mapl-bench-build-"))
    try:
        data = work / "hh_replicated.jsonl"
        replicate(src, args.pairs, data)
        cfg = BuildConfig(name="bench", source=str(data), ingest=IngestConfig(), batch_size=args.batch_size)
        t0 = time.perf_counter()
        outcome = build(cfg, DatasetStore(work / "root"), contracts=CONTRACTS, workers=args.workers)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    main_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    r = outcome.ingest
    print(
        f"# bench_build — {date.today()} — {platform.machine()}, Python {platform.python_version()}, {args.workers} workers"
    )
    print()
    print(
        "| source rows | pairs | quarantined | seconds | pairs/s | peak RSS main (MiB) | peak RSS worker (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r.rows_read:,} | {r.pairs:,} | {r.quarantined:,} | {seconds:.1f} | {r.pairs / seconds:,.1f} | {main_rss:,.0f} | {child_rss:,.0f} |"
    )
    print()
    print("| table | rows |")
    print("|---|---:|")
    for v in outcome.versions.values():
        print(f"| {v.name} | {v.rows:,} |")


if __name__ == "__main__":
    main()
