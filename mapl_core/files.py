"""Small file helpers shared across mapl: gzip-aware text reading, and atomic file and folder output."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def open_text(path: Path, errors: str = "strict", encoding: str = "utf-8") -> io.TextIOBase:
    """`path` opened for reading UTF-8 text, decompressing `.gz` files (`utf-8-sig`: a BOM is dropped)."""
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, errors=errors)
    return path.open(encoding=encoding, errors=errors)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`, for a file or a folder; on success it replaces `path`, on error
    it is removed.

    Readers see the old file or the complete new one, never a half-written file. A folder cannot replace
    another in one step, so between the old folder's removal and the new one's rename `path` is briefly
    absent, never partial.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    # a name of its own per writer: two writers of one path never write into each other's temporary
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink(missing_ok=True)
        raise
    if tmp.is_dir():
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    else:
        tmp.replace(path)


def _remove_stale_temporaries(path: Path) -> None:
    """Temporaries of `path` left by writers that are gone (killed, crashed): their process no longer runs."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".")[0]
        if not pid.isdigit() or process_running(int(pid)):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def process_running(pid: int) -> bool:
    """Whether a process with this id runs on this host (as any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True
