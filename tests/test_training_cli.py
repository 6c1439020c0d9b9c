"""`mapl train rm|dpo` end to end on built tables, the contract gate, and every shipped recipe validating."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from corpus import HH_TEST
from tiny_model import build_tiny_model

import mapl_core.training.run as run_module
from data_contracts import CONTRACTS
from mapl_core.build import build
from mapl_core.config import BuildConfig, IngestConfig
from mapl_core.storage.delta_tables import DatasetStore
from mapl_core.training.config import LevelWeights, TrainConfig
from mapl_core.training.run import TrainingDataRejected, train, training_code

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    cfg = BuildConfig(name="t", source=str(HH_TEST), ingest=IngestConfig(limit=60), batch_size=60)
    build(cfg, DatasetStore(root), contracts=CONTRACTS)
    return root


def mapl(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAPL_DATA_ROOT": str(root), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, "-m", "mapl_cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip


def test_every_shipped_recipe_validates() -> None:
    from mapl_core.evaluation.ifeval_pairs import IfevalPairsConfig
    from mapl_core.experiments.dpo_ifeval import DpoExperiment
    from mapl_core.pipeline.config import PipelineConfig

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name.startswith("pipeline_"):
            PipelineConfig.from_yaml(path)  # build / training recipes by file name
            continue
        raw = yaml.safe_load(path.read_text())
        if path.name.startswith("rm_bench_"):
            IfevalPairsConfig.model_validate(raw)
            continue
        model = TrainConfig if path.name.startswith("train_") else BuildConfig
        model.model_validate(raw)
    DpoExperiment.from_yaml(ROOT / "configs" / "experiments" / "dpo_ifeval.yaml")


def test_train_rm_writes_a_model_folder_that_reloads(root: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    run = mapl(root, "train", "rm", "--config", str(ROOT / "configs" / "train_rm_small.yaml"), "--data", "t",
               "--max-steps", "3", "--name", "rm-test")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "intra" in run.stdout and "truncated (kept, never dropped)" in run.stdout
    folder = root / "models" / "rm-test" / "model"
    assert {"model.safetensors", "README.md", "metrics.json", "training_curves.png", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }
    card = (folder / "README.md").read_text()
    assert "| t_intra | 0 |" in card and "Held-out metrics" in card
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["steps"] == 3 and {"original", "intra", "inter", "inter_margin"} <= set(metrics["metrics"])
    assert set(metrics["metrics"]) <= {"original", "intra", "inter", "inter_margin", "inter_decided"}
    AutoModelForSequenceClassification.from_pretrained(folder)


def test_train_dpo_reuses_stored_reference_log_probs(root: Path, tmp_path: Path) -> None:
    tiny = build_tiny_model(tmp_path / "tiny")
    args = ("train", "dpo", "--data", "t", "--model", str(tiny), "--max-steps", "2")
    first = mapl(root, *args, "--name", "dpo-a")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "reference log-probs: computed and stored" in first.stdout
    second = mapl(root, *args, "--name", "dpo-b")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reference log-probs: reused from the cache" in second.stdout
    assert (root / "models" / "dpo-b" / "model" / "model.safetensors").is_file()


def test_tables_without_a_passing_contract_are_refused(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    build(BuildConfig(name="u", source=str(HH_TEST), ingest=IngestConfig(limit=10)), store)  # no contracts
    with pytest.raises(TrainingDataRejected, match=r"u_original@0 has no passing data-contract result"):
        train(TrainConfig(data="u"), store, output=tmp_path / "out")


def test_dpo_with_a_lora_adapter_uses_the_base_model_as_reference(root: Path, tmp_path: Path) -> None:
    from mapl_core.training.config import LoraSettings

    tiny = build_tiny_model(tmp_path / "tiny")
    cfg = TrainConfig(kind="dpo", data="t", model=str(tiny), max_steps=3, batch_size=2, learning_rate=1e-3,
                      limit_per_level=6, eval_limit_per_level=4, lora=LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))  # fmt: skip
    outcome = train(cfg, DatasetStore(root), output=tmp_path / "out")
    folder = outcome.model_dir
    assert (folder / "adapter_config.json").is_file() and (folder / "README.md").is_file()
    assert outcome.steps == 3 and outcome.ref_cache_hit is False
    assert {"original", "intra", "inter", "inter_margin"} <= set(outcome.metrics)
    # the held-out inter pairs the instructions decide are counted again on their own
    from mapl_core.training.examples import decided_inter

    inter = DatasetStore(root).to_pandas("t_inter")
    decided = set(decided_inter(inter[inter.split == cfg.eval_split]).row_id)
    held_out = [c for c in run_module._comparisons(cfg, DatasetStore(root)).held_out if c.level == "inter"]
    expected = sum(c.key in decided for c in held_out)
    assert expected > 0 and outcome.metrics["inter_decided"]["rows"] == expected


def test_a_policy_retrained_under_its_name_is_merged_again(root: Path, tmp_path: Path) -> None:
    """The evaluation stage merges a LoRA policy into its base model once; a retrained adapter (same name,
    new recipe) gets a new merge, not the old one."""
    from safetensors.torch import load_file

    from mapl_core.pipeline.stages import policy_folder
    from mapl_core.training.config import LoraSettings

    tiny = build_tiny_model(tmp_path / "tiny")
    cfg = TrainConfig(kind="dpo", data="t", model=str(tiny), max_steps=2, batch_size=2, learning_rate=1e-3,
                      limit_per_level=4, eval_limit_per_level=2, lora=LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))  # fmt: skip

    def merged_weights(lr: float) -> dict:
        outcome = train(
            cfg.model_copy(update={"learning_rate": lr}), DatasetStore(root), output=tmp_path / "out"
        )
        folder = policy_folder(outcome.model_dir)
        assert folder == tmp_path / "out" / "merged" and policy_folder(outcome.model_dir) == folder  # kept
        return load_file(folder / "model.safetensors")

    first, second = merged_weights(1e-3), merged_weights(5e-2)
    assert any(not first[k].equal(second[k]) for k in first)
    assert not list((tmp_path / "out").glob(".merged.*.tmp"))


@pytest.mark.parametrize("kind", ["rm", "dpo"])
def test_a_curriculum_trains_its_stages_in_turn(root: Path, tmp_path: Path, kind: str) -> None:
    tiny = build_tiny_model(tmp_path / "tiny")
    cfg = TrainConfig(kind=kind, data="t", model=str(tiny), max_steps=5, batch_size=4, logging_steps=1,
                      limit_per_level=12, eval_limit_per_level=4,
                      curriculum=[{"levels": ["intra"], "steps": 2}, {"levels": ["inter_margin"], "steps": 1}])  # fmt: skip
    outcome = train(cfg, DatasetStore(root), output=tmp_path / "out")
    logged = [
        {k.removesuffix("_loss") for k in entry if k.endswith("_loss") and k != "train_loss"}
        for entry in outcome.log_history
        if "loss" in entry
    ]
    assert logged[:3] == [{"intra"}, {"intra"}, {"inter_margin"}]
    assert set().union(*logged[3:]) == {"original", "intra", "inter", "inter_margin"}  # then every level
    assert outcome.steps == 5


def test_checkpoints_of_another_recipe_under_the_same_name_are_not_resumed(
    root: Path, tmp_path: Path, caplog
) -> None:
    """A changed recipe saved under the same name starts from step 0; only the same run resumes."""
    tiny = build_tiny_model(tmp_path / "tiny")
    cfg = TrainConfig(data="t", model=str(tiny), max_steps=2, batch_size=4, save_steps=2, limit_per_level=8,
                      eval_limit_per_level=4)  # fmt: skip
    out = tmp_path / "out"
    first = train(cfg, DatasetStore(root), output=out)
    assert first.resumed_from is None and first.steps == 2
    again = train(cfg, DatasetStore(root), output=out)  # the same run: its last checkpoint, nothing to train
    assert again.resumed_from and again.resumed_from.endswith("checkpoint-2")
    record = out / "checkpoints" / "run.json"
    assert json.loads(record.read_text())["code"] == training_code()
    # checkpoints written by other training code (the record an earlier mapl left) are another run too
    record.write_text(json.dumps({**json.loads(record.read_text()), "code": "0" * 16}))
    with caplog.at_level("WARNING"):
        recoded = train(cfg, DatasetStore(root), output=out)
    assert recoded.resumed_from is None and recoded.steps == 2 and "code differs" in caplog.text
    caplog.clear()
    changed = cfg.model_copy(update={"learning_rate": 1e-2})
    with caplog.at_level("WARNING"):
        other = train(changed, DatasetStore(root), output=out)
    assert other.resumed_from is None and other.steps == 2 and "config differs" in caplog.text
    assert (
        other.metrics["original"]["loss"] != first.metrics["original"]["loss"]
    )  # it trained, at the new rate
    assert json.loads(record.read_text())["config"] == changed.config_hash()
    record.unlink()  # checkpoints nobody recorded are not trusted either
    assert train(changed, DatasetStore(root), output=out).resumed_from is None


def test_curriculum_recipes_are_checked_and_the_hash_follows_what_trains() -> None:
    with pytest.raises(ValueError, match="more than max_steps"):
        TrainConfig(max_steps=3, curriculum=[{"levels": ["intra"], "steps": 4}])
    with pytest.raises(ValueError, match="λ is 0"):
        TrainConfig(levels={"inter": 0.0}, curriculum=[{"levels": ["inter_margin"], "steps": 1}])
    plain = TrainConfig().config_hash()
    assert TrainConfig(curriculum=[{"levels": ["intra"], "steps": 1}]).config_hash() != plain
    # where it writes and how often it logs or saves change nothing that trains
    assert TrainConfig(output_dir="x", logging_steps=3, save_steps=7).config_hash() == plain


def test_the_truncation_rule_reaches_the_encoding_and_keys_the_reference_cache(
    root: Path, tmp_path: Path
) -> None:
    tiny = build_tiny_model(tmp_path / "tiny")
    store = DatasetStore(root)

    def run(rule: str, name: str):
        cfg = TrainConfig(kind="dpo", data="t", model=str(tiny), max_steps=1, batch_size=2, max_length=48,
                          limit_per_level=4, eval_limit_per_level=2, truncation=rule, name=name)  # fmt: skip
        return train(cfg, store, output=tmp_path / name)

    assert run("half", "h").ref_cache_hit is False
    first = run("instructions", "i1")
    assert first.ref_cache_hit is False  # other tokens, other reference log-probs
    assert run("instructions", "i2").ref_cache_hit is True
    encoding = json.loads((first.model_dir / "metrics.json").read_text())["encoding"]
    assert encoding["truncation"] == "instructions" and encoding["max_length"] == 48
    assert encoding["train"]["truncated"] > 0


def test_baseline_flag_trains_the_recipes_original_only_arm_beside_it(root: Path) -> None:
    run = mapl(root, "train", "rm", "--config", str(ROOT / "configs" / "train_rm_small.yaml"), "--data", "t",
               "--max-steps", "2", "--seed", "5", "--baseline")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    folder = (
        root / "models" / "rm-hh-small-baseline" / "model"
    )  # the recipe's name, marked: never the MAPL arm's
    saved = yaml.safe_load((folder / "mapl_train_config.yaml").read_text())
    assert (
        saved["levels"]["intra"] == 0 and saved["levels"]["inter"] == 0 and saved["levels"]["original"] == 1
    )
    assert saved["seed"] == 5 and saved["max_steps"] == 2
    recipe = TrainConfig.from_yaml(ROOT / "configs" / "train_rm_small.yaml", data="t", max_steps=2, seed=5)
    assert {k: v for k, v in saved.items() if k not in ("levels", "name")} == {
        k: v for k, v in recipe.model_dump(mode="json").items() if k not in ("levels", "name")
    }  # everything else as the recipe says


def test_baseline_keeps_a_given_name_and_drops_what_only_the_mapl_levels_use() -> None:
    cfg = TrainConfig(name="arm", curriculum=[{"levels": ["intra"], "steps": 1}], level_shares={"original": 2},
                      levels={"inter_variant": "margin", "intra_flipped": True}, seed=4)  # fmt: skip
    base = cfg.baseline("mine")
    assert base.name == "mine" and base.curriculum == [] and base.level_shares == {}
    assert base.levels == LevelWeights(original=1.0, intra=0.0, inter=0.0) and base.seed == 4
    assert cfg.baseline().name == "arm-baseline"
    plain = TrainConfig(name="arm")  # no curriculum, no shares: the baseline the pipeline always derived
    assert (
        plain.baseline().config_hash()
        == plain.model_copy(
            update={"levels": LevelWeights(original=1.0, intra=0.0, inter=0.0), "name": "arm-baseline"}
        ).config_hash()
    )


def test_level_shares_are_checked_and_reach_the_training_stream() -> None:
    from types import SimpleNamespace

    from mapl_core.training.run import training_stream

    with pytest.raises(ValueError, match="must be > 0: intra=0"):
        TrainConfig(level_shares={"intra": 0})
    with pytest.raises(ValueError, match="reweight the balanced mix"):
        TrainConfig(level_mix="natural", level_shares={"original": 2})
    with pytest.raises(ValueError):
        TrainConfig(level_shares={"inter_margin": 2})  # objectives, not levels
    assert TrainConfig(level_shares={"original": 2}).config_hash() != TrainConfig().config_hash()
    levels = ["original"] * 4 + ["intra"] * 8 + ["inter"] * 8
    args = SimpleNamespace(per_device_train_batch_size=2, gradient_accumulation_steps=1, world_size=1)
    for cfg in (TrainConfig(level_shares={"original": 2}),
                TrainConfig(level_shares={"original": 2}, max_steps=20, curriculum=[{"levels": ["intra"], "steps": 1}])):  # fmt: skip
        order = training_stream(cfg, levels, args)
        counts = {lv: sum(levels[i] == lv for i in order[-32:]) for lv in ("original", "intra", "inter")}
        assert counts["original"] > counts["intra"] and counts["original"] > counts["inter"], counts


def test_a_recipe_trains_on_the_rows_the_quality_script_draws(root: Path) -> None:
    """The CLI's stream is the script's: mixed over the comparisons in table order (not the per-level
    sample's shuffle) and cut to the rows max_steps reach, so the recipe and the experiment share rows."""
    from types import SimpleNamespace

    from mapl_core.training.examples import comparisons_for, sample_per_level
    from mapl_core.training.mixing import mixed_indices
    from mapl_core.training.run import read_tables, stream_rows

    cfg = TrainConfig(data="t", max_steps=7, batch_size=4, grad_accum=2, seed=3)
    tables, _ = read_tables(DatasetStore(root), cfg)
    table = comparisons_for(tables, cfg.levels.active(), "both", "train")
    sample = sample_per_level(table, None, cfg.seed)
    assert [c.key for c in sample] != [c.key for c in table]  # the sample is shuffled ...
    args = SimpleNamespace(per_device_train_batch_size=4, gradient_accumulation_steps=2, world_size=1)
    rows = [sample[i] for i in stream_rows(cfg, sample, table, args)]
    script = [table[i] for i in mixed_indices([c.level for c in table], "balanced", 3)[: 7 * 4 * 2]]
    assert rows == script  # ... the stream is not: the script's rows, in the script's order
    assert len({c.level for c in rows}) == 4
    limited = sample_per_level(table, 5, cfg.seed)  # a per-level sample keeps to its own rows
    assert {id(c) for c in (limited[i] for i in stream_rows(cfg, limited, table, args))} <= {
        id(c) for c in limited
    }


def test_a_torn_run_record_is_not_trusted_and_is_rewritten_whole(tmp_path: Path) -> None:
    """Issue 32: run.json was written in place; a torn one made every later run fail to start."""
    from mapl_core.training.run import resumable_checkpoint

    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "checkpoint-2").mkdir(parents=True)
    (checkpoints / "run.json").write_text('{"config": "ab')  # killed mid-write
    run = {"config": "ab12", "data": {"intra": 0}, "model": "m", "code": "c"}
    assert resumable_checkpoint(checkpoints, run) is None  # no crash; nobody vouches for checkpoint-2
    assert not (checkpoints / "checkpoint-2").exists()
    assert json.loads((checkpoints / "run.json").read_text()) == run
    assert not list(checkpoints.glob(".run.json.*.tmp"))


