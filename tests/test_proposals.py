"""Model-proposed condition arguments: parsing the model's answer, using it in construction, contracts."""

from __future__ import annotations

import json

import pytest
from corpus import HH_TEST

from data_contracts import CONTRACTS
from mapl_core.build import construct_batch
from mapl_core.config import BuildConfig, ConstructionConfig, IngestConfig, ProposalConfig
from mapl_core.construction.sampling import MODEL_ARG_IDS
from mapl_core.data.ingest import IngestReport, Pair, ingest
from mapl_core.data.readers import read_rows
from mapl_core.generation.proposals import (
    CandidateProposer,
    ModelCandidates,
    parse_candidates,
    proposal_messages,
)
from mapl_core.instructions import get_family

CFG = BuildConfig(
    name="p",
    source=str(HH_TEST),
    ingest=IngestConfig(limit=40),
    construction=ConstructionConfig(
        families=(
            "keywords:existence",
            "keywords:forbidden_words",
            "keywords:frequency",
            "startend:end_checker",
            "change_case:english_lowercase",
            "length_constraints:number_words",
        )
    ),
)
PROPOSED = ModelCandidates(words=("zeppelin", "harbor", "lantern"), phrases=("Safe travels, friend.",))


@pytest.fixture(scope="module")
def pairs() -> list[tuple[Pair, str]]:
    items = ingest(read_rows(CFG.source, limit=40), CFG.source, "auto", CFG.ingest, IngestReport(CFG.source))
    return [(p, "train") for p in items if isinstance(p, Pair)]


def test_answers_are_filtered_to_usable_candidates() -> None:
    answer = {
        "present": ["Baking", "dough", "two words", "the", "present", "x", "tomatoes"],
        "absent": ["yeast", "dough", 7, "soil"],
        "closing": [
            "Happy baking, everyone!",
            "one",
            "costs $5 now",
            "closing phrases here",
            "Happy gardening!",
        ],
    }
    got = parse_candidates(json.dumps(answer), source="Knead the dough; the soil is dry.")
    # stopwords, the prompt's own words, short and multi-word entries and the example's words dropped,
    # unless the text has them ("soil")
    assert got.words == ("baking", "dough", "yeast", "soil")
    assert got.phrases == ("Happy baking, everyone!",)
    assert parse_candidates("not json") == ModelCandidates() and not parse_candidates(None)
    assert parse_candidates('noise {"present": ["harbor"], "absent": [], "closing": []} noise').words == (
        "harbor",
    )
    assert parse_candidates('{"present": ["cut off') == ModelCandidates()
    messages = proposal_messages("How do I bake bread?", "Knead the dough and let it rise.")
    assert messages[-1]["role"] == "user" and "Knead the dough" in messages[-1]["content"]


def test_model_candidates_are_used_recorded_and_pass_the_contracts(pairs) -> None:
    cands = {p.pair_id: (PROPOSED, PROPOSED) for p, _ in pairs}
    built = construct_batch(pairs, CFG, CONTRACTS, cands)
    for kind, check in built["checks"].items():
        assert all(e["success"] for e in check["expectations"].values()), kind
    used = 0
    for row in built["rows"]["intra"]:
        for side in ("w", "l"):
            for iid, kw, src in zip(
                row[f"instructions_{side}"], row[f"kwargs_{side}"], row[f"sources_{side}"], strict=False
            ):
                values = json.dumps(json.loads(kw)).lower()
                if src == "model":
                    used += 1
                    assert iid in MODEL_ARG_IDS
                    assert any(w in values for w in (*PROPOSED.words, PROPOSED.phrases[0].lower()))
    for row in built["rows"]["inter"]:
        assert len(row["sources"]) == row["k"]
        used += row["sources"].count("model")
    assert used >= 10
    # the checker decides: "zeppelin" is in no response, so it is only ever a word to avoid or to miss
    for row in built["rows"]["intra"]:
        for side in ("w", "l"):
            for iid, kw, follows in zip(
                row[f"instructions_{side}"], row[f"kwargs_{side}"], row[f"follows_{side}"], strict=False
            ):
                if iid == "keywords:existence" and "zeppelin" in json.loads(kw)["keywords"]:
                    assert not follows


def test_without_proposals_construction_is_unchanged(pairs) -> None:
    plain = construct_batch(pairs, CFG)
    empty = construct_batch(pairs, CFG, candidates={p.pair_id: (ModelCandidates(),) * 2 for p, _ in pairs})
    assert plain["rows"] == empty["rows"]
    assert all(set(r["sources_w"]) == {"rules"} for r in plain["rows"]["intra"])


def test_a_wrong_source_fails_the_contract(pairs) -> None:
    rows = construct_batch(pairs, CFG)["rows"]["intra"]
    bad = [dict(r) for r in rows[:5]]
    fixed_id = next(i for i in range(5) if bad[i]["instructions_w"][0] not in MODEL_ARG_IDS)
    bad[fixed_id]["sources_w"] = ["model", *bad[fixed_id]["sources_w"][1:]]
    result = CONTRACTS.check_rows("intra", bad, CFG)
    failed = {k: v for k, v in result["expectations"].items() if not v["success"]}
    assert list(failed) == ["expect_column_values_to_be_in_set(check_sources_valid)"]
    assert failed["expect_column_values_to_be_in_set(check_sources_valid)"]["unexpected_count"] == 1
    assert get_family(bad[fixed_id]["instructions_w"][0]).id not in MODEL_ARG_IDS


def test_proposal_settings_change_the_config_hash_but_batch_size_does_not() -> None:
    plain = CFG.config_hash()
    with_model = CFG.model_copy(update={"proposals": ProposalConfig()}).config_hash()
    bigger = CFG.model_copy(update={"proposals": ProposalConfig(batch_size=8)}).config_hash()
    assert plain != with_model == bigger
    with pytest.raises(ValueError, match=r"needs proposals\.base_url"):
        ProposalConfig(backend="server")


def test_a_limit_proposes_for_the_first_pairs_whatever_the_batches(pairs, tiny, tmp_path) -> None:
    """`proposals.limit`: the first N pairs in table order get the model's candidates, the rest none (rules
    decide), and the count runs across batches, so the pipeline's proposal and construction stages agree."""
    from mapl_core.build import propose_batch
    from mapl_core.generation.cache import GenerationCache
    from mapl_core.generation.engines import SamplingConfig, TransformersGenerator

    generator = TransformersGenerator(str(tiny))
    params = SamplingConfig(max_new_tokens=8)
    five = pairs[:5]
    seen: list[str] = []
    limited = CandidateProposer(generator, GenerationCache(tmp_path / "a.jsonl"), params, limit=3)
    for start in (0, 2, 4):  # batches of 2, 2, 1
        seen += list(propose_batch(limited, five[start : start + 2]))
    assert seen == [p.pair_id for p, _ in five[:3]]
    assert limited.stats.responses == 6 and limited.describe()["limit"] == 3
    whole = CandidateProposer(generator, GenerationCache(tmp_path / "b.jsonl"), params, limit=3)
    assert list(propose_batch(whole, five)) == seen
    assert propose_batch(whole, five) == {}  # the limit is spent
    unlimited = CandidateProposer(generator, GenerationCache(tmp_path / "a.jsonl"), params)
    assert len(propose_batch(unlimited, five)) == 5 and unlimited.stats.from_cache == 6
    # the limit changes the output, so the hash; leaving it unset keeps the hash it had before
    assert (
        CFG.model_copy(update={"proposals": ProposalConfig(limit=3)}).config_hash()
        != CFG.model_copy(update={"proposals": ProposalConfig()}).config_hash()
    )
