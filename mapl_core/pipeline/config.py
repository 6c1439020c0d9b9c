"""One validated recipe for a whole pipeline run: `mapl run --config configs/X.yaml`.

It names the build recipe (or holds it inline), the reward-model and policy training recipes, and the
evaluation. The baselines are derived, never written twice: the same recipe with the intra and inter
levels switched off (original pairs only), trained with the same steps and budget.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mapl_core.config import BuildConfig
from mapl_core.evaluation.ifeval_pairs import IfevalPairsConfig
from mapl_core.generation.protocol import MAX_NEW_TOKENS
from mapl_core.names import Name
from mapl_core.training.config import TrainConfig

NIGHTLY = "0 3 * * *"  # the scheduled pipeline: every night at 03:00 (deployments/, `mapl serve --cron`)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvaluationConfig(_Strict):
    """IFEval-style evaluation of the policies (the base model, the baseline policy and the MAPL policy)."""

    prompts: str = Field("ifeval", description="'ifeval' (the shipped IFEval prompts) or a prompt file")
    limit: int | None = Field(48, ge=1, description="the first N prompts (None: all 541)")
    max_new_tokens: int = Field(128, ge=8, le=MAX_NEW_TOKENS)
    backend: Literal["auto", "vllm", "transformers"] = "auto"
    batch_size: int = Field(32, ge=1)
    base_model: bool = Field(True, description="also score the untrained policy")
    reward_models: IfevalPairsConfig | None = Field(
        None, description="score the reward models on IFEval-phrased pairs built by this recipe (None: skip)"
    )


class PipelineConfig(_Strict):
    name: Name = Field("pipeline", description="the run's name: artifacts and deployments carry it")
    build: BuildConfig
    reward_model: TrainConfig | None = None
    policy: TrainConfig | None = None
    baselines: bool = Field(True, description="train original-pairs-only baselines with the same budget")
    evaluation: EvaluationConfig | None = EvaluationConfig()
    workers: int = Field(2, ge=1, description="construction worker processes (serial task runner)")
    task_runner: Literal["default", "dask"] = Field(
        "default", description="dask: construction batches run as Prefect tasks on a Dask LocalCluster"
    )
    dask_workers: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _kinds(self) -> PipelineConfig:
        for field, kind in (("reward_model", "rm"), ("policy", "dpo")):
            cfg = getattr(self, field)
            if cfg is not None and cfg.kind != kind:
                raise ValueError(f"{field}.kind must be {kind!r}")
            if cfg is not None and cfg.data != self.build.name:
                raise ValueError(f"{field}.data is {cfg.data!r}, but the build is named {self.build.name!r}")
        return self

    def trainings(self) -> dict[str, TrainConfig]:
        """Every model the run trains, by role: rm, rm_baseline, policy, policy_baseline."""
        out: dict[str, TrainConfig] = {}
        for role, cfg in (("rm", self.reward_model), ("policy", self.policy)):
            if cfg is None:
                continue
            out[role] = cfg
            if self.baselines:
                out[f"{role}_baseline"] = cfg.baseline()
        return out

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[
            :16
        ]

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> PipelineConfig:
        """Load a recipe; `build:` may be a path to a build recipe (relative to this file or the cwd)."""
        path = Path(path)
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
        for key in ("build", "reward_model", "policy"):
            value = raw.get(key)
            if isinstance(value, str):
                ref = Path(value)
                if not ref.is_file() and (path.parent / value).is_file():
                    ref = path.parent / value
                with open(ref, encoding="utf-8") as fh:
                    raw[key] = yaml.safe_load(fh) or {}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(raw)
