"""Extractive QA in the shared training loop: start/end targets, their loss, and batched span logits."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.data.encoding import Encoded, collate, inference_batches
from bertkit.devices import autocast, predict_batch_size
from bertkit.engine.forward import uses_type_ids


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


@torch.inference_mode()
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
    device = device or next(model.parameters()).device
    batch_size = predict_batch_size(batch_size, device)
    was_training = model.training
    model.eval()
    with_types = uses_type_ids(model, encoded)
    start_out = np.zeros(len(encoded.ids), dtype=np.float32)
    end_out = np.zeros(len(encoded.ids), dtype=np.float32)
    batches = list(inference_batches(encoded.lengths, batch_size))
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", unit="batch", leave=False)
    try:
        for index in batches:
            inputs = {k: v.to(device, non_blocking=True) for k, v in collate(encoded, index, with_types).items()}
            with autocast(device, dtype):
                outputs = model(**inputs)
            lengths = encoded.lengths[index]
            longest = outputs.start_logits.shape[1]
            positions = np.arange(longest)
            mask = positions[None, :] < lengths[:, None]  # [batch, longest]
            flat = (encoded.offsets[index][:, None] + positions[None, :])[mask]
            start_out[flat] = outputs.start_logits.float().cpu().numpy()[mask]
            end_out[flat] = outputs.end_logits.float().cpu().numpy()[mask]
    finally:
        model.train(was_training)
    return start_out, end_out
