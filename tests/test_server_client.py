"""The OpenAI-compatible server client: retries, concurrency limit, health wait — and a real vLLM server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from corpus import IFEVAL_PROMPTS
from tiny_model import build_tiny_model

from mapl_core.generation.engines import SamplingConfig
from mapl_core.generation.server import OpenAIServerGenerator, RetryPolicy, ServerError, ServerUnavailable

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scripted(BaseHTTPRequestHandler):
    """A small HTTP server whose chat endpoint fails as the test says, then answers."""

    failures: ClassVar[list[int]] = []  # statuses to answer, in order, before succeeding
    bodies: ClassVar[list[dict]] = []
    keys: ClassVar[list[str | None]] = []  # the Authorization header of each chat request
    delay = 0.05  # seconds each chat answer takes
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {})
        elif self.path == "/v1/models":
            self._send(200, {"data": [{"id": "scripted-model"}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        with cls.lock:
            cls.bodies.append(body)
            cls.keys.append(self.headers.get("Authorization"))
            status = cls.failures.pop(0) if cls.failures else 200
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
        time.sleep(cls.delay)
        with cls.lock:
            cls.in_flight -= 1
        if status != 200:
            self._send(status, {"error": f"scripted {status}"})
            return
        text = "echo: " + body["messages"][-1]["content"]
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def scripted() -> Iterator[str]:
    Scripted.failures, Scripted.bodies, Scripted.keys, Scripted.in_flight, Scripted.peak = [], [], [], 0, 0
    Scripted.delay = 0.05
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_transient_failures_are_retried_and_requests_carry_seed_and_limits(scripted: str) -> None:
    gen = OpenAIServerGenerator(scripted, retry=FAST, health_timeout=5)
    assert gen.model == "scripted-model"
    Scripted.failures = [503, 502]
    out = gen.generate([conv("hi")], SamplingConfig(max_new_tokens=7, seed=1))
    assert out == ["echo: hi"] and len(Scripted.bodies) == 3
    body = Scripted.bodies[-1]
    assert body["max_tokens"] == 7 and isinstance(body["seed"], int) and body["model"] == "scripted-model"


def test_a_slow_server_gets_bounded_tries_of_a_bounded_wait(scripted: str) -> None:
    """A server slower than the request timeout: each try is cut at the timeout, the tries are bounded, and the
    error says what happened (then the stage's retry policy counts it as transient)."""
    from tasks.policies import is_transient

    gen = OpenAIServerGenerator(scripted, retry=FAST, health_timeout=5, timeout=0.3)
    Scripted.delay = 2.0
    t0 = time.monotonic()
    with pytest.raises(ServerError, match=r"failed 4 times; last: .*Timeout") as slow:
        gen.generate([conv("x")], SamplingConfig())
    assert len(Scripted.bodies) == 4 and time.monotonic() - t0 < 4 * 0.3 + 5  # no wait on the answers
    assert slow.value.status is None and is_transient(slow.value)


def test_the_api_key_comes_from_the_environment(scripted: str, monkeypatch) -> None:
    """A recipe's URL may not carry credentials (recipes are stored), so the key is read from the environment."""
    from mapl_core.generation.server import API_KEY_ENV

    monkeypatch.setenv(API_KEY_ENV, "k3y-from-env")
    OpenAIServerGenerator(scripted, retry=FAST, health_timeout=5).generate([conv("hi")], SamplingConfig())
    monkeypatch.delenv(API_KEY_ENV)
    OpenAIServerGenerator(scripted, retry=FAST, health_timeout=5).generate([conv("hi")], SamplingConfig())
    assert Scripted.keys == ["Bearer k3y-from-env", None]


def test_retries_give_up_with_the_last_error_and_4xx_fails_at_once(scripted: str) -> None:
    gen = OpenAIServerGenerator(scripted, retry=FAST, health_timeout=5)
    from tasks.policies import is_transient

    Scripted.failures = [500] * 10
    with pytest.raises(ServerError, match="failed 4 times; last: answered 500") as gave_up:
        gen.generate([conv("x")], SamplingConfig())
    assert gave_up.value.status == 500 and is_transient(gave_up.value)  # the stage may try again later
    Scripted.failures, Scripted.bodies = [400], []
    with pytest.raises(ServerError, match="answered 400") as refused:
        gen.generate([conv("x")], SamplingConfig())
    assert len(Scripted.bodies) == 1
    assert refused.value.status == 400 and not is_transient(refused.value)  # exactly one try, at every level


def test_concurrency_limit_holds_and_order_is_kept(scripted: str) -> None:
    gen = OpenAIServerGenerator(scripted, concurrency=3, retry=FAST, health_timeout=5)
    prompts = [f"p{i}" for i in range(12)]
    out = gen.generate([conv(p) for p in prompts], SamplingConfig())
    assert out == [f"echo: {p}" for p in prompts]
    assert 1 < Scripted.peak <= 3


def test_a_server_that_never_answers_gives_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailable, match=f"{url} within 2 s.*mapl models serve"):
        OpenAIServerGenerator(url, health_timeout=2)
    assert time.monotonic() - t0 < 10


def test_an_unknown_model_name_lists_what_the_server_serves(scripted: str) -> None:
    with pytest.raises(ServerError, match=r"does not serve 'other'.*scripted-model"):
        OpenAIServerGenerator(scripted, model="other", health_timeout=5)


@pytest.mark.slow
def test_real_vllm_server_generates_and_constrains_json(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model")
    port = free_port()
    env = {**os.environ, "MAPL_DATA_ROOT": str(tmp_path / "root"), "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mapl_cli.main", "models", "serve", "--model", str(model), "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        gen = OpenAIServerGenerator(f"http://127.0.0.1:{port}", health_timeout=400)
        assert gen.engine.startswith("openai-server-vllm-") and gen.model == str(model)
        params = SamplingConfig(max_new_tokens=24, temperature=0.9, seed=5)
        convs = [conv("def add(a, b):"), conv("import os"), conv("class Foo:")]
        first = gen.generate(convs, params)
        assert gen.generate(convs[::-1], params)[::-1] == first  # seeded per prompt, whatever the order
        # a random model left free would never write "yes" or "no"; constrained, it writes only those
        schema = {"type": "string", "enum": ["yes", "no"]}
        constrained = gen.generate(convs, SamplingConfig(max_new_tokens=16), json_schema=schema)
        assert {json.loads(t) for t in constrained} <= {"yes", "no"}
        gen.close()
        out = tmp_path / "responses.jsonl"
        cmd = [sys.executable, "-m", "mapl_cli.main", "generate", "--prompts", str(IFEVAL_PROMPTS), "--out", str(out),
               "--backend", "server", "--base-url", f"http://127.0.0.1:{port}/v1", "--limit", "4", "--max-new-tokens", "8"]  # fmt: skip
        run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "4 generated with openai-server-vllm-" in run.stdout
        assert len(out.read_text().splitlines()) == 4
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    assert server.returncode is not None
