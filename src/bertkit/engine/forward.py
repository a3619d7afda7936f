"""The one batched inference forward (length-sorted, dynamically padded batches, no autograd) and what the tasks
build on it: classifier logits here, token logits in :mod:`bertkit.tagging.objective`, span logits in
:mod:`bertkit.qa.objective`. Results come back in input order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bertkit.data.encoding import Encoded, collate
from bertkit.devices import autocast, predict_batch_size
from bertkit.engine.batches import each_batch, uses_type_ids
from bertkit.models.packed import packed_classifier

Step = Callable[[np.ndarray, dict[str, torch.Tensor], Any], None]
"""A task's per-batch output function, ``step(index, inputs, outputs)``: ``index`` the batch's example numbers,
``inputs`` the padded batch on the device, ``outputs`` what the forward returned for it."""


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
        each_batch(encoded, one_batch, uses_type_ids(model, encoded), batch_size, progress, collate)
    finally:
        if was_training:
            model.train()


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
