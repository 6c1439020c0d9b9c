"""A generation cache that survives crashes: one JSON line per finished prompt, appended and flushed.

vLLM does not promise identical text when a prompt is generated again, so finished generations are kept,
keyed by (model revision, engine, messages, sampling parameters, seed), and never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_key(
    model_revision: str, engine: str, messages: list[dict[str, str]], params: dict[str, Any]
) -> str:
    payload = json.dumps([model_revision, engine, messages, params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class GenerationCache:
    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, str] = {}
        if path.is_file():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a crash: that prompt is simply generated again
                    self.entries[row["key"]] = row["text"]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def put_many(self, items: list[tuple[str, str]]) -> None:
        for key, text in items:
            self.entries[key] = text
            self._fh.write(json.dumps({"key": key, "text": text}, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
