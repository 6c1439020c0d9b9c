"""Cold vs fully cached `mapl run`: the whole pipeline from an empty data root, then the same command again.

Each run is a fresh `mapl run` process (Prefect's embedded server included), timed end to end. The cached
run must execute no stage: ingest, proposals, training and evaluation come from Prefect's result cache and
construction finds its tables already committed. Target: cached ≤ 10% of cold. Prints a Markdown table.

    .venv/bin/python benchmarks/bench_pipeline.py [--config configs/pipeline_small.yaml] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(config: Path, root: Path, log: Path) -> float:
    env = {**os.environ, "MAPL_DATA_ROOT": str(root)}
    t0 = time.perf_counter()
    with log.open("w") as fh:
        done = subprocess.run([str(Path(sys.executable).with_name("mapl")), "run", "--config", str(config)],
                              env=env, stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"mapl run failed (exit {done.returncode}); see {log}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "pipeline_small.yaml")
    ap.add_argument("--root", type=Path, default=REPO / ".mapl" / "bench" / "pipeline")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_pipeline.cpu.json")
    args = ap.parse_args()
    shutil.rmtree(args.root, ignore_errors=True)
    args.root.mkdir(parents=True)
    cold = run(args.config, args.root, args.root / "cold.log")
    cached = run(args.config, args.root, args.root / "cached.log")
    print(
        f"\n# bench_pipeline — {date.today()} — {platform.machine()}, {os.cpu_count()} CPUs, {args.config.name}\n"
    )
    print("| run | seconds | share of cold |")
    print("|---|---:|---:|")
    print(f"| cold (empty data root) | {cold:.1f} | 100% |")
    print(f"| fully cached re-run | {cached:.1f} | {100 * cached / cold:.1f}% |")
    print(f"\nlogs: {args.root}/cold.log, {args.root}/cached.log")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": str(date.today()), "config": str(args.config), "cold_s": cold,
                                    "cached_s": cached, "ratio": cached / cold}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
