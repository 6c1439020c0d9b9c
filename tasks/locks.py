"""Prefect's file locks, made safe against `kill -9`.

Prefect's `FileSystemLockManager` writes a lock file with no expiry while a SERIALIZABLE task computes; if
that process is killed, the file stays and every later run of the same stage waits forever. This manager
also records the holder's host and PID, and treats a lock whose holder process on this host is gone as
stale (removed). Locks held from other hosts are honoured as before.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from prefect.locking.filesystem import FileSystemLockManager

from mapl_core.files import process_running

HOST = socket.gethostname()


class StaleSafeLockManager(FileSystemLockManager):
    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:  # fmt: skip
        got = super().acquire_lock(key, holder, acquire_timeout, hold_timeout)
        if got:
            self._stamp(key)
        return got

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:  # fmt: skip
        got = await super().aacquire_lock(key, holder, acquire_timeout, hold_timeout)
        if got:
            self._stamp(key)
        return got

    def _stamp(self, key: str) -> None:
        path = Path(self._lock_path_for_key(key))
        info: dict[str, Any] = json.loads(path.read_bytes() or b"{}")
        info.update(pid=os.getpid(), host=HOST)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        path = Path(self._lock_path_for_key(key))
        try:
            info = json.loads(path.read_bytes() or b"{}")
        except (FileNotFoundError, json.JSONDecodeError):
            info = {}
        if info.get("host") == HOST and isinstance(info.get("pid"), int) and not process_running(info["pid"]):
            path.unlink(missing_ok=True)
            self._locks.pop(key, None)
            return False
        return super().is_locked(key, use_cache)
