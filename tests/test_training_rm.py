"""The MAPL reward objective on TRL, against TRL's stock loss and hand computation, on a tiny real model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from devices import ids_tensor, on_device

from mapl_core.training.encoding import ComparisonCollator, SideEncoder, encode_comparisons
from mapl_core.training.examples import comparisons_for, decided_inter, sample_per_level
from mapl_core.training.metrics import level_metrics
from mapl_core.training.objective import LEVELS
from mapl_core.training.reward import MaplRewardTrainer, sequence_scores

ALL = {"original": 1.0, "intra": 1.0, "inter": 1.0, "inter_margin": 1.0}


def load_rm(folder: Path, seed: int = 0):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(folder)
    model.config.pad_token_id = tok.pad_token_id
    return model, tok


def trainer_for(model, tok, columns, tmp_path: Path, weights=ALL, **args):
    from datasets import Dataset
    from trl import RewardConfig

    config = RewardConfig(
        output_dir=str(tmp_path / "out"),
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        dataloader_pin_memory=False,  # as mapl_core.training.run: torch warns when pinning without CUDA
        **args,
    )
    return MaplRewardTrainer(
        model=model, args=config, train_dataset=Dataset.from_dict(columns), processing_class=tok,
        level_weights=weights,
    )  # fmt: skip


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_truncation_keeps_the_instructions_and_the_response_start(tiny: Path) -> None:
    _, tok = load_rm(tiny)
    enc = SideEncoder(tok, max_length=64)
    history = [{"role": "user", "content": "old turn " * 80}, {"role": "assistant", "content": "ok"}]
    prompt = [*history, {"role": "user", "content": "Question? Answer in all lowercase letters."}]
    ids, start, cut = enc(prompt, "The response begins here and then goes on " * 20)
    assert cut and len(ids) == 64
    text_p, text_r = tok.decode(ids[:start]), tok.decode(ids[start:])
    assert text_p.endswith("Answer in all lowercase letters.<|end|><|assistant|>")
    assert text_r.startswith("The response begins here")
    short, _, short_cut = enc([{"role": "user", "content": "hi"}], "hello")
    assert not short_cut and tok.decode(short) == "<|user|>hi<|end|><|assistant|>hello<|end|>"


def test_encoding_long_rows_does_not_warn_about_ids_the_rule_cuts(tiny: Path, capfd, caplog) -> None:
    _, tok = load_rm(tiny)
    tok.model_max_length = 48
    long_text = "word " * 200
    warning = "longer than the specified maximum sequence length"

    def printed() -> str:  # transformers logs to its own stderr handler, or through logging where propagated
        text = capfd.readouterr().err + caplog.text
        caplog.clear()
        return text

    printed()
    SideEncoder(tok, max_length=32)([{"role": "user", "content": long_text}], long_text)
    assert warning not in printed()
    tok(long_text)  # the warning the encoder avoids, so this test sees it when it is printed
    assert warning in printed()


def test_decided_inter_rows_are_those_the_instructions_decide(tables) -> None:
    inter = tables["inter"]
    decided = decided_inter(inter)
    gap = inter.follows_chosen.map(sum) - inter.follows_rejected.map(sum)
    assert set(decided.row_id) == set(inter.row_id[gap > 0])
    assert 0 < len(decided) < len(inter[inter.consistent])  # ties exist and are left out
    pairs = comparisons_for(tables, ("inter",), "pairwise", "train", inter_pairs="decided")
    assert {c.key for c in pairs} == set(decided.row_id[decided.split == "train"])
    margin = comparisons_for(tables, ("inter",), "margin", "train", inter_pairs="decided")
    assert margin == comparisons_for(tables, ("inter",), "margin", "train")  # margin ranking is unchanged
    with pytest.raises(ValueError, match=r"consistent \| decided"):
        comparisons_for(tables, ("inter",), "both", "train", inter_pairs="some")


def test_sample_per_level_caps_each_level_reproducibly(tables) -> None:
    comps = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    a, b = sample_per_level(comps, 5, 7), sample_per_level(comps, 5, 7)
    assert [c.key for c in a] == [c.key for c in b]
    counts = {lv: sum(c.level == lv for c in a) for lv in {c.level for c in comps}}
    assert counts == {lv: min(5, sum(c.level == lv for c in comps)) for lv in counts}


def test_zero_lambdas_give_trl_stock_reward_loss_and_gradients(tables, tiny: Path, tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    model, tok = load_rm(tiny)
    comps = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    original = [c for c in comps if c.level == "original"][:4]
    others = [c for lv in LEVELS[1:] for c in [c for c in comps if c.level == lv][:2]]
    cols, _ = encode_comparisons(original + others, tok, max_length=256)
    assert {LEVELS[lv] for lv in cols["level"]} == set(LEVELS)
    mapl = trainer_for(model, tok, cols, tmp_path, weights={"original": 1.0, "intra": 0.0, "inter": 0.0})
    batch = on_device(
        mapl.data_collator([{k: cols[k][i] for k in cols} for i in range(len(cols["level"]))]), model
    )
    model.zero_grad()
    loss = mapl.compute_loss(model, batch)
    loss.backward()
    ours = grads(model)

    stock_rows = {"chosen_ids": [cols["seq_ids"][i][0] for i in range(4)],
                  "rejected_ids": [cols["seq_ids"][i][1] for i in range(4)]}  # fmt: skip
    stock = RewardTrainer(
        model=model, processing_class=tok, train_dataset=Dataset.from_dict(stock_rows),
        args=RewardConfig(output_dir=str(tmp_path / "stock"), bf16=False, gradient_checkpointing=False, report_to=[]),
    )  # fmt: skip
    stock_batch = on_device(
        DataCollatorForPreference(tok.pad_token_id)(
            [{k: v[i] for k, v in stock_rows.items()} for i in range(4)]
        ),
        model,
    )
    model.zero_grad()
    stock_loss = stock.compute_loss(model, stock_batch)
    stock_loss.backward()
    theirs = grads(model)
    assert torch.allclose(loss, stock_loss, atol=1e-6)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.allclose(ours[name], theirs[name], atol=1e-6), name


def test_each_level_loss_is_the_formula_on_the_models_scores(tables, tiny: Path, tmp_path: Path) -> None:
    model, tok = load_rm(tiny)
    comps = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    picked = [next(c for c in comps if c.level == lv) for lv in LEVELS for _ in range(1)]
    cols, _ = encode_comparisons(picked, tok, max_length=256)
    trainer = trainer_for(model, tok, cols, tmp_path, weights={"original": 1.0, "intra": 0.5, "inter": 2.0,
                                                                "inter_margin": 2.0})  # fmt: skip
    batch = on_device(
        trainer.data_collator([{k: cols[k][i] for k in cols} for i in range(len(picked))]), model
    )
    model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
        by_hand = {}
        for i, c in enumerate(picked):  # each sequence scored alone, without padding
            scores = [
                float(model(input_ids=ids_tensor(ids, model)).logits[0, 0]) for ids in cols["seq_ids"][i]
            ]
            margin = sum(coef * s for coef, s in zip(cols["coefs"][i], scores, strict=True))
            by_hand[c.level] = -math.log(1 / (1 + math.exp(-margin)))
    metrics = trainer._metrics["eval"]
    for level in LEVELS:
        assert metrics[f"{level}_loss"][-1] == pytest.approx(by_hand[level], abs=1e-5)
    expected = (
        by_hand["original"] + 0.5 * by_hand["intra"] + 2.0 * (by_hand["inter"] + by_hand["inter_margin"])
    )
    assert float(loss) == pytest.approx(expected, abs=1e-5)


def test_training_lowers_every_level_and_the_saved_model_scores_the_same(
    tables, tiny: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    model, tok = load_rm(tiny)
    comps = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    mixed = [c for lv in LEVELS for c in [c for c in comps if c.level == lv][:12]]
    cols, _ = encode_comparisons(mixed, tok, max_length=128)
    before = level_metrics(model, cols, tok.pad_token_id, sequence_scores)
    trainer = trainer_for(model, tok, cols, tmp_path, learning_rate=3e-3, num_train_epochs=6)
    trainer.train()
    after = level_metrics(model, cols, tok.pad_token_id, sequence_scores)
    for level in before:
        assert after[level]["loss"] < before[level]["loss"], (level, before[level], after[level])
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert {"original_loss", "intra_accuracy", "inter_loss", "inter_margin_accuracy"} <= logged
    trainer.save_model(str(tmp_path / "saved"))
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved", dtype=torch.float32)
    again.to(model.device)
    collate = ComparisonCollator(tok.pad_token_id)
    batch = on_device(collate([{k: cols[k][i] for k in cols} for i in range(8)]), model)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(sequence_scores(model, batch), sequence_scores(again, batch), atol=1e-5)


def test_held_out_metrics_score_each_sequence_once_and_match_per_comparison_scoring(
    tables, tiny: Path
) -> None:
    from mapl_core.training.metrics import distinct_sequences

    model, tok = load_rm(tiny)
    model.eval()
    comps = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    mixed = [c for lv in LEVELS for c in [c for c in comps if c.level == lv][:6]]
    mixed += mixed[:3]  # repeated comparisons share every sequence
    cols, _ = encode_comparisons(mixed, tok, max_length=128)
    sequences, sides = distinct_sequences(cols)
    assert len(sequences) < sum(len(s) for s in cols["seq_ids"])  # the repeats are scored once
    assert all(
        sequences[i][0] == tuple(ids)
        for own, seqs in zip(sides, cols["seq_ids"], strict=True)
        for i, ids in zip(own, seqs, strict=True)
    )
    collate = ComparisonCollator(tok.pad_token_id)
    by_hand: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in range(len(mixed)):
            batch = collate([{k: cols[k][i] for k in cols}])
            margin = float((batch["coefs"] * sequence_scores(model, batch)).sum())
            by_hand.setdefault(LEVELS[cols["level"][i]], []).append(margin)
    groups = [LEVELS[lv] if k % 2 else "odd_one" for k, lv in enumerate(cols["level"])]
    metrics = level_metrics(model, cols, tok.pad_token_id, sequence_scores, batch_size=3)
    for level, margins in by_hand.items():
        assert metrics[level]["rows"] == len(margins)
        assert metrics[level]["accuracy"] == pytest.approx(sum(m > 0 for m in margins) / len(margins))
        expected = sum(math.log1p(math.exp(-m)) for m in margins) / len(margins)
        assert metrics[level]["loss"] == pytest.approx(expected, abs=1e-5)
    grouped = level_metrics(model, cols, tok.pad_token_id, sequence_scores, groups=groups)
    assert grouped["odd_one"]["rows"] == sum(g == "odd_one" for g in groups)
    assert sum(m["rows"] for m in grouped.values()) == len(mixed)


def test_flipped_intra_rows_are_those_whose_other_response_reverses_the_preference(tables) -> None:
    import json

    import pandas as pd

    from mapl_core.instructions import get_family
    from mapl_core.training.examples import flipped_intra, intra_comparisons

    row = {
        "row_id": "p1:intra:chosen", "pair_id": "p1", "split": "test", "response_side": "chosen",
        "response": "I like apple pie.", "condition": 1, "k": 1,
        "prompt_w": [{"role": "user", "content": "Bake? Include the keyword apple."}],
        "prompt_l": [{"role": "user", "content": "Bake? Include the keyword banana."}],
        "instructions_w": ["keywords:existence"], "instructions_l": ["keywords:existence"],
        "kwargs_w": ['{"keywords": ["apple"]}'], "kwargs_l": ['{"keywords": ["banana"]}'],
        "texts_w": ["Include the keyword apple."], "texts_l": ["Include the keyword banana."],
        "follows_w": [True], "follows_l": [False], "sources_w": ["response"], "sources_l": ["response"],
    }  # fmt: skip
    same = dict(row, row_id="p2:intra:chosen", pair_id="p2")
    intra = pd.DataFrame([row, same])
    original = pd.DataFrame([
        {"pair_id": "p1", "chosen": "I like apple pie.", "rejected": "Banana bread is better."},
        {"pair_id": "p2", "chosen": "I like apple pie.", "rejected": "Apple or banana, both."},
    ])  # fmt: skip
    flipped = flipped_intra(intra, original)
    assert list(flipped.row_id) == ["p1:intra:chosen:flipped"]  # p2's other response follows both
    f = flipped.iloc[0]
    assert f.response == "Banana bread is better." and f.response_side == "rejected"
    assert f.kwargs_w == ['{"keywords": ["banana"]}'] and f.prompt_w == row["prompt_l"]
    assert list(f.follows_w) == [True] and list(f.follows_l) == [False]
    [comp] = intra_comparisons(flipped)
    assert comp.sides[0][0] == row["prompt_l"] and comp.sides[0][1] == "Banana bread is better."

    # on a real build: every flipped row is re-checked from scratch, and its twin is a real intra row
    built = flipped_intra(tables["intra"], tables["original"])
    assert 0 < len(built) < len(tables["intra"])
    pairs = tables["original"].set_index("pair_id")
    for r in built.itertuples():
        source = r.row_id.removesuffix(":flipped")
        assert source in set(tables["intra"].row_id)
        assert r.response in (pairs.loc[r.pair_id].chosen, pairs.loc[r.pair_id].rejected)
        fw = [
            get_family(i).verdict(r.response, json.loads(k))
            for i, k in zip(r.instructions_w, r.kwargs_w, strict=True)
        ]
        fl = [
            get_family(i).verdict(r.response, json.loads(k))
            for i, k in zip(r.instructions_l, r.kwargs_l, strict=True)
        ]
        assert (all(fw) and not all(fl)) or (any(fw) and not any(fl))
    with_flipped = comparisons_for(tables, ("intra",), "both", "train", intra_flipped=True)
    plain = comparisons_for(tables, ("intra",), "both", "train")
    assert with_flipped[: len(plain)] == plain
    assert len(with_flipped) - len(plain) == int((built.split == "train").sum())


def test_training_curves_give_each_level_one_colour_in_both_panels() -> None:
    import matplotlib.pyplot as plt

    from mapl_core.training.report import curves_figure

    levels = ("original", "intra", "inter", "inter_margin")
    history = [{"step": s, "loss": 1.0 / s, **{f"{lv}_{k}": 0.5 for lv in levels for k in ("loss", "accuracy")}}
               for s in (1, 2, 3)]  # fmt: skip
    fig = curves_figure(history)
    loss, acc = ({line.get_label(): line.get_color() for line in ax.lines} for ax in fig.axes)
    plt.close(fig)
    assert {lv: loss[f"{lv}_loss"] for lv in levels} == {lv: acc[f"{lv}_accuracy"] for lv in levels}
    assert len({loss[f"{lv}_loss"] for lv in levels} | {loss["loss"]}) == 5  # all different
