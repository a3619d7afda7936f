"""A classifier's logits for encoded examples (one row per window), from its torch model or an ONNX graph."""

from __future__ import annotations

from typing import Any

import numpy as np

from bertkit.data.encoding import Encoded
from bertkit.devices import inference_dtype, predict_batch_size
from bertkit.engine.batches import batched_logits, uses_type_ids


def window_logits(
    model: Any, encoded: Encoded, *, onnx_forward: Any, task: str, precision: str, batch_size: int | None,
    progress: bool,
) -> np.ndarray:  # fmt: skip
    """Logits [windows, labels] of ``encoded`` through ``onnx_forward`` (ONNX Runtime, on the CPU) when given,
    else ``model`` on its device; ``batch_size``: most texts per forward (None: by device)."""
    if onnx_forward is not None:
        with_types = uses_type_ids(model, encoded)
        batch = predict_batch_size(batch_size, "cpu")  # ONNX Runtime runs on CPU
        return batched_logits(onnx_forward, encoded, model.config.num_labels, with_types, batch, progress)
    from bertkit.engine.forward import predict_logits  # torch: imported only when torch predicts

    device = next(model.parameters()).device
    # Regression scores in fp32: bf16's 8-bit mantissa would round them into steps (see engine/loop.py).
    dtype = None if task == "regression" else inference_dtype(precision, device)
    return predict_logits(model, encoded, batch_size=batch_size, device=device, dtype=dtype, progress=progress)
