"""What must not be stored: credentials in server URLs (`http://user:token@host/…?key=…`).

Why: commit metadata is read by anyone who can read the tables, and error messages end up in logs and in
Prefect's UI; a server URL may carry a user, a password or an API key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

URL_KEYS = ("base_url",)


def redact_url(url: str) -> str:
    """The URL without user, password, query or fragment: scheme://host:port/path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redacted(value: Any) -> Any:
    """A copy of a config dump with every URL field (`URL_KEYS`) redacted, at any depth."""
    if isinstance(value, dict):
        return {
            k: redact_url(v) if k in URL_KEYS and isinstance(v, str) else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value
