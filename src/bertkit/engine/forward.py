"""Batched forward passes: length-sorted, dynamically padded, no autograd; results in input order."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bertkit.data.encoding import Encoded, collate, inference_batches
from bertkit.devices import autocast, predict_batch_size
from bertkit.models.packed import packed_classifier


def uses_type_ids(model, encoded: Encoded) -> bool:
    """Segment ids matter only for pairs, and only for models with more than one segment embedding
    (BERT yes; RoBERTa and DistilBERT no)."""
    return encoded.type_ids is not None and getattr(model.config, "type_vocab_size", 1) > 1


Forward = Callable[[dict[str, torch.Tensor]], np.ndarray]


@torch.inference_mode()
def predict_logits(
    model,
    encoded: Encoded,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress: bool = False,
    packed: bool = True,
) -> np.ndarray:
    """Logits of a torch model for every example, float32 [n, num_labels], rows in input order.

    BERT classifiers run :mod:`bertkit.models.packed`'s forward (no work on padding, [CLS]-only last layer; same logits
    up to float rounding) unless ``packed=False``; other architectures run their own forward."""
    device = device or next(model.parameters()).device
    batch_size = predict_batch_size(batch_size, device)  # None: 64 on CPU, 1024 on a GPU
    was_training = model.training
    if was_training:  # toggling every submodule costs ~1 ms, noticeable on one-text calls
        model.eval()
    run = (packed and packed_classifier(model)) or (lambda **inputs: model(**inputs).logits)

    def forward(inputs: dict[str, torch.Tensor]) -> np.ndarray:
        inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
        with autocast(device, dtype):
            return run(**inputs).float().cpu().numpy()

    try:
        return batched_logits(
            forward, encoded, model.config.num_labels, uses_type_ids(model, encoded), batch_size, progress
        )
    finally:
        if was_training:
            model.train()


def batched_logits(
    forward: Forward, encoded: Encoded, num_labels: int, with_types: bool, batch_size: int, progress: bool
) -> np.ndarray:
    """Run ``forward`` over length-sorted, dynamically padded batches; float32 [n, num_labels] in input order."""
    out = np.empty((len(encoded), num_labels), dtype=np.float32)
    batches = list(inference_batches(encoded.lengths, batch_size))
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", unit="batch", leave=False)
    for index in batches:
        out[index] = forward(collate(encoded, index, with_types))
    return out


def aggregate_windows(logits: np.ndarray, encoded: Encoded, how: str = "mean") -> np.ndarray:
    """Window logits [windows, labels] to example logits [examples, labels]: the mean or the maximum over
    each example's windows (identity when the input was not windowed)."""
    if encoded.doc_index is None:
        return logits
    n_docs = encoded.n_docs or int(encoded.doc_index.max()) + 1
    counts = np.bincount(encoded.doc_index, minlength=n_docs).astype(np.float32)
    if how == "max":
        out = np.full((n_docs, logits.shape[1]), -np.inf, dtype=np.float32)
        np.maximum.at(out, encoded.doc_index, logits)
        return out
    out = np.zeros((n_docs, logits.shape[1]), dtype=np.float32)
    np.add.at(out, encoded.doc_index, logits)
    return out / counts[:, None]


def logits_to_scores(logits: np.ndarray, task: str) -> np.ndarray:
    """Probabilities (softmax for one label, sigmoid for multi-label) or regression values [n] ."""
    if task == "regression":
        return logits[:, 0]
    if task == "multi-label":
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
