"""How mapl's Prefect tasks cache, persist and retry.

- Cache keys come from `mapl_core.pipeline.stages.*_key` (table versions, config hash, model revision,
  mapl_core's version), through `keyed(...)`.
- Results are persisted as JSON under `<data root>/prefect/results`, so a cache hit works across runs,
  processes and machines that share the data root. Cache keys live in `prefect/cache-keys`, and a file lock (SERIALIZABLE
  isolation) makes two concurrent runs of the same stage wait for one another instead of both computing it (a lock
  left by a killed process is detected and removed: `tasks.locks`).
- Retries (exponential backoff with jitter) only for transient failures: engine/server connections,
  timeouts, I/O and Delta commit conflicts. A failed contract, bad config or bad input fails at once.
"""

from __future__ import annotations

import errno
import hashlib
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


def results_dir(root: str | Path) -> Path:
    path = prefect_dir(root) / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    locks, keys = prefect_dir(root) / "locks", prefect_dir(root) / "cache-keys"
    for d in (locks, keys):
        d.mkdir(parents=True, exist_ok=True)
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
