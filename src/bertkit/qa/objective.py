"""Extractive QA in the shared training loop: start/end targets, their loss, and batched span logits."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.data.encoding import Encoded
from bertkit.engine.batches import token_positions
from bertkit.engine.forward import forward_batches


class SpanObjective:
    """Targets are the start and end token positions of the answer in each window ([windows, 2]; the CLS
    position when the window holds no answer); the loss is (CE(start) + CE(end)) / 2."""

    forward_copies = 1

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = torch.from_numpy(targets)  # [windows, 2] int64
        self.cross_entropy = nn.CrossEntropyLoss()

    def batch_targets(self, index: np.ndarray, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.targets[index]  # [batch, 2]

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        start = self.cross_entropy(outputs.start_logits.float(), targets[:, 0])  # logits [batch, longest]
        end = self.cross_entropy(outputs.end_logits.float(), targets[:, 1])
        return (start + end) / 2

    def predict(
        self, model: nn.Module, validation: Encoded, device: torch.device, dtype: torch.dtype | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return predict_span_logits(model, validation, device=device, dtype=dtype)


def predict_span_logits(
    model: nn.Module,
    encoded: Encoded,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of every token, flat and aligned with ``encoded.ids``: two float32 [total tokens];
    ``batch_size`` None: the device's default (:func:`bertkit.devices.predict_batch_size`)."""
    start_out = np.zeros(len(encoded.ids), dtype=np.float32)
    end_out = np.zeros(len(encoded.ids), dtype=np.float32)

    def store(index: np.ndarray, inputs: dict[str, torch.Tensor], outputs: Any) -> None:
        mask, flat = token_positions(encoded, index, outputs.start_logits.shape[1])  # mask [batch, longest]
        start_out[flat] = outputs.start_logits.float().cpu().numpy()[mask]
        end_out[flat] = outputs.end_logits.float().cpu().numpy()[mask]

    forward_batches(model, encoded, store, batch_size=batch_size, device=device, dtype=dtype, progress=progress)
    return start_out, end_out
