"""An experiment YAML (configs/experiments/*.yaml) as validated objects that expand to the product's own
recipes: one `BuildConfig` per build and one `TrainConfig` per arm and seed.

Why recipes and not a script's own trainer: every arm then trains through `training.run.train`, the code
`mapl train` runs, so the experiment and the CLI cannot drift apart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mapl_core.config import BuildConfig, ConstructionConfig, IngestConfig
from mapl_core.names import Name
from mapl_core.training.config import CurriculumStage, LevelWeights, TrainConfig

CATALOG = "variants.yaml"  # the arms an experiment may name, beside the experiment files


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageShare(_Strict):
    """A curriculum stage as a share of the experiment's steps (`CurriculumStage` counts steps)."""

    levels: list[Literal["original", "intra", "inter", "inter_margin"]] = Field(min_length=1)
    share: float = Field(gt=0.0, le=1.0)


class Variant(_Strict):
    """One arm: what it trains on. Everything else (steps, batch, schedule, …) is the experiment's."""

    description: str
    levels: LevelWeights = LevelWeights()
    intra: Literal["independent", "mirrored"] = Field(
        "independent", description="which build's intra rows train (construction.intra_pairing)"
    )
    level_shares: dict[Literal["original", "intra", "inter"], float] = Field(default_factory=dict)
    curriculum: list[StageShare] = Field(default_factory=list)


class BuildPlan(_Strict):
    source: str = "hh-rlhf/harmless-base-test.jsonl.gz"  # under the shared data folder
    pairs: int = Field(2312, ge=1, description="source rows read (the whole shipped split)")
    families: tuple[str, ...] | None = None
    batch_size: int = 500


class HeldOut(_Strict):
    splits: tuple[Literal["test", "validation"], ...] = ("test", "validation")
    per_level: int | None = Field(300, ge=1, description="a seeded sample per column (None: all)")


class Experiment(_Strict):
    name: Name
    description: str = ""
    build: BuildPlan = BuildPlan()
    train: dict = Field(default_factory=dict, description="TrainConfig fields every arm shares")
    held_out: HeldOut = HeldOut()
    arms: dict[str, int] = Field(description="variant name → seeds it runs by default")
    variants: dict[str, Variant] = Field(default_factory=dict, description="the catalog, filled on load")

    @model_validator(mode="after")
    def _names(self) -> Experiment:
        if unknown := sorted(set(self.arms) - set(self.variants)):
            raise ValueError(f"arms name unknown variants {unknown}; the catalog: {sorted(self.variants)}")
        if bad := sorted(set(self.train) & {"name", "kind", "data", "levels", "seed", "output_dir"}):
            raise ValueError(f"train: {bad} are set per arm, not by the experiment")
        TrainConfig.model_validate(self.train)  # the shared fields are valid training settings
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> Experiment:
        path = Path(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        catalog = yaml.safe_load((path.parent / CATALOG).read_text(encoding="utf-8")) or {}
        return cls.model_validate({**raw, "variants": catalog})

    def data_name(self, intra: str) -> str:
        """The build an arm reads: "rmq" (independent intra rows) or "rmqm" (mirrored), with a suffix that
        names a family restriction (any order names the same build)."""
        suffix = ""
        if self.build.families:
            joined = ",".join(sorted(self.build.families))
            suffix = "_" + hashlib.sha256(joined.encode()).hexdigest()[:8]
        return ("rmqm" if intra == "mirrored" else "rmq") + suffix

    def build_config(self, intra: str, shared_data: Path) -> BuildConfig:
        families = {"families": tuple(sorted(self.build.families))} if self.build.families else {}
        return BuildConfig(
            name=self.data_name(intra),
            source=str(shared_data / self.build.source),
            ingest=IngestConfig(limit=self.build.pairs),
            batch_size=self.build.batch_size,
            construction=ConstructionConfig(intra_pairing=intra, **families),
        )

    def train_config(self, variant: str, seed: int, output_dir: Path, **overrides) -> TrainConfig:
        """The recipe of one arm and seed; `overrides`: TrainConfig fields a call changes (e.g. max_steps
        for a short run)."""
        arm = self.variants[variant]
        shared = {**self.train, **overrides}
        steps = shared.get("max_steps", TrainConfig.model_fields["max_steps"].default)
        stages = [CurriculumStage(levels=s.levels, steps=round(s.share * steps)) for s in arm.curriculum]
        return TrainConfig.model_validate(
            {
                **shared,
                "name": f"{self.name}-{variant}-s{seed}",
                "kind": "rm",
                "model": "minilm",
                "data": self.data_name(arm.intra),
                "levels": arm.levels,
                "level_shares": arm.level_shares,
                "curriculum": stages,
                "seed": seed,
                "output_dir": str(output_dir),
            }
        )
