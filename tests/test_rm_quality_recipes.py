"""configs/build_hh_lexical.yaml and configs/train_rm_lexical.yaml are the quality experiment's lexical preset
(benchmarks/rm_quality.py) as CLI recipes: the same build, byte for byte in its settings, and the MAPL arm's
training settings. If the preset moves, these fail until the recipes move with it."""

from __future__ import annotations

from pathlib import Path

from rm_quality_module import ROOT, rmq

from mapl_core.config import BuildConfig
from mapl_core.training.config import TrainConfig

LEXICAL = rmq.PRESETS["lexical"]
MAPL_ARM = rmq.VARIANTS["variant: MAPL with mirrored intra rows"]


def test_build_recipe_is_the_lexical_preset_mirrored_build() -> None:
    recipe = BuildConfig.from_yaml(ROOT / "configs" / "build_hh_lexical.yaml")
    source = (ROOT / recipe.source).resolve()  # the CLI reads it from the repository root
    assert source.is_file(), source
    restrict, _ = rmq.family_restriction(LEXICAL["families"])
    preset = rmq.build_config(rmq.PAIRS, recipe.name, intra_pairing="mirrored", **restrict)
    assert Path(preset.source).resolve() == source
    assert recipe.model_copy(update={"source": preset.source}) == preset
    assert recipe.model_copy(update={"source": preset.source}).config_hash() == preset.config_hash()


def test_train_recipe_is_the_lexical_preset_mapl_arm() -> None:
    build = BuildConfig.from_yaml(ROOT / "configs" / "build_hh_lexical.yaml")
    cfg = TrainConfig.from_yaml(ROOT / "configs" / "train_rm_lexical.yaml")
    assert (cfg.kind, cfg.model, cfg.data) == ("rm", "default", build.name)
    assert (cfg.max_steps, cfg.batch_size, cfg.grad_accum) == (LEXICAL["steps"], LEXICAL["batch"], 1)
    assert cfg.learning_rate == LEXICAL["lr"]
    assert (cfg.max_length, cfg.truncation) == (LEXICAL["max_length"], LEXICAL["truncation"])
    assert (cfg.scheduler, cfg.warmup_steps) == (LEXICAL["scheduler"], rmq.WARMUP_STEPS)
    assert cfg.level_mix == "balanced" and not cfg.curriculum  # the script's --mix default, one stage
    assert cfg.level_shares == dict(MAPL_ARM.shares)
    levels = cfg.levels
    assert (levels.original, levels.intra, levels.inter) == MAPL_ARM[:3]
    assert (levels.inter_variant, levels.inter_pairs) == (MAPL_ARM.inter_variant, MAPL_ARM.inter_pairs)
    assert levels.intra_flipped == MAPL_ARM.flipped


def test_the_recipes_baseline_flag_gives_the_presets_baseline_arm() -> None:
    cfg = TrainConfig.from_yaml(ROOT / "configs" / "train_rm_lexical.yaml")
    base = cfg.baseline()
    arm = rmq.VARIANTS["baseline (original only)"]
    assert (base.levels.original, base.levels.intra, base.levels.inter) == arm[:3]
    assert base.model_copy(update={"levels": cfg.levels, "name": cfg.name}) == cfg  # nothing else changes


def test_the_script_draws_its_rows_with_the_library_stream() -> None:
    """The records were made with mixed_indices cut to steps x batch; the script now asks
    run.training_stream, which is what the lexical recipe trains on (for any seed and shares)."""
    import random
    from argparse import Namespace
    from types import SimpleNamespace

    from mapl_core.training.mixing import mixed_indices
    from mapl_core.training.run import training_stream

    rng = random.Random(0)
    levels = rng.choices(["original", "intra", "inter", "inter_margin"], weights=[1, 2, 5, 2], k=500)
    args = Namespace(mix="balanced", steps=30, batch=8)
    recipe = TrainConfig.from_yaml(ROOT / "configs" / "train_rm_lexical.yaml")
    per_step = SimpleNamespace(per_device_train_batch_size=8, gradient_accumulation_steps=1, world_size=1)
    for seed, shares in ((0, ()), (3, (("original", 2.0),))):
        order = rmq.training_order(levels, args, seed, shares, ())
        assert order == mixed_indices(levels, "balanced", seed, dict(shares))[: 30 * 8]
        cfg = recipe.model_copy(update={"seed": seed, "level_shares": dict(shares), "max_steps": 30})
        assert order == training_stream(cfg, levels, per_step)
    staged = rmq.training_order(levels, args, 0, (), ((("intra",), 0.5), (None, 0.5)))
    assert len(staged) == 30 * 8 and {levels[i] for i in staged[:120]} == {"intra"}
