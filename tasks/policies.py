"""How mapl's Prefect tasks cache, persist and retry.

- Cache keys come from `mapl_core.pipeline.stages.*_key` (table versions, config hash, model revision,
  mapl_core's version), through `keyed(...)`.
- Results are persisted as JSON under `<data root>/prefect/results`, so a cache hit works across runs,
  processes and machines that share the data root. Cache keys live in `prefect/cache-keys`, and a file lock (SERIALIZABLE
  isolation) makes two concurrent runs of the same stage wait for one another instead of both computing it (an
  flock, released when its holder dies: `tasks.locks`).
- Both folders must be private to the user who runs mapl (`private_dir`). A result record names the serializer
  that reads it back, and Prefect's serializers can import and call what a record names (`pickle`; `json`'s
  `__exc_type__`): whoever could write those files could run code in the next run that hits the cache. So
  they are created with mode 700, and a folder another user owns or may write, or a symlink, is refused.
- Retries (exponential backoff with jitter) only for transient failures: engine/server connections,
  timeouts, I/O and Delta commit conflicts. A failed contract, bad config or bad input fails at once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from prefect.cache_policies import CacheKeyFnPolicy
from prefect.filesystems import LocalFileSystem
from prefect.tasks import exponential_backoff

from tasks.locks import FlockLockManager

RETRIES = 3
RETRY_DELAYS = exponential_backoff(backoff_factor=2)  # 2, 4, 8 s …
RETRY_JITTER = 0.5

_PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the same call may well succeed a few seconds later."""
    from mapl_core.generation.server import ServerError, ServerUnavailable

    if isinstance(exc, ServerUnavailable):  # its health wait already took the whole timeout: once is enough
        return False
    if isinstance(exc, ConnectionError | TimeoutError | BrokenProcessPool):
        return True
    if isinstance(exc, ServerError):  # by status: a 4xx answer (but 408 and 429) is the request's own fault
        return exc.status is None or exc.status >= 500 or exc.status in (408, 429)
    try:
        from deltalake.exceptions import CommitFailedError

        if isinstance(exc, CommitFailedError):  # a concurrent writer won the commit race
            return True
    except ImportError:
        pass
    if isinstance(exc, OSError) and not isinstance(exc, _PERMANENT_OS_ERRORS):
        # an OSError with no errno is about the content, not the system (a bad gzip file): retrying reads it again
        return exc.errno is not None and exc.errno not in (errno.ENOSPC, errno.EROFS)
    return False


def retry_transient(task, task_run, state) -> bool:
    """Prefect's `retry_condition_fn`: retry only when the failure is transient."""
    try:
        state.result()
    except Exception as exc:  # the failed state re-raises the task exception
        return is_transient(exc)
    return False


def prefect_dir(root: str | Path) -> Path:
    return Path(root).resolve() / "prefect"


class UnsafeResults(PermissionError):
    """A results or cache-key folder that someone other than this user could write."""


def private_dir(path: Path) -> Path:
    """`path`, created with mode 700, or checked to be a real folder of this user that no one else may write."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(parents=True, mode=0o700)
    st = os.lstat(path)
    problem = (
        "is a symlink" if stat.S_ISLNK(st.st_mode)
        else "is not a folder" if not stat.S_ISDIR(st.st_mode)
        else f"belongs to user {st.st_uid}, not to this user ({os.getuid()})" if st.st_uid != os.getuid()
        else f"may be written by others (mode {stat.S_IMODE(st.st_mode):o})" if st.st_mode & 0o022
        else None
    )  # fmt: skip
    if problem:
        raise UnsafeResults(
            f"{path} {problem}: Prefect's cached results there can name code to run, so mapl will not read "
            "them. Make it yours and private (chmod 700), or use a data root of your own (MAPL_DATA_ROOT)."
        )
    return path


def results_dir(root: str | Path) -> Path:
    return private_dir(prefect_dir(root) / "results")


def result_storage(root: str | Path) -> LocalFileSystem:
    """A storage block for the data root's results (Prefect wants result storage saved server-side; the
    block's name is derived from the path, so every run against this root uses the same one)."""
    path = results_dir(root)
    name = "mapl-results-" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name not in _saved:
        LocalFileSystem(basepath=str(path)).save(name, overwrite=True)
        _saved.add(name)
    return LocalFileSystem.load(name)


_saved: set[str] = set()


def keyed(root: str | Path, key_fn: Callable[[dict[str, Any]], str]) -> CacheKeyFnPolicy:
    """A cache policy whose key is `key_fn(task parameters)`, stored and locked under the data root."""
    locks, keys = prefect_dir(root) / "locks", private_dir(prefect_dir(root) / "cache-keys")
    locks.mkdir(parents=True, exist_ok=True)
    policy = CacheKeyFnPolicy(cache_key_fn=lambda ctx, params: key_fn(params))
    return policy.configure(
        key_storage=keys, lock_manager=FlockLockManager(locks), isolation_level="SERIALIZABLE"
    )


def stage_options(
    root: str | Path, key_fn: Callable[[dict[str, Any]], str] | None, retries: bool = True
) -> dict:
    """Task options for a stage run against data root `root`."""
    opts: dict[str, Any] = {
        "persist_result": True,
        "result_storage": result_storage(root),
        "result_serializer": "json",
    }
    if key_fn is not None:
        opts["cache_policy"] = keyed(root, key_fn)
    if retries:
        opts.update(retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_jitter_factor=RETRY_JITTER,
                    retry_condition_fn=retry_transient)  # fmt: skip
    return opts
