"""The one batched inference forward (length-sorted, dynamically padded batches, no autograd) and what the tasks
build on it: classifier logits here, token logits in :mod:`bertkit.tagging.objective`, span logits in
:mod:`bertkit.qa.objective`. Results come back in input order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bertkit.data.encoding import Encoded, collate, inference_batches
from bertkit.devices import autocast, predict_batch_size
from bertkit.models.packed import packed_classifier

Forward = Callable[[dict[str, torch.Tensor]], np.ndarray]
Step = Callable[[np.ndarray, dict[str, torch.Tensor], Any], None]
"""A task's per-batch output function, ``step(index, inputs, outputs)``: ``index`` the batch's example numbers,
``inputs`` the padded batch on the device, ``outputs`` what the forward returned for it."""


def uses_type_ids(model, encoded: Encoded) -> bool:
    """Segment ids matter only for pairs, and only for models with more than one segment embedding
    (BERT yes; RoBERTa and DistilBERT no)."""
    return encoded.type_ids is not None and getattr(model.config, "type_vocab_size", 1) > 1


@torch.inference_mode()
def forward_batches(
    model: torch.nn.Module,
    encoded: Encoded,
    step: Step,
    *,
    run: Callable[..., Any] | None = None,
    batch_size: int | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress: bool = False,
) -> None:
    """Run ``model`` (or ``run``, another forward over its modules) on every example of ``encoded``, in eval
    mode and without autograd, autocast to ``dtype`` on ``device`` (default: the model's); ``step`` stores each
    batch's outputs.

    Batches are length-sorted and padded to their longest member, at most ``batch_size`` examples (None: the
    device's default, :func:`bertkit.devices.predict_batch_size`) and 16,384 padded tokens."""
    device = device or next(model.parameters()).device
    batch_size = predict_batch_size(batch_size, device)  # None: 64 on CPU, 1024 on a GPU
    run = run or model
    was_training = model.training
    if was_training:  # toggling every submodule costs ~1 ms, noticeable on one-text calls
        model.eval()

    def one_batch(index: np.ndarray, inputs: dict[str, torch.Tensor]) -> None:
        inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
        with autocast(device, dtype):
            outputs = run(**inputs)
        step(index, inputs, outputs)

    try:
        _each_batch(encoded, one_batch, uses_type_ids(model, encoded), batch_size, progress)
    finally:
        if was_training:
            model.train()


def _each_batch(
    encoded: Encoded,
    handle: Callable[[np.ndarray, dict[str, torch.Tensor]], None],
    with_types: bool,
    batch_size: int,
    progress: bool,
) -> None:
    """The loop itself: collate ``encoded`` in length-sorted batches capped in examples and padded tokens
    (:func:`bertkit.data.encoding.inference_batches`) and hand each, on the host, to ``handle``."""
    batches = list(inference_batches(encoded.lengths, batch_size))
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", unit="batch", leave=False)
    for index in batches:
        handle(index, collate(encoded, index, with_types))


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
    """Logits of a sequence classifier for every example, float32 [n, num_labels], rows in input order.

    Classifiers of the families :mod:`bertkit.models.packed` knows (BERT, RoBERTa, ELECTRA, DistilBERT, ALBERT,
    MPNet, DeBERTa-v2/v3, ModernBERT) run its forward (no work on padding, [CLS]-only last layer; same logits up
    to float rounding) unless ``packed=False``; other architectures run their own forward."""
    out = np.empty((len(encoded), model.config.num_labels), dtype=np.float32)
    run = (packed and packed_classifier(model)) or (lambda **inputs: model(**inputs).logits)

    def store(index: np.ndarray, inputs: dict[str, torch.Tensor], logits: torch.Tensor) -> None:
        out[index] = logits.float().cpu().numpy()  # [batch, num_labels]

    forward_batches(
        model, encoded, store, run=run, batch_size=batch_size, device=device, dtype=dtype, progress=progress
    )
    return out


def batched_logits(
    forward: Forward, encoded: Encoded, num_labels: int, with_types: bool, batch_size: int, progress: bool
) -> np.ndarray:
    """Logits of a forward that is not a torch module (ONNX Runtime) and takes host batches: float32
    [n, num_labels] in input order, over the same batches as :func:`forward_batches`."""
    out = np.empty((len(encoded), num_labels), dtype=np.float32)

    def store(index: np.ndarray, inputs: dict[str, torch.Tensor]) -> None:
        out[index] = forward(inputs)

    _each_batch(encoded, store, with_types, batch_size, progress)
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
