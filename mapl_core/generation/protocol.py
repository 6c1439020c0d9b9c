"""What every generation backend shares: messages, sampling settings, per-prompt seeds and the `Generator`
protocol. Its own module so that the engines (engines.py) and the server client (server.py) both import it
without importing each other."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Protocol

Message = dict[str, str]


MAX_NEW_TOKENS = 8192  # far past any response IFEval asks for; a typo (a million) would run for days


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise ValueError(f"max_new_tokens {self.max_new_tokens} is outside 1..{MAX_NEW_TOKENS}")

    def as_key(self) -> dict:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }


def prompt_seed(seed: int, messages: list[Message]) -> int:
    digest = hashlib.sha256(json.dumps([seed, messages], ensure_ascii=False).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class PromptRefused(ValueError):
    """The engine refuses a request because of its prompt (vLLM: longer than the model's context). Raised for
    the whole batch; `responses._generate` finds the prompts that cause it."""


class Generator(Protocol):
    engine: str  # backend and version, part of every cache key
    model: str
    revision: str

    def generate(
        self, conversations: list[list[Message]], params: SamplingConfig, json_schema: dict | None = None
    ) -> list[str]: ...
