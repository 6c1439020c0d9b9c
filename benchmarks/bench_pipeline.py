"""Cold vs fully cached `mapl run`: the whole pipeline from an empty data root, then the same command again.

Each run is a fresh `mapl run` process (Prefect's embedded server included), timed end to end. The cached
run must execute no stage: ingest, proposals, training and evaluation come from Prefect's result cache and
construction finds its tables already committed. Target: cached ≤ 10% of cold. Prints a Markdown table, and
records each stage's time in the cold run (from its log) and the run's baseline-vs-MAPL rows
(`<root>/reports/<pipeline>/run-summary.json`).

    .venv/bin/python benchmarks/bench_pipeline.py [--config configs/pipeline_small.yaml] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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


_EVENT = re.compile(
    r"^(\d\d):(\d\d):(\d\d\.\d+) \| INFO +\| (?:Task|Flow) run '([^']+)' - (Beginning|Finished)"
)


def stage_seconds(log: Path) -> dict[str, float]:
    """Seconds from the previous stage's end (or the flow's start) to each stage's end, in the cold log.
    The stages run one after another, so that is each stage's own time."""
    out: dict[str, float] = {}
    last, flow = None, None
    for line in log.read_text(errors="replace").splitlines():
        if not (match := _EVENT.match(line)):
            continue
        h, m, sec, name, event = match.groups()
        now = int(h) * 3600 + int(m) * 60 + float(sec)
        if event == "Beginning" and last is None:
            last, flow = now, name
        elif event == "Finished" and last is not None:
            out["summary (flow end)" if name == flow else name] = round((now - last) % 86400, 1)
            last = now
    return out


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
    stages = stage_seconds(args.root / "cold.log")
    print("\n| stage (cold run) | seconds |\n|---|---:|")
    for name, seconds in stages.items():
        print(f"| {name} | {seconds:.0f} |")
    print(f"\nlogs: {args.root}/cold.log, {args.root}/cached.log")
    sys.path.insert(0, str(REPO))
    from mapl_core.pipeline.config import PipelineConfig

    name = PipelineConfig.from_yaml(args.config).name
    summary = json.loads((args.root / "reports" / name / "run-summary.json").read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": str(date.today()), "config": str(args.config), "cold_s": cold,
                                    "cached_s": cached, "ratio": cached / cold, "machine": platform.machine(),
                                    "cpus": os.cpu_count(), "cold_stages_s": stages,
                                    "summary": summary}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
