"""Validated training recipes (one YAML per experiment): `mapl train rm|dpo --config configs/X.yaml`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mapl_core.names import Name
from mapl_core.training.mixing import check_shares


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelWeights(_Strict):
    """λ per level (`L = original + λ_intra·intra + λ_inter·inter`); 0 switches a level off."""

    original: float = Field(1.0, ge=0.0)
    intra: float = Field(1.0, ge=0.0)
    inter: float = Field(1.0, ge=0.0)
    inter_variant: Literal["pairwise", "margin", "both"] = "both"
    inter_pairs: Literal["consistent", "decided"] = Field(
        "consistent",
        description="inter pairs from every consistent combination, or only those the instructions decide",
    )
    intra_flipped: bool = Field(
        False,
        description="also train on intra rows re-read with the pair's other response where the checkers "
        "reverse the preference (examples.flipped_intra): they defeat prompt-only argument priors",
    )

    def weights(self) -> dict[str, float]:
        return {
            "original": self.original,
            "intra": self.intra,
            "inter": self.inter,
            "inter_margin": self.inter,
        }

    def active(self) -> tuple[str, ...]:
        return tuple(lv for lv in ("original", "intra", "inter") if getattr(self, lv) > 0)


class CurriculumStage(_Strict):
    """`steps` optimizer steps on the rows of `levels` alone (level-mixed as `level_mix` says)."""

    levels: list[Literal["original", "intra", "inter", "inter_margin"]] = Field(
        min_length=1, description="'inter' holds both inter variants, 'inter_margin' the margin-ranking rows"
    )
    steps: int = Field(ge=1)


class LoraSettings(_Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"


class TrainConfig(_Strict):
    name: Name = Field("mapl", description="output folder name under <data root>/models")
    kind: Literal["rm", "dpo"] = "rm"
    model: str = Field("default", description="'default' (rm: MiniLM, dpo: SmolLM2), 'minilm', 'smollm2', "
                       "a folder or a hub id")  # fmt: skip
    data: Name = Field("hh", description="the build name: tables <data>_original, <data>_intra, …")
    data_versions: dict[str, int] = Field(
        default_factory=dict, description="pin table versions, e.g. {intra: 3}"
    )
    levels: LevelWeights = LevelWeights()
    max_length: int = Field(256, ge=16)
    truncation: Literal["half", "instructions"] = Field(
        "half",
        description="rule for sides longer than max_length: 'half' (the response keeps its beginning and at "
        "least half) or 'instructions' (the prompt's instruction block stays whole, the response keeps its "
        "beginning and end); see mapl_core/training/encoding.py",
    )
    max_steps: int = Field(100, ge=1)
    batch_size: int = Field(8, ge=1, description="comparisons per device step")
    grad_accum: int = Field(1, ge=1)
    learning_rate: float = Field(1e-5, gt=0)
    warmup_steps: int = Field(10, ge=0)
    scheduler: str = "cosine"
    beta: float = Field(0.1, gt=0, description="DPO only")
    seed: int = 0
    level_mix: Literal["balanced", "natural"] = Field(
        "balanced", description="balanced: each objective gets an equal share of every batch (see mixing)"
    )
    level_shares: dict[Literal["original", "intra", "inter"], float] = Field(
        default_factory=dict,
        description="reweight the balanced mix: relative rows per objective, 1 for each one not named, e.g. "
        "{original: 2} gives the original pairs half of every batch (see mixing)",
    )
    curriculum: list[CurriculumStage] = Field(
        default_factory=list,
        description="stages trained in turn before the rest of max_steps, which trains on every level; "
        "e.g. [{levels: [intra], steps: 500}] (docs/experiments/rm_quality_25_families.md measures what it does)",
    )
    limit_per_level: int | None = Field(None, ge=1, description="training comparisons per level (None: all)")
    eval_split: Literal["validation", "test"] = "validation"
    eval_limit_per_level: int | None = Field(200, ge=1)
    lora: LoraSettings | None = None
    bf16: bool = False
    gradient_checkpointing: bool = False
    logging_steps: int = Field(10, ge=1)
    save_steps: int = Field(50, ge=1)
    output_dir: str | None = None

    @model_validator(mode="after")
    def _curriculum_fits(self) -> TrainConfig:
        staged = sum(stage.steps for stage in self.curriculum)
        if staged > self.max_steps:
            raise ValueError(f"curriculum stages take {staged} steps, more than max_steps {self.max_steps}")
        active = set(self.levels.active()) | ({"inter_margin"} if self.levels.inter else set())
        for stage in self.curriculum:
            if off := sorted(set(stage.levels) - active):
                raise ValueError(f"curriculum stage names levels whose λ is 0: {off}")
        return self

    @model_validator(mode="after")
    def _shares_fit(self) -> TrainConfig:
        check_shares(self.level_shares, self.level_mix)
        return self

    def baseline(self, name: str | None = None) -> TrainConfig:
        """This recipe's baseline arm: original pairs alone (λ_intra = λ_inter = 0), no curriculum and no
        level shares (one objective has nothing to share), every other setting as here, saved as
        `<name>-baseline` unless `name` is given, so that the two arms never share a folder."""
        raw = self.model_dump()
        raw.update(
            levels=LevelWeights(original=1.0, intra=0.0, inter=0.0).model_dump(),
            curriculum=[],
            level_shares={},
            name=name or f"{self.name}-baseline",
        )
        return TrainConfig.model_validate(raw)

    def config_hash(self) -> str:
        """What the training depends on: every field but where it writes and how often it logs or saves."""
        payload = self.model_dump(mode="json", exclude={"output_dir", "logging_steps", "save_steps"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> TrainConfig:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(raw)
