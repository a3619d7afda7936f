"""What a task hands to the shared training loop: an :class:`Objective` (targets, loss, validation outputs)
and, with validation data, a :class:`ValidationScorer` (metrics of those outputs, the metric that picks the best
epoch, and the bootstrap that decides whether an earlier epoch is kept).

Sequence classification, token classification and question answering each define their own; the loop
(batching, optimizer, precision, evaluation, early stopping, the epoch kept) stays the same for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from bertkit.data.encoding import Encoded


class Objective(Protocol):
    """The targets of a batch, its loss, and the model's outputs on validation data.

    Two optional attributes, read with a default of ``False`` so that a minimal objective needs neither:
    ``rows_aligned`` (``predict`` returns one row per validation example, so validation can be sharded across
    DDP ranks and gathered) and ``supports_cuda_graphs`` (its loss can be captured in a CUDA graph:
    fixed-shape targets, no host syncs).
    """

    forward_copies: int
    """Copies of each batch stacked into one forward pass (2 for R-Drop: each copy draws its own dropout
    masks; ``loss`` gets the outputs of all copies, copy after copy, and the targets of one), else 1."""

    def batch_targets(self, index: np.ndarray, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Targets of the examples at ``index``, shaped to match ``inputs`` (already padded), on the CPU."""
        ...

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss from the model's outputs (autocast dtype) and the batch targets."""
        ...

    def predict(self, model: nn.Module, validation: Encoded, device: torch.device, dtype: torch.dtype | None) -> Any:
        """Validation outputs handed to the scorer (for classification: logits [n, labels])."""
        ...


class ValidationScorer(Protocol):
    """Turns the objective's validation outputs into metrics and compares two epochs' outputs."""

    main_metric: str
    """The metric (a key of ``score``'s result) that decides the best epoch; higher is better except for
    losses and errors (:func:`bertkit.selection.metric_lower_is_better`)."""

    def score(self, outputs: Any) -> dict[str, float]:
        """Metrics of one epoch's validation outputs (recorded as ``val_<name>``)."""
        ...

    def win_share(self, first: Any, second: Any) -> float | None:
        """Share of paired bootstrap resamples of the validation rows in which ``first`` scores better than
        ``second``; None when the task has no such test (``keep_epoch="auto"`` then keeps the best epoch)."""
        ...


@dataclass(frozen=True)
class MetricScorer:
    """A :class:`ValidationScorer` from a metrics function, without a bootstrap test: ``keep_epoch="auto"``
    keeps the best epoch. For tasks whose validation metrics are one function of the outputs."""

    metrics: Callable[[Any], dict[str, float]]
    main_metric: str

    def score(self, outputs: Any) -> dict[str, float]:
        return self.metrics(outputs)

    def win_share(self, first: Any, second: Any) -> float | None:
        return None


@dataclass(frozen=True)
class Validation:
    """Validation data for the loop and the scorer of its outputs."""

    data: Encoded
    scorer: ValidationScorer
