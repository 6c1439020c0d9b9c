"""The IFEval-phrased reward-model benchmark: pairing rules, its contract, the build on a tiny model, scoring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.ifeval_pairs import validate_pairs
from mapl_core.build import ContractFailed
from mapl_core.evaluation.ifeval_files import parse_prompt
from mapl_core.evaluation.ifeval_pairs import SCHEMA, IfevalPairsConfig, commit_pairs, form_pairs
from mapl_core.evaluation.stats import cluster_bootstrap
from mapl_core.storage.delta_tables import DatasetStore

ROOT = Path(__file__).resolve().parents[1]


def item(ids: list[str], kwargs: list[dict], key: int = 1):
    obj = {"key": key, "prompt": "Write about cats.", "instruction_id_list": ids, "kwargs": kwargs}
    parsed, issues = parse_prompt("t", 1, obj)
    assert not issues
    return parsed


NO_COMMA = "punctuation:no_comma"
LOWER = "change_case:english_lowercase"
# long enough for the English check of the lower-case instruction
A_LOWER_COMMA = "the cats purr softly in the warm sun, and the dogs sleep by the door"
B_TITLE_COMMA = "The Cats Purr Softly In The Warm Sun, And The Dogs Sleep By The Door"
C_LOWER = "the cats purr softly in the warm sun and the dogs sleep by the door"
D_SENTENCE = "The cats purr softly in the warm sun and the dogs sleep by the door"


def test_follows_all_beats_every_response_that_breaks_one() -> None:
    it = item([NO_COMMA], [{}])
    rows = form_pairs(it, ["cats purr", "cats, dogs", "cats purr", "", "birds, fish"])
    # the duplicate and the empty response never pair; one follower, two breakers
    assert [(r["chosen_sample"], r["rejected_sample"]) for r in rows] == [(0, 1), (0, 4)]
    assert all(r["chosen_follows_all"] and r["one_instruction"] for r in rows)
    assert rows[0]["decided_by"] == [NO_COMMA] and rows[0]["broken_rejected"] == 1


def test_pairs_that_differ_in_one_instruction_even_when_both_break_another() -> None:
    it = item([NO_COMMA, LOWER], [{}, {}])
    # verdicts (no comma, lower case): A [False, True], B [False, False], C [True, True]
    rows = form_pairs(it, [A_LOWER_COMMA, B_TITLE_COMMA, C_LOWER])
    pairs = {(r["chosen_sample"], r["rejected_sample"]): r for r in rows}
    assert set(pairs) == {(0, 1), (2, 0), (2, 1)}
    assert pairs[0, 1]["one_instruction"] and not pairs[0, 1]["chosen_follows_all"]
    assert pairs[0, 1]["decided_by"] == [LOWER]
    assert pairs[2, 1]["chosen_follows_all"] and not pairs[2, 1]["one_instruction"]
    assert pairs[2, 1]["broken_rejected"] == 2


def test_no_pair_when_neither_rule_ranks_them() -> None:
    it = item([NO_COMMA, LOWER], [{}, {}])
    # [True, False] vs [False, True]: two differences, neither follows all
    assert form_pairs(it, [D_SENTENCE, A_LOWER_COMMA]) == []


def good_rows() -> list[dict]:
    it = item([NO_COMMA, LOWER], [{}, {}])
    return form_pairs(it, [A_LOWER_COMMA, B_TITLE_COMMA, C_LOWER])


def test_contract_passes_good_rows_and_commits_with_lineage(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    cfg = IfevalPairsConfig(name="bench")
    version, result = commit_pairs(store, cfg, good_rows(), validate_pairs, {"stage_key": "k"})
    assert result.success and version.rows == 3 and version.metadata["stage_key"] == "k"
    assert json.loads(version.metadata["contract"])["success"]


@pytest.mark.parametrize(
    "tamper, expectation",
    [
        (lambda rows: rows[0].update(follow_rejected=[True, True]), "check_rejected_labels"),
        (lambda rows: rows[1].update(follow_chosen=[False, True]), "check_chosen_labels"),
        (lambda rows: rows[0].update(chosen=" "), "check_both_non_empty"),
        (lambda rows: rows.append(dict(rows[0])), "unique(pair_id)"),
        (lambda rows: rows[2].update(chosen_follows_all=False, one_instruction=False), "check_preference"),
    ],
)
def test_contract_refuses_bad_rows_and_commits_nothing(tmp_path: Path, tamper, expectation) -> None:
    store = DatasetStore(tmp_path)
    rows = good_rows()
    tamper(rows)
    with pytest.raises(ContractFailed) as failed:
        commit_pairs(store, IfevalPairsConfig(name="bench"), rows, validate_pairs, {})
    assert expectation in str(failed.value)
    assert store.names() == [] and not list((tmp_path / "staging").glob("*.parquet"))
    assert (tmp_path / "reports" / "bench" / "bench.md").is_file()


def test_cluster_bootstrap_is_deterministic_and_wider_for_clustered_rows() -> None:
    values = [1.0] * 10 + [0.0] * 10
    independent = cluster_bootstrap(values, list(range(20)))
    clustered = cluster_bootstrap(values, [0] * 10 + [1] * 10)  # two prompts, each all right or all wrong
    assert independent == cluster_bootstrap(values, list(range(20)))
    assert independent[0] < 0.5 < independent[1]
    assert clustered[1] - clustered[0] > independent[1] - independent[0]


# ---- the build and the scoring, on a tiny model -------------------------------------------------------------

PROMPTS = [
    {"key": 1, "prompt": "List some words.", "instruction_id_list": [NO_COMMA], "kwargs": [{}]},
    {"key": 2, "prompt": "Say more words.", "instruction_id_list": [NO_COMMA, LOWER], "kwargs": [{}, {}]},
    {"key": 3, "prompt": "Write a line.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
]


def mapl(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mapl_cli.main", *args, "--data-root", str(root)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip


@pytest.fixture(scope="module")
def bench(tiny: Path, tmp_path_factory) -> tuple[Path, Path]:
    """A benchmark table built by `mapl rm-bench build` with the tiny model (transformers backend)."""
    root = tmp_path_factory.mktemp("bench")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    recipe = root / "bench.yaml"
    recipe.write_text(f"name: bench\nprompts: {prompts}\nmodel: {tiny}\nbackend: transformers\nsamples: 6\n"
                      "max_new_tokens: 12\nbatch_size: 4\n")  # fmt: skip
    run = mapl(root, "rm-bench", "build", "--config", str(recipe))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "bench@0:" in run.stdout and "contract passed" in run.stdout
    return root, recipe


def test_build_records_lineage_and_is_reused(bench, tiny: Path) -> None:
    root, recipe = bench
    store = DatasetStore(root)
    version = store.versions("bench")[-1]
    meta = version.metadata
    assert json.loads(meta["recipe"])["samples"] == 6 and meta["stage_key"].startswith("rm_pairs-")
    stats = json.loads(meta["stats"])
    assert stats["prompts"] == 3 and stats["responses"] == 18 and stats["pairs"] == version.rows > 0
    df = store.to_pandas("bench@0")
    assert set(df.key) <= {1, 2, 3} and (df.chosen != df.rejected).all()
    again = mapl(root, "rm-bench", "build", "--config", str(recipe))
    assert again.returncode == 0 and "reused" in again.stdout
    assert len(store.versions("bench")) == 1


def test_a_rebuild_from_the_cache_is_identical(bench) -> None:
    root, recipe = bench
    again = mapl(root, "rm-bench", "build", "--config", str(recipe), "--refresh")
    assert again.returncode == 0, again.stderr[-2000:]
    store = DatasetStore(root)
    assert [v.version for v in store.versions("bench")] == [0, 1]
    assert (
        store.versions("bench")[1].metadata["fingerprint"]
        == store.versions("bench")[0].metadata["fingerprint"]
    )


@pytest.fixture(scope="module")
def reward_model(tiny: Path, tmp_path_factory) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rm") / "model"
    model = AutoModelForSequenceClassification.from_pretrained(tiny, num_labels=1, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny)
    model.config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def direct_score(folder: Path, prompt: str, response: str) -> float:
    """The reward of one (prompt, response), read the plain way: chat template, one sequence, no batching."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False
    )
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return float(model(**ids).logits[0, 0])


