"""Token classification in the shared training loop: per-token targets, their loss, and batched token logits.

Each word's label sits on its first sub-token; the other sub-tokens and the special tokens get -100, so the loss
and the predictions see one position per word (see :mod:`bertkit.tagging.words`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.data.encoding import Encoded, gather_padded
from bertkit.engine.batches import token_positions
from bertkit.engine.forward import forward_batches
from bertkit.tagging.words import IGNORE, EncodedWords


class TokenObjective:
    """Cross-entropy over every sub-token position whose label is not -100 (the loop's ``Objective``)."""

    forward_copies = 1

    def __init__(self, words: EncodedWords, word_labels: np.ndarray) -> None:
        self.encoded = words.encoded
        self.labels = words.token_labels(word_labels)  # int64 [total tokens], -100 off first sub-tokens
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)

    def batch_targets(self, index: np.ndarray, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        longest = inputs["input_ids"].shape[1]
        return gather_padded(self.encoded, self.labels, index, IGNORE, longest)  # [batch, longest]

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        logits = outputs.logits.float()  # [batch, longest, labels]
        return self.loss_fn(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def predict(self, model: nn.Module, validation: Encoded, device: torch.device, dtype: torch.dtype | None) -> Any:
        return predict_token_logits(model, validation, device=device, dtype=dtype)


def predict_token_logits(
    model: nn.Module,
    encoded: Encoded,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Logits of every token, float32 [total tokens, labels], aligned with ``encoded.ids``; ``batch_size`` None:
    the device's default (:func:`bertkit.devices.predict_batch_size`)."""
    out = np.empty((len(encoded.ids), model.config.num_labels), dtype=np.float32)

    def store(index: np.ndarray, inputs: dict[str, torch.Tensor], outputs: Any) -> None:
        logits = outputs.logits.float().cpu().numpy()  # [batch, longest, labels]
        mask, flat = token_positions(encoded, index, logits.shape[1])
        out[flat] = logits[mask]

    forward_batches(model, encoded, store, batch_size=batch_size, device=device, dtype=dtype)
    return out
