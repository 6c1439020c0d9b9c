"""A model's revision: what keys the generation cache, the reference log-probs and the checkpoints' run."""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_revision(model: str) -> str:
    """A local folder: hash of its config and tokenizer files, and of its weight files' names, sizes and
    sampled contents; a hub id: as given."""
    path = Path(model)
    if not path.is_dir():
        return model
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix in (".json", ".jinja", ".txt", ".model"):
            h.update(f.name.encode() + f.read_bytes())
        elif f.suffix in (".safetensors", ".bin", ".gguf"):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
            h.update(_weight_samples(f))
    return h.hexdigest()[:16]


def _weight_samples(path: Path, samples: int = 16, size: int = 1 << 16) -> bytes:
    """Bytes from evenly spaced places in a weight file. Two fine-tunes of one base model have the same
    config, tokenizer and file sizes; their weights differ nearly everywhere, so a sample tells them apart
    without reading gigabytes (a full hash of an 8B model takes minutes)."""
    total = path.stat().st_size
    out = []
    with path.open("rb") as fh:
        for k in range(samples):
            fh.seek(k * total // samples)
            out.append(fh.read(size))
    return b"".join(out)
