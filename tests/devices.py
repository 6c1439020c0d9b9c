"""Batches to the model's device, for tests that call `compute_loss` or the model themselves.

TRL's trainers move the model to the GPU when one is present; `Trainer.train` moves each batch after it
(`_prepare_inputs`), but a test that feeds a batch by hand has to do it itself, or it only passes on CPU.
"""

from __future__ import annotations

from typing import Any

import torch


def on_device(batch: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    return {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def ids_tensor(ids: list[int], model: torch.nn.Module) -> torch.Tensor:
    """One unpadded sequence as a batch of one, on the model's device."""
    return torch.tensor([ids], device=model.device)
