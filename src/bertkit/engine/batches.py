"""The batching of inference, without torch: length-sorted batches capped in examples and padded tokens, collated
on the host, and what is done with their outputs (windows aggregated per example, logits to scores).

:mod:`bertkit.engine.forward` runs torch modules over these batches; :func:`batched_logits` runs any forward
that takes host arrays (ONNX Runtime), so that prediction with an ONNX graph never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bertkit.data.encoding import Encoded, collate_arrays, inference_batches

Forward = Callable[[dict[str, np.ndarray]], np.ndarray]
"""A forward on host batches (input name to int64 [batch, longest] array) that returns float32 logits."""


def uses_type_ids(model: Any, encoded: Encoded) -> bool:
    """Segment ids matter only for pairs, and only for models with more than one segment embedding
    (BERT yes; RoBERTa and DistilBERT no)."""
    return encoded.type_ids is not None and getattr(model.config, "type_vocab_size", 1) > 1


def each_batch(
    encoded: Encoded,
    handle: Callable[[np.ndarray, dict[str, Any]], None],
    with_types: bool,
    batch_size: int,
    progress: bool,
    collate: Callable[[Encoded, np.ndarray, bool], dict[str, Any]] = collate_arrays,
) -> None:
    """The loop itself: collate ``encoded`` in length-sorted batches capped in examples and padded tokens
    (:func:`bertkit.data.encoding.inference_batches`) and hand each, on the host, to ``handle``; ``collate``
    makes numpy arrays (the default) or torch tensors."""
    batches = list(inference_batches(encoded.lengths, batch_size))
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", unit="batch", leave=False)
    for index in batches:
        handle(index, collate(encoded, index, with_types))


def batched_logits(
    forward: Forward, encoded: Encoded, num_labels: int, with_types: bool, batch_size: int, progress: bool
) -> np.ndarray:
    """Logits of a forward that is not a torch module (ONNX Runtime) and takes host batches: float32
    [n, num_labels] in input order, over the same batches as :func:`bertkit.engine.forward.forward_batches`."""
    out = np.empty((len(encoded), num_labels), dtype=np.float32)

    def store(index: np.ndarray, inputs: dict[str, np.ndarray]) -> None:
        out[index] = forward(inputs)

    each_batch(encoded, store, with_types, batch_size, progress)
    return out


def token_positions(encoded: Encoded, index: np.ndarray, longest: int) -> tuple[np.ndarray, np.ndarray]:
    """For a batch padded to ``longest``: the mask of its real tokens, bool [batch, longest], and their flat
    positions in ``encoded.ids``, int64 [real tokens] in row order, to scatter per-token outputs back."""
    positions = np.arange(longest)
    mask = positions[None, :] < encoded.lengths[index][:, None]
    return mask, (encoded.offsets[index][:, None] + positions[None, :])[mask]


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
