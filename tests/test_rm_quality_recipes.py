"""The quality experiments are recipes (configs/experiments/): every arm expands to a `TrainConfig` that
`training.run.train` runs, and the lexical experiment's build and arms are the CLI recipes
configs/build_hh_lexical.yaml and configs/train_rm_lexical.yaml (with and without --baseline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapl_core.config import BuildConfig
from mapl_core.experiments.recipe import Experiment
from mapl_core.paths import shared_data_dir
from mapl_core.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "configs" / "experiments"
LEXICAL = Experiment.from_yaml(EXPERIMENTS / "rm_quality_lexical.yaml")
PER_RUN = {"name", "data", "model", "output_dir"}  # where a run writes and reads, not what it trains


def test_every_shipped_experiment_expands_every_catalog_arm() -> None:
    paths = sorted(p for p in EXPERIMENTS.glob("rm_quality_*.yaml"))
    assert [p.stem for p in paths] == ["rm_quality_cpu", "rm_quality_full", "rm_quality_lexical"]
    for path in paths:
        exp = Experiment.from_yaml(path)
        for variant in exp.variants:
            cfg = exp.train_config(variant, 2, Path("out"))
            assert (cfg.kind, cfg.seed, cfg.data) == ("rm", 2, exp.data_name(exp.variants[variant].intra))


def test_an_unknown_arm_or_a_per_arm_field_is_refused(tmp_path: Path) -> None:
    (tmp_path / "variants.yaml").write_text((EXPERIMENTS / "variants.yaml").read_text())
    (tmp_path / "x.yaml").write_text("name: x\narms: {baseline: 1, nope: 1}\n")
    with pytest.raises(ValueError, match="unknown variants"):
        Experiment.from_yaml(tmp_path / "x.yaml")
    (tmp_path / "x.yaml").write_text("name: x\ntrain: {seed: 3}\narms: {baseline: 1}\n")
    with pytest.raises(ValueError, match="set per arm"):
        Experiment.from_yaml(tmp_path / "x.yaml")


def test_build_recipe_is_the_lexical_experiments_mirrored_build() -> None:
    recipe = BuildConfig.from_yaml(ROOT / "configs" / "build_hh_lexical.yaml")
    source = (ROOT / recipe.source).resolve()  # the CLI reads it from the repository root
    assert source.is_file(), source
    built = LEXICAL.build_config("mirrored", shared_data_dir())
    assert Path(built.source).resolve() == source
    assert recipe.model_copy(update={"source": built.source, "name": built.name}) == built
    assert recipe.config_hash() != built.config_hash()  # the path as given is a setting ...
    assert recipe.model_copy(update={"source": built.source}).config_hash() == built.config_hash()  # ... only


def test_train_recipe_is_the_lexical_experiments_mapl_arm_and_its_baseline() -> None:
    recipe = TrainConfig.from_yaml(ROOT / "configs" / "train_rm_lexical.yaml")
    arm = LEXICAL.train_config("mapl-mirrored", 0, Path("out"))
    assert arm.model_dump(exclude=PER_RUN) == recipe.model_dump(exclude=PER_RUN)
    assert arm.config_hash() != recipe.config_hash()  # they name other builds
    base = LEXICAL.train_config("baseline", 0, Path("out"))
    assert base.model_dump(exclude=PER_RUN) == recipe.baseline().model_dump(exclude=PER_RUN)
    # MiniLM either way: the recipe's 'default' reward model is the experiment's 'minilm'
    from mapl_core.training.run import resolve_training_model

    assert resolve_training_model(recipe.model, "rm") == resolve_training_model(arm.model, "rm")


def test_curricula_are_shares_of_the_steps_and_keep_their_order() -> None:
    cfg = LEXICAL.train_config("curriculum-mapl-then-intra", 1, Path("out"), max_steps=40)
    assert [(s.levels, s.steps) for s in cfg.curriculum] == [
        (["original", "intra", "inter", "inter_margin"], 20),
        (["intra"], 20),
    ]
    assert cfg.data == LEXICAL.data_name("mirrored") != LEXICAL.data_name("independent")
