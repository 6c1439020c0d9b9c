"""Prefect's lock-manager protocol on OS file locks (`mapl_core.locking`), safe against `kill -9`.

Prefect's `FileSystemLockManager` writes a lock file with no expiry while a SERIALIZABLE task computes; if that
process is killed the file stays, and every later run of the same stage waits forever. Judging such a file
stale by its PID fails when the PID is reused, and removing it races a new holder. Here a lock *is* an
`flock` held on `<key>.lock` for as long as its holder keeps the descriptor open: the kernel releases it when
the holder dies, on this host or any host sharing the folder through a file system with `flock`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from mapl_core.locking import release, try_lock

POLL_S = 0.2


class FlockLockManager:
    def __init__(self, lock_files_directory: Path) -> None:
        self.directory = Path(lock_files_directory)
        self._held: dict[str, tuple[int, str]] = {}  # key → (descriptor, holder), in this process
        self._guard = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.lock"

    def _try(self, key: str, holder: str) -> bool:
        with self._guard:
            mine = self._held.get(key)
            if mine is not None:
                return mine[1] == holder
            fd = try_lock(self._path(key))
            if fd is None:
                return False
            self._held[key] = (fd, holder)
            return True

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:  # fmt: skip
        """`hold_timeout` is not needed: a lock lasts while its holder's process does, and no longer."""
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while not self._try(key, holder):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:  # fmt: skip
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while not self._try(key, holder):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    def release_lock(self, key: str, holder: str) -> None:
        with self._guard:
            mine = self._held.get(key)
            if mine is None or mine[1] != holder:
                raise ValueError(f"Cannot release lock for {key!r}: it is not held by {holder!r}")
            del self._held[key]
            release(mine[0])

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        with self._guard:
            if key in self._held:
                return True
        if not self._path(key).exists():
            return False
        fd = try_lock(self._path(key))
        if fd is None:
            return True
        release(fd)
        return False

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._guard:
            mine = self._held.get(key)
        return mine is not None and mine[1] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True
