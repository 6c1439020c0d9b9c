"""Exclusive locks that cannot go stale: an OS file lock (`flock`) held on an open file for the lock's life.

Why not a lock *file* that exists while held: a holder killed with `kill -9` leaves it behind, a PID recorded
in it can be reused by an unrelated process, and whoever removes a "stale" one can race a new holder. The
kernel drops an `flock` when its holder's last descriptor closes, whatever killed it, so none of that arises;
the file itself stays (never removed) and only says who holds it, for the waiting message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


class LockBusy(RuntimeError):
    """The lock is held by another process and the caller chose not to wait (long enough)."""


def try_lock(path: Path) -> int | None:
    """An open descriptor holding `path`'s exclusive lock, or None when another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, info, 0)
    return fd


def holder(path: Path) -> str:
    """Who holds (or last held) the lock at `path`, in words."""
    try:
        info = json.loads(path.read_bytes() or b"{}")
        since = time.strftime("%H:%M:%S", time.localtime(info["since"]))
        return f"process {info['pid']} on {info['host']} (since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


_HELD: dict[tuple[str, int], int] = {}  # (lock path, thread) → depth: re-entry within one thread


@contextlib.contextmanager
def exclusive(path: Path, what: str, timeout: float | None = None, poll: float = 0.5) -> Iterator[None]:
    """Hold `path`'s lock for the block; wait for another holder (saying so once), at most `timeout` s.

    Re-entrant within a thread (a stage that holds a build's lock may call the build, which takes it too);
    another thread or process waits."""
    mine = (str(Path(path).resolve()), threading.get_ident())
    if mine in _HELD:
        _HELD[mine] += 1
        try:
            yield
        finally:
            _HELD[mine] -= 1
        return
    fd = try_lock(path)
    if fd is None:
        log.warning("%s is in use by %s: waiting for it to finish", what, holder(path))
        deadline = None if timeout is None else time.monotonic() + timeout
        while (fd := try_lock(path)) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise LockBusy(f"{what} is in use by {holder(path)}; gave up after {timeout:.0f} s")
            time.sleep(poll)
    _HELD[mine] = 1
    try:
        yield
    finally:
        del _HELD[mine]
        release(fd)