def test_dpo_references_only_the_comparisons_its_steps_reach(tmp_path: Path) -> None:
    """A short run on a large table encodes and scores with the reference only the rows its steps reach,
    and the held-out rows — the same for every arm of a comparison — share one stored set of log-probs."""
    import numpy as np

    store = DatasetStore(tmp_path / "root")
    build(BuildConfig(name="s", source=str(HH_TEST), ingest=IngestConfig(limit=60), batch_size=60), store,
          contracts=CONTRACTS)  # fmt: skip
    tiny = build_tiny_model(tmp_path / "tiny")
    mapl_arm = TrainConfig(kind="dpo", data="s", model=str(tiny), max_steps=2, batch_size=2, max_length=48,
                           limit_per_level=12, eval_limit_per_level=2, name="m")  # fmt: skip
    cache = store.cache_dir() / "ref_logps"

    first = train(mapl_arm, store, output=tmp_path / "m")
    reached = first.encoding["train"]["comparisons"]
    assert 0 < reached <= 4  # 2 steps × batch 2, not the 36 comparisons drawn
    stored = {p.name: len(np.load(p)["lengths"]) for p in cache.glob("*.npz")}
    assert sorted(stored.values()) == sorted([reached, first.encoding["eval"]["comparisons"]])

    train(mapl_arm.baseline(), store, output=tmp_path / "b")
    assert len(list(cache.glob("*.npz"))) == 3  # a new training set, the same held-out set
