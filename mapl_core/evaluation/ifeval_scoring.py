"""IFEval scoring: per-prompt strict/loose verdicts and the four metrics, equal to the reference's."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mapl_core.evaluation.ifeval_files import (
    InputError,
    InputIssue,
    PromptItem,
    load_prompts,
    load_responses,
)
from mapl_core.files import atomic_output
from mapl_core.instructions import get_family, loose_variants


@dataclass
class PromptVerdict:
    key: Any
    prompt: str
    response: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    follow_instruction_list_strict: list[bool]
    follow_instruction_list_loose: list[bool]

    @property
    def follow_all_strict(self) -> bool:
        return all(self.follow_instruction_list_strict)

    @property
    def follow_all_loose(self) -> bool:
        return all(self.follow_instruction_list_loose)


def strict_verdicts(item: PromptItem, response: str) -> list[bool]:
    """The strict verdict of every instruction of one prompt (no loose variants: a fifth of the work)."""
    return [
        get_family(iid).verdict(response, kw)
        for iid, kw in zip(item.instruction_id_list, item.kwargs, strict=True)
    ]


def score_prompt(item: PromptItem, response: str) -> PromptVerdict:
    """Strict and loose verdicts for every instruction of one prompt."""
    variants = loose_variants(response)
    strict = strict_verdicts(item, response)
    loose = []
    for iid, kw, s in zip(item.instruction_id_list, item.kwargs, strict, strict=True):
        family = get_family(iid)
        # the response itself is the first loose variant: a strict pass is a loose pass
        loose.append(s or any(family.follows(v, kw) for v in variants if v != response))
    return PromptVerdict(
        item.key, item.prompt, response, item.instruction_id_list, item.raw_kwargs, strict, loose
    )


@dataclass
class Summary:
    prompts: int
    instructions: int
    prompt_level_strict_acc: float
    inst_level_strict_acc: float
    prompt_level_loose_acc: float
    inst_level_loose_acc: float
    per_instruction: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(verdicts: list[PromptVerdict], skipped: list[InputIssue] | None = None) -> Summary:
    """IFEval's four metrics, plus strict/loose accuracy per instruction type."""
    n_inst = sum(len(v.follow_instruction_list_strict) for v in verdicts)
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for v in verdicts:
        for iid, s, lo in zip(
            v.instruction_id_list,
            v.follow_instruction_list_strict,
            v.follow_instruction_list_loose,
            strict=True,
        ):
            per[iid][0] += 1
            per[iid][1] += s
            per[iid][2] += lo

    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    return Summary(
        prompts=len(verdicts),
        instructions=n_inst,
        prompt_level_strict_acc=ratio(sum(v.follow_all_strict for v in verdicts), len(verdicts)),
        inst_level_strict_acc=ratio(sum(sum(v.follow_instruction_list_strict) for v in verdicts), n_inst),
        prompt_level_loose_acc=ratio(sum(v.follow_all_loose for v in verdicts), len(verdicts)),
        inst_level_loose_acc=ratio(sum(sum(v.follow_instruction_list_loose) for v in verdicts), n_inst),
        per_instruction={
            iid: {"count": n, "strict_acc": ratio(s, n), "loose_acc": ratio(lo, n)}
            for iid, (n, s, lo) in sorted(per.items())
        },
        skipped=[str(i) for i in (skipped or [])],
    )


@dataclass
class Evaluation:
    verdicts: list[PromptVerdict]
    summary: Summary
    skipped: list[InputIssue]


def evaluate_files(prompts_path: Path, responses_path: Path, skip_invalid: bool = False) -> Evaluation:
    """Score a response file against a prompt file.

    Every problem in either file is collected; without `skip_invalid` any problem raises InputError listing
    them all, with `skip_invalid` the bad lines (and prompts left without a response) are skipped and
    reported in `skipped`.
    """
    items, issues = load_prompts(prompts_path)
    by_prompt, by_key, resp_issues = load_responses(responses_path)
    issues += resp_issues
    matched: list[tuple[PromptItem, str]] = []
    for item in items:
        row = by_key.get(json.dumps(item.key, sort_keys=True)) if by_key else None
        row = row or by_prompt.get(item.prompt)
        if row is None:
            issues.append(
                InputIssue(
                    str(responses_path),
                    0,
                    "response",
                    f"no response for prompt key={item.key!r} ({prompts_path}:{item.line})",
                )
            )
            continue
        matched.append((item, row.response))
    if issues and not skip_invalid:
        raise InputError(issues)
    verdicts = [score_prompt(item, response) for item, response in matched]
    return Evaluation(verdicts, summarize(verdicts, issues), issues)


def write_evaluation(evaluation: Evaluation, out_dir: Path) -> tuple[Path, Path]:
    """Write `verdicts.jsonl` (one line per prompt) and `summary.json`; returns their paths."""
    verdicts_path, summary_path = out_dir / "verdicts.jsonl", out_dir / "summary.json"
    with atomic_output(verdicts_path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for v in evaluation.verdicts:
            row = asdict(v) | {
                "follow_all_strict": v.follow_all_strict,
                "follow_all_loose": v.follow_all_loose,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with atomic_output(summary_path) as tmp:
        tmp.write_text(json.dumps(evaluation.summary.to_json(), indent=2, ensure_ascii=False) + "\n")
    return verdicts_path, summary_path
