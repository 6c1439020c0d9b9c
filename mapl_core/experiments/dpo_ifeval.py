"""The DPO experiment on IFEval (configs/experiments/dpo_ifeval.yaml): the untrained policy, baseline DPO on
the original pairs and MAPL-DPO on original + intra + inter, identical but for the levels they train on,
each scored on IFEval's prompts, with paired statistics per prompt.

The recipe names a build, the MAPL arm's `TrainConfig` (the baseline is its `baseline()`: the same steps,
batch, seed, LoRA and schedule) and the evaluation. The steps are the pipeline's own stage functions
(`pipeline.stages`), so the experiment builds, trains and scores exactly as `mapl run` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from mapl_core.config import BuildConfig
from mapl_core.evaluation.stats import mcnemar_exact, paired_ratio_bootstrap, wilson
from mapl_core.names import Name
from mapl_core.pipeline.config import EvaluationConfig
from mapl_core.training.config import TrainConfig

ARMS = ("untrained", "baseline", "mapl")


class DpoExperiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    description: str = ""
    build: BuildConfig
    policy: TrainConfig
    evaluation: EvaluationConfig

    @model_validator(mode="after")
    def _fits(self) -> DpoExperiment:
        if self.policy.kind != "dpo":
            raise ValueError("policy.kind must be 'dpo'")
        if self.policy.data != self.build.name:
            raise ValueError(
                f"policy.data is {self.policy.data!r}, but the build is named {self.build.name!r}"
            )
        if self.policy.warmup_steps >= self.policy.max_steps:
            raise ValueError(
                "policy.warmup_steps must be below max_steps: the schedule has to reach its peak"
            )
        return self

    def trainings(self) -> dict[str, TrainConfig]:
        """The two trained arms, named after the experiment so that they never share a folder."""
        mapl = self.policy.model_copy(update={"name": f"{self.name}-mapl"})
        return {"baseline": mapl.baseline(name=f"{self.name}-baseline"), "mapl": mapl}

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> DpoExperiment:
        """Load a recipe; `build:` may name a build recipe file (relative to this one)."""
        path = Path(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(raw.get("build"), str):
            ref = path.parent / raw["build"]
            raw["build"] = yaml.safe_load(ref.read_text(encoding="utf-8")) or {}
        for key, value in overrides.items():  # e.g. policy={"max_steps": 4}
            raw[key] = {**raw.get(key, {}), **value}
        return cls.model_validate(raw)


def read_verdicts(path: Path) -> dict[str, dict[str, Any]]:
    """Per-prompt verdicts of an evaluation (`verdicts.jsonl`), by key."""
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out[json.dumps(row["key"])] = row
    return out


def cap_share(responses: Path, tokenizer_dir: str, max_new_tokens: int) -> float:
    """Share of responses that used the whole token budget (cut off, not finished)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    lengths = []
    with responses.open(encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["response"]
            lengths.append(len(tok(text, add_special_tokens=False)["input_ids"]))
    # re-tokenizing decoded text can merge a token or two: within 2 of the cap counts as the cap
    return sum(n >= max_new_tokens - 2 for n in lengths) / len(lengths) if lengths else 0.0


def arm_metrics(verdicts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The four IFEval metrics with Wilson intervals for the two strict ones."""
    rows = list(verdicts.values())
    n, insts = len(rows), sum(len(r["follow_instruction_list_strict"]) for r in rows)
    strict = sum(r["follow_all_strict"] for r in rows)
    inst = sum(sum(r["follow_instruction_list_strict"]) for r in rows)
    return {
        "prompts": n,
        "instructions": insts,
        "prompt_level_strict": strict / n,
        "prompt_level_strict_ci95": list(wilson(strict, n)),
        "inst_level_strict": inst / insts,
        "inst_level_strict_ci95": list(wilson(inst, insts)),
        "prompt_level_loose": sum(r["follow_all_loose"] for r in rows) / n,
        "inst_level_loose": sum(sum(r["follow_instruction_list_loose"]) for r in rows) / insts,
    }


def by_group(per_instruction: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Instruction-level strict accuracy per IFEval group (the part of an instruction id before ':'), added
    up from the scorer's own per-instruction counts (`summary.json`'s `per_instruction`)."""
    tally: dict[str, list[int]] = {}
    for iid, r in per_instruction.items():
        t = tally.setdefault(iid.split(":")[0], [0, 0])
        t[0] += round(r["strict_acc"] * r["count"])
        t[1] += r["count"]
    return {g: {"instructions": n, "inst_level_strict": k / n} for g, (k, n) in sorted(tally.items())}


def paired(
    first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]], seed: int = 0
) -> dict[str, Any]:
    """`second` − `first` on the prompts both answered: McNemar's exact p on prompt-level strict, and
    paired-bootstrap 95% intervals (prompts resampled) for the prompt- and instruction-level strict
    differences."""
    keys = sorted(set(first) & set(second))
    a = [first[k] for k in keys]
    b = [second[k] for k in keys]
    only_a = sum(x["follow_all_strict"] and not y["follow_all_strict"] for x, y in zip(a, b, strict=True))
    only_b = sum(y["follow_all_strict"] and not x["follow_all_strict"] for x, y in zip(a, b, strict=True))
    ones = [1.0] * len(keys)
    prompt = paired_ratio_bootstrap([float(x["follow_all_strict"]) for x in a],
                                    [float(y["follow_all_strict"]) for y in b], ones, seed=seed)  # fmt: skip
    inst = paired_ratio_bootstrap([float(sum(x["follow_instruction_list_strict"])) for x in a],
                                  [float(sum(y["follow_instruction_list_strict"])) for y in b],
                                  [float(len(x["follow_instruction_list_strict"])) for x in a], seed=seed)  # fmt: skip
    return {
        "prompts": len(keys),
        "only_first_follows": only_a,
        "only_second_follows": only_b,
        "mcnemar_p": mcnemar_exact(only_a, only_b),
        "prompt_level_strict": dict(zip(("difference", "low", "high"), prompt, strict=True)),
        "inst_level_strict": dict(zip(("difference", "low", "high"), inst, strict=True)),
    }
