"""Reading IFEval-format prompt files and response files, with errors that name file, line and field.

Prompts: JSON lines with `key`, `prompt`, `instruction_id_list`, `kwargs` (Google's `input_data.jsonl`, or
the hub's `google/IFEval`, whose kwargs carry every argument name with nulls for the unused ones).
Responses: JSON lines with `prompt` and `response` (IFEval's `input_response_data`); a `key` field, when
present, is used to match instead of the prompt text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapl_core.files import open_text
from mapl_core.instructions import InvalidKwargs, UnknownInstruction, get_family


@dataclass(frozen=True)
class InputIssue:
    """One bad input line: where it is and what is wrong."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InputError(ValueError):
    """Input files that cannot be evaluated; `issues` lists every problem found."""

    def __init__(self, issues: list[InputIssue]):
        self.issues = issues
        shown = "\n  ".join(str(i) for i in issues[:20])
        more = f"\n  … and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"{len(issues)} problem(s) in the input:\n  {shown}{more}")


@dataclass
class PromptItem:
    """One benchmark prompt with its instructions; `kwargs` are normalized by each family."""

    key: Any
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    line: int
    raw_kwargs: list[dict[str, Any]] = field(default_factory=list)


def prompts_path(spec: str) -> Path:
    """An IFEval-format prompt file: `spec` itself, or for "ifeval" the shipped copy of IFEval's 541 prompts."""
    if spec != "ifeval":
        return Path(spec)
    from mapl_core.paths import shared_data_dir

    root = shared_data_dir()
    path = root / "ifeval" / "input_data.jsonl" if root else None
    if path is None or not path.is_file():
        raise FileNotFoundError("the shipped IFEval prompts (../shared/data/ifeval/input_data.jsonl) are missing; "
                                "name an IFEval-format prompt file instead of 'ifeval'")  # fmt: skip
    return path


def read_json_lines(path: Path) -> Iterator[tuple[int, Any, InputIssue | None]]:
    """(line number, parsed object or None, issue or None) for each non-blank line."""
    if not path.is_file():
        raise InputError([InputIssue(str(path), 0, "", "file not found")])
    try:
        with open_text(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    yield number, json.loads(raw), None
                except json.JSONDecodeError as exc:
                    yield number, None, InputIssue(str(path), number, "", f"malformed JSON ({exc.msg})")
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError([InputIssue(str(path), 0, "", f"cannot read the file ({exc})")]) from exc


def parse_prompt(path: str, line: int, obj: Any) -> tuple[PromptItem | None, list[InputIssue]]:
    """Validate one prompt row; all problems of the row are reported together."""

    def issue(f: str, msg: str) -> InputIssue:
        return InputIssue(path, line, f, msg)

    if not isinstance(obj, dict):
        return None, [issue("", f"expected a JSON object, got {type(obj).__name__}")]
    issues = [
        issue(f, "missing field") for f in ("key", "prompt", "instruction_id_list", "kwargs") if f not in obj
    ]
    if issues:
        return None, issues
    key, prompt, ids, kwargs = obj["key"], obj["prompt"], obj["instruction_id_list"], obj["kwargs"]
    if not isinstance(prompt, str) or not prompt.strip():
        issues.append(issue("prompt", "must be a non-empty string"))
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        issues.append(issue("instruction_id_list", "must be a list of instruction id strings"))
    if not isinstance(kwargs, list) or not all(isinstance(k, dict | None) for k in kwargs):
        issues.append(issue("kwargs", "must be a list of objects, one per instruction"))
    if issues:
        return None, issues
    if len(ids) != len(kwargs):
        return None, [issue("kwargs", f"has {len(kwargs)} entries for {len(ids)} instructions")]
    normalized = []
    for i, (iid, kw) in enumerate(zip(ids, kwargs, strict=True)):
        try:
            normalized.append(get_family(iid).normalize(kw))
        except UnknownInstruction as exc:
            issues.append(issue(f"instruction_id_list[{i}]", str(exc)))
        except InvalidKwargs as exc:
            issues.append(issue(f"kwargs[{i}]", str(exc)))
    if issues:
        return None, issues
    raw = [dict(k or {}) for k in kwargs]
    return PromptItem(key, prompt, list(ids), normalized, line, raw), []


def load_prompts(path: Path) -> tuple[list[PromptItem], list[InputIssue]]:
    """Every valid prompt of the file, and every problem found (duplicate keys included)."""
    items: list[PromptItem] = []
    issues: list[InputIssue] = []
    seen: dict[Any, int] = {}
    for line, obj, problem in read_json_lines(path):
        if problem:
            issues.append(problem)
            continue
        item, found = parse_prompt(str(path), line, obj)
        issues += found
        if item is None:
            continue
        hashable_key = json.dumps(item.key, sort_keys=True)
        if hashable_key in seen:
            issues.append(
                InputIssue(
                    str(path), line, "key", f"duplicate key {item.key!r} (first on line {seen[hashable_key]})"
                )
            )
            continue
        seen[hashable_key] = line
        items.append(item)
    return items, issues


@dataclass
class ResponseRow:
    response: str
    line: int


def load_responses(path: Path) -> tuple[dict[str, ResponseRow], dict[str, ResponseRow], list[InputIssue]]:
    """Responses by prompt text and by key (when rows carry one), and the problems found."""
    by_prompt: dict[str, ResponseRow] = {}
    by_key: dict[str, ResponseRow] = {}
    issues: list[InputIssue] = []
    for line, obj, problem in read_json_lines(path):
        if problem:
            issues.append(problem)
            continue
        if not isinstance(obj, dict):
            issues.append(InputIssue(str(path), line, "", "expected a JSON object"))
            continue
        bad = [f for f in ("prompt", "response") if not isinstance(obj.get(f), str)]
        if "key" in obj and "prompt" in bad and isinstance(obj.get("response"), str):
            bad.remove("prompt")
        if bad:
            issues += [InputIssue(str(path), line, f, "missing or not a string") for f in bad]
            continue
        row = ResponseRow(obj["response"], line)
        if "key" in obj:
            k = json.dumps(obj["key"], sort_keys=True)
            if k in by_key:
                issues.append(
                    InputIssue(str(path), line, "key", f"duplicate response for key {obj['key']!r}")
                )
                continue
            by_key[k] = row
        if isinstance(obj.get("prompt"), str):
            prev = by_prompt.get(obj["prompt"])
            if prev is not None and prev.response != row.response and "key" not in obj:
                issues.append(
                    InputIssue(
                        str(path),
                        line,
                        "prompt",
                        f"a different response for this prompt is on line {prev.line}",
                    )
                )
                continue
            by_prompt.setdefault(obj["prompt"], row)
    return by_prompt, by_key, issues
