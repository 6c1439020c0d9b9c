"""A generation cache that survives crashes: one JSON line per finished prompt, appended and flushed.

vLLM does not promise identical text when a prompt is generated again, so finished generations are kept,
keyed by (model revision, engine, messages, sampling parameters, seed), and never recomputed.

Why the care: a process killed mid-write leaves a torn last line (possibly half a UTF-8 character). Appending
after it would glue the next entry onto it and lose that entry for good, and decoding it would fail every
later load. So a torn tail is cut off (on open and before every write), lines are read as bytes and decoded
one by one, and each batch goes to the file in one write under an exclusive `flock`, so concurrent writers
(two runs on one data root) never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 16


def cache_key(
    model_revision: str, engine: str, messages: list[dict[str, str]], params: dict[str, Any]
) -> str:
    payload = json.dumps([model_revision, engine, messages, params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _complete_length(fd: int) -> int:
    """Bytes up to and including the file's last newline (0 when it has none)."""
    end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - _CHUNK)
        at = os.pread(fd, end - start, start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


class GenerationCache:
    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, str] = {}
        self.torn_bytes = 0  # how much a crashed writer had left behind (cut off on open)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        with self._locked():
            self.torn_bytes = self._cut_torn_tail()
            with open(path, "rb") as fh:
                for line in fh:
                    try:
                        row = json.loads(line.decode("utf-8", "surrogatepass"))
                        self.entries[row["key"]] = row["text"]
                    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                        continue  # not an entry: that prompt is simply generated again

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _cut_torn_tail(self) -> int:
        """Truncate a last line without its newline (a writer killed mid-write); the bytes cut."""
        size = os.fstat(self._fd).st_size
        keep = _complete_length(self._fd)
        if keep < size:
            os.ftruncate(self._fd, keep)
        return size - keep

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def put_many(self, items: list[tuple[str, str]]) -> None:
        if not items:
            return
        payload = b"".join(
            json.dumps({"key": k, "text": t}, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"
            for k, t in items
        )
        with self._locked():
            self._cut_torn_tail()
            view = memoryview(payload)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        self.entries.update(items)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
