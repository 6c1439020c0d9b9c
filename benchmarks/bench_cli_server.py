"""A fully cached `mapl stage construct`: with Prefect's temporary server (started by each command) against the
server `mapl ui` runs for the data root (found through `<data root>/prefect/server.json`).

Builds the recipe's tables once (ingest, then construction), then times the cached command `--repeat` times on
each path, each a fresh process timed end to end. Prints a Markdown table and writes JSON.

    .venv/bin/python benchmarks/bench_cli_server.py [--config configs/pipeline_small.yaml] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAPL = str(Path(sys.executable).with_name("mapl"))


def timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([MAPL, *args], env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"mapl {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0, done.stderr


def serve_ui(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen([MAPL, "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
            return ui, port
        except OSError:
            if time.time() > deadline:
                raise SystemExit("mapl ui did not come up in 180 s") from None
            time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "pipeline_small.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_cli_server.cpu.json")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mapl-bench-cli-"))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(MAPL_DATA_ROOT=str(root), HF_HUB_OFFLINE="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    stage = ["stage", "construct", "--config", str(args.config)]
    cold = timed(["stage", "ingest", "--config", str(args.config)], env)[0] + timed(stage, env)[0]
    temporary = [timed(stage, env)[0] for _ in range(args.repeat)]
    ui, port = serve_ui(env)
    try:
        served = []
        for _ in range(args.repeat):
            seconds, stderr = timed(stage, env)
            assert f"127.0.0.1:{port}" in stderr, "the command did not use mapl ui's server"
            served.append(seconds)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    rows = [("cold: ingest + construct, temporary server", [cold]), ("cached, temporary server", temporary),
            ("cached, `mapl ui`'s server", served)]  # fmt: skip
    base = statistics.median(temporary)
    print(
        f"# bench_cli_server — {date.today()} — {platform.machine()}, {os.cpu_count()} CPUs, {args.config.name}\n"
    )
    print(
        "| `mapl stage construct` | runs | median s | ratio to the temporary server |\n|---|---:|---:|---:|"
    )
    for name, times in rows:
        print(
            f"| {name} | {len(times)} | {statistics.median(times):.1f} | {statistics.median(times) / base:.2f}× |"
        )
    record = {"date": str(date.today()), "machine": platform.machine(), "cpus": os.cpu_count(),
              "config": str(args.config.relative_to(REPO)), "seconds": {n: t for n, t in rows}}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
