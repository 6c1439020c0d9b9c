"""Which failures a stage retries (tasks.policies.is_transient), classified by what failed, not by message text
(issue 32: the server client writes "answered 400", which the old "HTTP 4" test never matched, so every 4xx was
retried; an OSError without an errno, such as a truncated gzip file, was retried too; an unreachable server cost
three more health waits of up to 600 s each)."""

from __future__ import annotations

import errno
import gzip

import pytest

from mapl_core.generation.server import ServerError, ServerUnavailable
from tasks.policies import is_transient


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ServerError("POST http://h/v1/chat/completions answered 400: bad request", 400), False),
        (ServerError("POST … answered 404: no such model", 404), False),
        (ServerError("POST … answered 422: too long", 422), False),
        (ServerError("POST … failed 5 times; last: answered 503: busy", 503), True),
        (ServerError("POST … failed 5 times; last: answered 429: slow down", 429), True),
        (ServerError("POST … failed 5 times; last: ConnectError: refused", None), True),
        (ServerUnavailable("never healthy in 600 s"), False),  # not 3 more health waits
        (gzip.BadGzipFile("Not a gzipped file (b'ab')"), False),
        (EOFError("Compressed file ended before the end-of-stream marker was reached"), False),
        (OSError(errno.EIO, "I/O error"), True),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (FileNotFoundError(errno.ENOENT, "missing"), False),
        (ValueError("bad config"), False),
    ],
)
def test_failures_are_classified_by_what_failed(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