def test_scores_are_margins_of_the_model_itself(bench, reward_model: Path) -> None:
    from mapl_core.evaluation.pair_scoring import pair_comparisons, reward_margins

    root, _ = bench
    df = DatasetStore(root).to_pandas("bench@0")
    margins, encoding = reward_margins(reward_model, pair_comparisons(df), max_length=512)
    assert encoding["truncated_share"] == 0.0
    for r, m in zip(df.itertuples(), margins, strict=True):
        direct = direct_score(reward_model, r.prompt, r.chosen) - direct_score(
            reward_model, r.prompt, r.rejected
        )
        assert m == pytest.approx(direct, abs=1e-4)


def test_score_command_prints_the_table_and_writes_the_record(
    bench, reward_model: Path, tmp_path: Path
) -> None:
    root, _ = bench
    out = tmp_path / "record.json"
    run = mapl(root, "rm-bench", "score", f"a={reward_model}", f"b={reward_model}", "--table", "bench@0",
               "--reference", "a", "--max-length", "512", "--out", str(out))  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(out.read_text())
    df = DatasetStore(root).to_pandas("bench@0")
    top = record["rows"][0]
    assert top["group"] == "all pairs" and top["pairs"] == len(df) and top["prompts"] == df.key.nunique()
    assert top["a"]["low"] <= top["a"]["accuracy"] <= top["a"]["high"]
    assert top["b − a"]["difference"] == 0.0  # the same model twice
    groups = {r["group"] for r in record["rows"]}
    types = {f"type {i}" for d in df.decided_by for i in d}
    assert types and types <= groups
    assert "all pairs" in run.stdout and "b − a" in run.stdout


def test_score_command_names_a_missing_table_and_folder(bench, reward_model: Path) -> None:
    root, _ = bench
    missing = mapl(root, "rm-bench", "score", str(reward_model), "--table", "nope")
    assert missing.returncode == 2 and "nope" in missing.stderr
    no_folder = mapl(root, "rm-bench", "score", str(root / "absent"), "--table", "bench")
    assert no_folder.returncode == 2 and "is not a folder" in no_folder.stderr


def test_length_groups_split_the_pairs(bench) -> None:
    from mapl_core.evaluation.pair_scoring import groups

    root, _ = bench
    df = DatasetStore(root).to_pandas("bench@0")
    masks = groups(df)
    equal = (df.chosen_chars == df.rejected_chars).sum()
    assert masks["chosen shorter"].sum() + masks["chosen longer"].sum() + equal == len(df)
    assert isinstance(masks["all pairs"], pd.Series) and SCHEMA.names[0] == "pair_id"
