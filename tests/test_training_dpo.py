"""MAPL-DPO on TRL: stock-loss equality, hand-computed levels, the on-disk reference log-probs, training."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from devices import ids_tensor, on_device

from mapl_core.training.dpo import MaplDPOTrainer, ref_cache_key
from mapl_core.training.encoding import encode_comparisons
from mapl_core.training.examples import comparisons_for
from mapl_core.training.objective import LEVELS

ALL = {"original": 1.0, "intra": 1.0, "inter": 1.0, "inter_margin": 1.0}


def policy(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(
        folder
    )


def dpo_config(tmp_path: Path, **kw):
    from trl import DPOConfig

    # dataloader_pin_memory off as in mapl_core.training.run: torch warns when pinning without CUDA
    base = dict(output_dir=str(tmp_path / "out"), bf16=False, gradient_checkpointing=False, report_to=[],
                per_device_train_batch_size=4, logging_steps=1, save_strategy="no", beta=0.5, seed=0,
                dataloader_pin_memory=False)  # fmt: skip
    return DPOConfig(**{**base, **kw})


def mixed(tables, per_level: int):
    comps = comparisons_for(tables, ("original", "intra", "inter"), "both", "train")
    return [c for lv in LEVELS for c in [c for c in comps if c.level == lv][:per_level]]


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_zero_lambdas_give_trl_stock_dpo_loss_and_gradients(tables, tiny: Path, tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import DPOTrainer

    model, tok = policy(tiny)
    comps = mixed(tables, 3)
    cols, report = encode_comparisons(comps, tok, max_length=4096)
    assert report.truncated == 0
    weights = {"original": 1.0, "intra": 0.0, "inter": 0.0, "inter_margin": 0.0}
    ours = MaplDPOTrainer(model=model, args=dpo_config(tmp_path), train_dataset=Dataset.from_dict(cols),
                          processing_class=tok, level_weights=weights)  # fmt: skip
    torch.manual_seed(1)
    with torch.no_grad():  # move the policy away from the reference so the loss is not log 2 everywhere
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    rows = [ours.train_dataset[i] for i in range(len(cols["level"]))]
    model.zero_grad()
    loss = ours.compute_loss(model, on_device(ours.data_collator(rows), model))
    loss.backward()
    mine = grads(model)

    originals = [c for c in comps if c.level == "original"]
    stock_rows = {  # TRL's conversational preference format, tokenized by TRL itself
        "prompt": [c.sides[0][0] for c in originals],
        "chosen": [[{"role": "assistant", "content": c.sides[0][1]}] for c in originals],
        "rejected": [[{"role": "assistant", "content": c.sides[1][1]}] for c in originals],
    }
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for p_ref, p_init in zip(reference.parameters(), policy(tiny)[0].parameters(), strict=True):
            p_ref.copy_(p_init)
    stock = DPOTrainer(model=model, ref_model=reference, args=dpo_config(tmp_path / "stock", max_length=None),
                       train_dataset=Dataset.from_dict(stock_rows), processing_class=tok)  # fmt: skip
    tokenized = [stock.train_dataset[j] for j in range(len(originals))]
    for j, i in enumerate(i for i, lv in enumerate(cols["level"]) if lv == 0):  # the same tokens as TRL's
        (a, b), (sa, sb) = cols["seq_ids"][i], cols["response_starts"][i]
        assert (a[:sa], a[sa:], b[sb:]) == tuple(
            tokenized[j][k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")
        )
    batch = on_device(
        stock.data_collator(
            [{k: t[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for t in tokenized]
        ),
        model,
    )
    model.zero_grad()
    stock_loss = stock.compute_loss(model, batch)
    stock_loss.backward()
    theirs = grads(model)
    assert float(loss.detach()) != pytest.approx(math.log(2), abs=1e-4)
    assert torch.allclose(loss, stock_loss, atol=1e-5)
    for name in mine:
        assert torch.allclose(mine[name], theirs[name], atol=1e-5), name


def test_reference_log_probs_are_stored_and_reused(tables, tiny: Path, tmp_path: Path) -> None:
    from datasets import Dataset

    model, tok = policy(tiny)
    cols, _ = encode_comparisons(mixed(tables, 2), tok, max_length=128)
    key = ref_cache_key("tiny-rev", "t@1", tok, 128)
    kwargs = dict(args=dpo_config(tmp_path), processing_class=tok, level_weights=ALL,
                  ref_cache_dir=tmp_path / "ref", ref_cache_keys={"train": key})  # fmt: skip
    first = MaplDPOTrainer(model=model, train_dataset=Dataset.from_dict(cols), **kwargs)
    second = MaplDPOTrainer(model=policy(tiny)[0], train_dataset=Dataset.from_dict(cols), **kwargs)
    assert first.ref_cache_hits == {"train": False} and second.ref_cache_hits == {"train": True}
    assert first.train_dataset["ref_logps"] == second.train_dataset["ref_logps"]
    assert ref_cache_key("tiny-rev", "t@2", tok, 128) != key != ref_cache_key("tiny-rev", "t@1", tok, 64)


def test_dpo_training_lowers_every_level_and_the_saved_policy_reloads(
    tables, tiny: Path, tmp_path: Path
) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    model, tok = policy(tiny)
    cols, _ = encode_comparisons(mixed(tables, 8), tok, max_length=128)
    trainer = MaplDPOTrainer(model=model, args=dpo_config(tmp_path, learning_rate=2e-3, num_train_epochs=4),
                             train_dataset=Dataset.from_dict(cols), processing_class=tok, level_weights=ALL)  # fmt: skip
    rows = [trainer.train_dataset[i] for i in range(len(cols["level"]))]

    def level_losses() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            trainer.compute_loss(model, on_device(trainer.data_collator(rows), model))
        return {lv: trainer._metrics["eval"][f"{lv}_loss"][-1] for lv in LEVELS}

    before = level_losses()
    trainer.train()
    after = level_losses()
    for lv in LEVELS:
        assert after[lv] < before[lv], (lv, before[lv], after[lv])
    trainer.save_model(str(tmp_path / "saved"))
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "saved", dtype=torch.float32).to(model.device)
    ids = ids_tensor(cols["seq_ids"][0][0], model)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, again(input_ids=ids).logits, atol=1e-5)
