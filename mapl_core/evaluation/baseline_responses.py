"""Instruction-blind baseline responses: real assistant text that never saw the instructions.

Each IFEval prompt is paired with the final assistant turn of a real HH-RLHF "chosen" transcript, picked by
a hash of the prompt key, so the file is the same on every machine. Scoring it measures how often
instructions are followed by chance: the floor any instruction-following model must clear.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mapl_core.files import atomic_output, open_text

_ASSISTANT = "\n\nAssistant:"


def final_assistant_turn(transcript: str) -> str:
    """The text after the last "Assistant:" marker of an HH-RLHF transcript."""
    return transcript.rsplit(_ASSISTANT, 1)[-1].strip() if _ASSISTANT in transcript else transcript.strip()


def build_baseline(prompts_path: Path, hh_path: Path, out_path: Path) -> int:
    """Write `{"key", "prompt", "response"}` lines for every prompt; returns the number written."""
    with open_text(hh_path) as fh:
        pool = [
            t for t in (final_assistant_turn(json.loads(line)["chosen"]) for line in fh if line.strip()) if t
        ]
    if not pool:
        raise ValueError(f"{hh_path}: no assistant responses found")
    n = 0
    with (
        atomic_output(out_path) as tmp,
        prompts_path.open(encoding="utf-8") as src,
        tmp.open("w", encoding="utf-8") as dst,
    ):
        for line in src:
            if not line.strip():
                continue
            row = json.loads(line)
            digest = hashlib.sha256(str(row["key"]).encode()).digest()
            response = pool[int.from_bytes(digest[:8], "big") % len(pool)]
            dst.write(json.dumps({"key": row["key"], "prompt": row["prompt"], "response": response}) + "\n")
            n += 1
    return n
