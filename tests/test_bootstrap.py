"""The set-up script is idempotent: with an unchanged lock a second run only re-checks (seconds)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_second_bootstrap_run_is_a_quick_no_op() -> None:
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", "scripts/bootstrap.sh"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert "is up to date" in proc.stdout
    assert time.monotonic() - t0 < 60


def test_lock_pins_torch_to_the_cpu_build_and_leaves_out_packages_that_break_vllm() -> None:
    lock = (ROOT / "requirements" / "lock-cpu.txt").read_text().splitlines()
    names = {line.split("==")[0].lower() for line in lock if "==" in line and not line.startswith("#")}
    assert not names & {"torch", "torchvision", "torchaudio", "torchcodec", "triton"}
    assert all("==" in line for line in lock if line.strip() and not line.startswith("#"))
    assert "torch==2.13.0" in (ROOT / "requirements" / "constraints-cpu.txt").read_text()
