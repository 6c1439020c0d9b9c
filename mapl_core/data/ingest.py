"""Normalising preference rows to one schema, with every bad row quarantined with its reason.

Accepted shapes:
- TRL standard: `prompt`, `chosen`, `rejected` strings;
- TRL conversational: lists of `{role, content}` messages (the prompt list, or the shared prefix of the
  chosen/rejected conversations when there is no prompt column);
- HH-RLHF transcripts: full "\\n\\nHuman: … \\n\\nAssistant: …" dialogues in `chosen`/`rejected`; the shared
  history is the prompt and the final assistant turns are the responses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mapl_core.config import IngestConfig

Message = dict[str, str]
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_ROLES = {"Human": "user", "Assistant": "assistant"}
# undecodable bytes (read as lone surrogates by `surrogateescape`; Arrow refuses them at commit) and NUL
# (tokenizers and C-string tools cut text there): quarantined, never committed
_UNSTORABLE = re.compile("[\udc80-\udcff\x00]")


class BadRow(ValueError):
    """A row that cannot become a preference pair; `field` names the culprit."""

    def __init__(self, reason: str, field: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Pair:
    pair_id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    source: str
    source_row: int


@dataclass
class IngestReport:
    source: str
    rows_read: int = 0
    pairs: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def bad_fraction(self) -> float:
        return self.quarantined / self.rows_read if self.rows_read else 0.0


def pair_id(prompt: list[Message], chosen: str, rejected: str) -> str:
    """Content hash of a pair: the same conversation and responses always get the same id."""
    payload = json.dumps([prompt, chosen, rejected], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def parse_hh(transcript: str) -> list[Message]:
    """An HH-RLHF transcript as messages; text before the first marker is not allowed."""
    parts = _HH_TURN.split(transcript)
    if parts[0].strip() or len(parts) < 3:
        raise BadRow("not an HH transcript (expected '\\n\\nHuman: … \\n\\nAssistant: …')")
    return [{"role": _ROLES[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)]


def _text(row: dict, name: str) -> str:
    if name not in row or row[name] is None:
        raise BadRow("missing field", name)
    value = row[name]
    if not isinstance(value, str):
        raise BadRow(f"not text ({type(value).__name__})", name)
    if not value.strip():
        raise BadRow("empty", name)
    return value


def _messages(value: Any, name: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise BadRow("expected a non-empty list of {role, content} messages", name)
    out = []
    for i, m in enumerate(value):
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("role"), str)
            or not isinstance(m.get("content"), str)
        ):
            raise BadRow(f"message {i} is not a {{role, content}} object with text", name)
        out.append({"role": m["role"], "content": m["content"]})
    return out


def detect_shape(row: dict, cfg: IngestConfig) -> str:
    cols = cfg.columns
    chosen = row.get(cols.chosen)
    if isinstance(chosen, list):
        return "conversational"
    prompt_col = cols.prompt or "prompt"
    if prompt_col in row and isinstance(row.get(prompt_col), list):
        return "conversational"
    if prompt_col in row:
        return "standard"
    if isinstance(chosen, str) and "\n\nHuman:" in chosen and "\n\nAssistant:" in chosen:
        return "hh"
    return "standard"


def normalize_row(row: Any, shape: str, cfg: IngestConfig) -> tuple[list[Message], str, str]:
    """(prompt messages, chosen response, rejected response) or BadRow."""
    if not isinstance(row, dict):
        raise BadRow("not a JSON object" if isinstance(row, str) else f"not a record ({type(row).__name__})")
    cols = cfg.columns
    if shape == "auto":
        shape = detect_shape(row, cfg)
    prompt_col = cols.prompt or "prompt"
    if shape == "hh":
        chosen_t, rejected_t = parse_hh(_text(row, cols.chosen)), parse_hh(_text(row, cols.rejected))
        if chosen_t[-1]["role"] != "assistant" or rejected_t[-1]["role"] != "assistant":
            raise BadRow("transcript does not end with an assistant turn", cols.chosen)
        if chosen_t[:-1] != rejected_t[:-1]:
            raise BadRow("chosen and rejected transcripts have different histories", cols.rejected)
        prompt, chosen, rejected = chosen_t[:-1], chosen_t[-1]["content"], rejected_t[-1]["content"]
    elif shape == "conversational":
        c = _messages(row.get(cols.chosen), cols.chosen)
        r = _messages(row.get(cols.rejected), cols.rejected)
        if prompt_col in row and row[prompt_col] is not None:
            prompt = _messages(row[prompt_col], prompt_col)
        else:  # implicit prompt: the shared prefix
            if c[:-1] != r[:-1]:
                raise BadRow("chosen and rejected conversations have different histories", cols.rejected)
            prompt, c, r = c[:-1], c[-1:], r[-1:]
        if c[-1]["role"] != "assistant" or r[-1]["role"] != "assistant":
            raise BadRow("response is not an assistant message", cols.chosen)
        chosen, rejected = c[-1]["content"], r[-1]["content"]
    else:
        prompt = [{"role": "user", "content": _text(row, prompt_col)}]
        chosen, rejected = _text(row, cols.chosen), _text(row, cols.rejected)
    if not prompt or prompt[-1]["role"] != "user":
        raise BadRow("the prompt does not end with a user turn", prompt_col)
    for name, value in ((cols.chosen, chosen), (cols.rejected, rejected)):
        if not value.strip():
            raise BadRow("empty response", name)
        if len(value) > cfg.max_chars:
            raise BadRow(f"longer than max_chars ({len(value)} > {cfg.max_chars})", name)
    if not prompt[-1]["content"].strip():
        raise BadRow("empty prompt", prompt_col)
    if sum(len(m["content"]) for m in prompt) > cfg.max_chars:
        raise BadRow(f"prompt longer than max_chars ({cfg.max_chars})", prompt_col)
    if chosen.strip() == rejected.strip():
        raise BadRow("chosen is identical to rejected", cols.rejected)
    return prompt, chosen, rejected


@dataclass(frozen=True)
class Quarantined:
    source: str
    source_row: int
    reason: str
    field: str
    raw: str


def ingest(
    rows: Iterable[tuple[int, Any]], source: str, shape: str, cfg: IngestConfig, report: IngestReport
) -> Iterator[Pair | Quarantined]:
    """Pairs and quarantined rows, in source order; duplicates of an earlier pair are quarantined."""
    seen: set[str] = set()
    for n, row in rows:
        report.rows_read += 1
        try:
            check_storable(row)
            prompt, chosen, rejected = normalize_row(row, shape, cfg)
            pid = pair_id(prompt, chosen, rejected)
            if pid in seen:
                raise BadRow("duplicate of an earlier pair")
            seen.add(pid)
        except BadRow as bad:
            report.quarantined += 1
            report.reasons[bad.reason] = report.reasons.get(bad.reason, 0) + 1
            raw = row if isinstance(row, str) else json.dumps(row, ensure_ascii=False, default=str)
            yield Quarantined(source, n, bad.reason, bad.field, printable(raw[:2000]))
            continue
        report.pairs += 1
        yield Pair(pid, prompt, chosen, rejected, source, n)


def check_storable(row: Any, name: str = "") -> None:
    """BadRow naming the first field whose text holds bytes that are not UTF-8, or a NUL character."""
    if isinstance(row, str):
        if (m := _UNSTORABLE.search(row)) is not None:
            what = "a NUL character" if m.group() == "\x00" else "text that is not valid UTF-8"
            raise BadRow(f"holds {what} (at character {m.start()})", name or "(the whole line)")
    elif isinstance(row, dict):
        for key, value in row.items():
            check_storable(value, f"{name}.{key}" if name else str(key))
    elif isinstance(row, list):
        for i, value in enumerate(row):
            check_storable(value, f"{name}[{i}]")


def printable(text: str) -> str:
    """`text` with undecodable bytes as \\xNN escapes and NUL as \\x00, so the quarantine can store it."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\x00", "\\x00")


def split_of(pid: str, fractions: tuple[float, float, float]) -> str:
    """train / validation / test, decided by the pair id alone (stable across runs and machines)."""
    u = int(pid[:12], 16) / float(16**12)
    if u < fractions[0]:
        return "train"
    return "validation" if u < fractions[0] + fractions[1] else "test"
