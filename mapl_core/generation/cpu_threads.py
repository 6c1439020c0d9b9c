"""vLLM's CPU threads: mapl binds its compute threads to every CPU the process may use, on small CPU machines.

Why: by default vLLM's CPU backend keeps one core for its scheduler and computes on the rest. On the 2-core
machines this project runs on that halves the compute for little scheduling; binding both cores to the compute
threads with none reserved was measured faster (docs/experiments/bench_generate.md). The binding comes from the
CPUs this process may use (its affinity), not a fixed range, and a user's own settings always win.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

BIND, RESERVED = "VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_NUM_OF_RESERVED_CPU"
MAX_CPUS = (
    8  # above this a reserved scheduler core costs under an eighth of the compute: vLLM's default stays
)


def cpu_ranges(cpus: Iterable[int]) -> str:
    """CPU ids as vLLM's bind syntax: [0, 1, 2, 5] -> "0-2,5"."""
    out: list[str] = []
    ids = sorted(set(cpus))
    start = prev = ids[0]
    for cpu in [*ids[1:], None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        out.append(f"{start}-{prev}" if prev > start else str(start))
        if cpu is not None:
            start = prev = cpu
    return ",".join(out)


def vllm_cpu_threads(
    environ: Mapping[str, str] | None = None, cpus: Iterable[int] | None = None
) -> dict[str, str]:
    """The settings to add for a vLLM engine on this machine's CPUs: {} where the user set either variable, where
    CUDA is available, or where the process may use more than `MAX_CPUS` CPUs."""
    environ = os.environ if environ is None else environ
    if BIND in environ or RESERVED in environ:
        return {}
    if cpus is None:
        import torch

        if torch.cuda.is_available():
            return {}
        cpus = os.sched_getaffinity(0)
    cpus = sorted(cpus)
    if not cpus or len(cpus) > MAX_CPUS:
        return {}
    return {BIND: cpu_ranges(cpus), RESERVED: "0"}
