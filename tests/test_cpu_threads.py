"""vLLM's CPU threads (mapl_core.generation.cpu_threads): bound to the CPUs the process may use, on small CPU
machines, and never over the user's own settings."""

from __future__ import annotations

from mapl_core.generation.cpu_threads import BIND, MAX_CPUS, RESERVED, cpu_ranges, vllm_cpu_threads


def test_cpu_ids_become_vllm_ranges() -> None:
    assert cpu_ranges([0, 1]) == "0-1"
    assert cpu_ranges([3]) == "3"
    assert cpu_ranges([5, 0, 2, 1]) == "0-2,5"
    assert cpu_ranges([0, 2, 4, 5, 6, 9]) == "0,2,4-6,9"


def test_every_usable_cpu_computes_unless_the_user_said_otherwise() -> None:
    assert vllm_cpu_threads({}, cpus=[2, 3]) == {BIND: "2-3", RESERVED: "0"}  # the affinity, not 0-1
    assert vllm_cpu_threads({BIND: "0"}, cpus=[0, 1]) == {}
    assert vllm_cpu_threads({RESERVED: "1"}, cpus=[0, 1]) == {}
    assert vllm_cpu_threads({}, cpus=range(MAX_CPUS + 1)) == {}  # a large machine keeps vLLM's default


def test_this_process_gets_a_binding_from_its_own_affinity() -> None:
    import os

    import torch

    got = vllm_cpu_threads({})
    usable = sorted(os.sched_getaffinity(0))
    if torch.cuda.is_available() or len(usable) > MAX_CPUS:
        assert got == {}
    else:
        assert got == {BIND: cpu_ranges(usable), RESERVED: "0"}


def test_cpu_engines_prefill_whole_prompts_within_the_model_context() -> None:
    from mapl_core.generation.engines import CPU_MAX_MODEL_LEN, cpu_engine_settings

    default = cpu_engine_settings(None, 8192)
    assert default["enable_chunked_prefill"] is False
    assert default["max_model_len"] == default["max_num_batched_tokens"] == CPU_MAX_MODEL_LEN
    assert cpu_engine_settings(None, 512)["max_model_len"] == 512  # a model with a shorter context
    assert cpu_engine_settings(2048, 8192)["max_num_batched_tokens"] == 2048  # the caller's length wins
