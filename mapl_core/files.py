"""Small file helpers shared across mapl: gzip-aware text reading, and atomic file and folder output."""

from __future__ import annotations

import contextlib
import gzip
import io
import shutil
from collections.abc import Iterator
from pathlib import Path


def open_text(path: Path, errors: str = "strict") -> io.TextIOBase:
    """`path` opened for reading UTF-8 text, decompressing `.gz` files."""
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors=errors)
    return path.open(encoding="utf-8", errors=errors)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`, for a file or a folder; on success it replaces `path`, on error
    it is removed.

    Readers see the old file or the complete new one, never a half-written file. A folder cannot replace
    another in one step, so between the old folder's removal and the new one's rename `path` is briefly
    absent, never partial.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a folder left by a crashed writer
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
