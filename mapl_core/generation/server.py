"""A client for an OpenAI-compatible chat server (vLLM's api_server, or any compatible endpoint).

Requests run concurrently up to a limit; connection errors, timeouts, 408/429 and 5xx answers are retried
with exponential backoff and jitter; other 4xx answers fail at once with the server's message. The client
waits for the server to become healthy first and says clearly when it never does.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mapl_core.generation.protocol import Message, SamplingConfig, prompt_seed
from mapl_core.generation.revision import model_revision
from mapl_core.redaction import redact_url

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
START_HINT = (
    "start one with `mapl models serve --model default --port 8000` "
    "(or `python -m vllm.entrypoints.openai.api_server --model DIR --host 127.0.0.1 --port 8000`)"
)


class ServerUnavailable(RuntimeError):
    """The server never answered its health check."""


class ServerError(RuntimeError):
    """A request failed for good: a non-retryable answer, or retries exhausted. `status` is the last HTTP status
    (None: no answer at all), which callers classify by (`tasks.policies.is_transient`)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries per request, the first included
    base_delay: float = 0.5  # seconds before the first retry; doubled each time
    max_delay: float = 20.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter backoff: uniform in [0.5, 1.5) × base·2^attempt, capped."""
        return min(self.max_delay, self.base_delay * 2**attempt) * (0.5 + rng.random())


def api_root(base_url: str) -> str:
    """`http://host:port` from `http://host:port`, `.../v1` or `.../v1/`."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


API_KEY_ENV = "MAPL_SERVER_API_KEY"
"""The server's API key, read from the environment (a recipe's URL may not carry it: recipes are stored)."""


class OpenAIServerGenerator:
    """Generation through `/v1/chat/completions`; same interface and seeding as the in-process backends."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        health_timeout: float = 600.0,
    ):
        import httpx

        self.root = api_root(base_url)
        self.shown = redact_url(self.root)  # what messages print: never a user, password or key
        self.concurrency = max(1, concurrency)
        self.retry = retry or RetryPolicy()
        self._rng = random.Random()  # jitter only: timing, never content
        api_key = api_key or os.environ.get(API_KEY_ENV)  # from the environment: never stored with a recipe
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=self.root,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        self.wait_until_healthy(health_timeout)
        served = [m["id"] for m in self._request("GET", "/v1/models").json().get("data", [])]
        if model is None:
            if not served:
                raise ServerError(f"{self.shown} serves no model")
            model = served[0]
        elif served and model not in served:
            raise ServerError(f"{self.shown} does not serve {model!r}; it serves {served}")
        self.model = model
        self.revision = model_revision(model)
        self.engine = f"openai-server-{self._server_version()}"

    # ---- health --------------------------------------------------------------------------------
    def wait_until_healthy(self, timeout: float) -> None:
        """Poll `/health` (vLLM) or `/v1/models` (other servers) until one answers 200."""
        import httpx

        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            for path in ("/health", "/v1/models"):
                try:
                    r = self.client.get(path, timeout=5.0)
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    break  # the server is not up: no point asking the second path
                if r.status_code == 200:
                    return
                last = f"GET {path} answered {r.status_code}"
            if time.monotonic() >= deadline:
                raise ServerUnavailable(
                    f"no OpenAI-compatible server became healthy at {self.shown} within {timeout:.0f} s "
                    f"(last: {last}); {START_HINT}"
                )
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _server_version(self) -> str:
        try:
            r = self.client.get("/version", timeout=5.0)
            if r.status_code == 200:
                return f"vllm-{r.json()['version']}"
        except Exception:  # not every compatible server has /version
            pass
        return "unknown"

    # ---- requests ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, json: dict[str, Any] | None = None):
        import httpx

        last, status = "", None
        for attempt in range(self.retry.attempts):
            try:
                r = self.client.request(method, path, json=json)
            except httpx.TransportError as exc:  # refused, reset, timed out
                last, status = f"{type(exc).__name__}: {exc}", None
            else:
                if r.status_code < 400:
                    return r
                if r.status_code not in RETRY_STATUS:
                    message = f"{method} {self.shown}{path} answered {r.status_code}: {r.text[:500]}"
                    raise ServerError(message, r.status_code)
                last, status = f"answered {r.status_code}: {r.text[:200]}", r.status_code
            if attempt + 1 < self.retry.attempts:
                time.sleep(self.retry.delay(attempt, self._rng))
        raise ServerError(
            f"{method} {self.shown}{path} failed {self.retry.attempts} times; last: {last}", status
        )

    def _complete(self, messages: list[Message], params: SamplingConfig, json_schema: dict | None) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": prompt_seed(params.seed, messages),
        }
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json_schema},
            }
        data = self._request("POST", "/v1/chat/completions", json=body).json()
        return data["choices"][0]["message"]["content"] or ""

    def generate(
        self, conversations: list[list[Message]], params: SamplingConfig, json_schema: dict | None = None
    ) -> list[str]:
        if len(conversations) <= 1:
            return [self._complete(m, params, json_schema) for m in conversations]
        with ThreadPoolExecutor(min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(lambda m: self._complete(m, params, json_schema), conversations))

    def close(self) -> None:
        self.client.close()
