"""The training objective of sequence classification: one target per example, its loss (cross-entropy,
binary cross-entropy or MSE), R-Drop's consistency penalty, and balanced class weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.data.encoding import Encoded
from bertkit.engine.forward import predict_logits
from bertkit.exceptions import ConfigError


def make_loss(
    task: str, class_weights: torch.Tensor | None, label_smoothing: float = 0.0
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The supervised loss of ``task`` on logits [batch, labels]: MSE (regression), BCE with logits
    (multi-label, ``class_weights`` as positive weights) or cross-entropy (``class_weights`` per class)."""
    if task == "regression":
        mse = nn.MSELoss()
        return lambda logits, target: mse(logits.squeeze(-1), target)
    if task == "multi-label":
        return nn.BCEWithLogitsLoss(pos_weight=class_weights)
    return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)


def consistency_loss(first: torch.Tensor, second: torch.Tensor, task: str) -> torch.Tensor:
    """R-Drop's penalty between two predictions of the same examples (logits [batch, labels] each): the
    symmetric KL divergence of the class distributions (summed over classes, averaged over the batch) for
    classification; of each label's Bernoulli distribution (averaged over labels and batch, as the BCE loss
    is) for multi-label; the squared difference of the two outputs for regression."""
    if task == "regression":
        return nn.functional.mse_loss(first, second)
    if task == "multi-label":
        # KL(p||q) + KL(q||p) of Bernoulli(p), Bernoulli(q) is (p - q)(logit p - logit q)
        return 0.5 * ((torch.sigmoid(first) - torch.sigmoid(second)) * (first - second)).mean()
    log_first, log_second = first.log_softmax(-1), second.log_softmax(-1)
    kl = nn.functional.kl_div
    return 0.5 * (
        kl(log_first, log_second, log_target=True, reduction="batchmean")
        + kl(log_second, log_first, log_target=True, reduction="batchmean")
    )


class SequenceObjective:
    """One target per example: class ids, label-indicator rows (multi-label) or floats (regression).

    With ``rdrop`` > 0 each batch goes through the model twice in one forward pass (two dropout masks), and
    the loss is the mean of the two supervised losses plus ``rdrop`` x :func:`consistency_loss` of the two
    predictions (R-Drop: Liang et al., 2021, "R-Drop: Regularized Dropout for Neural Networks").
    """

    rows_aligned = True
    """``predict`` returns one row per validation example, so validation can be sharded across ranks."""
    supports_cuda_graphs = True
    """Fixed-shape targets and a loss without host syncs: ``--cuda-graphs`` can capture the whole step."""

    def __init__(
        self,
        task: str,
        targets: np.ndarray,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        rdrop: float = 0.0,
    ) -> None:
        self.task = task
        self.targets = torch.from_numpy(targets)
        self.loss_fn = make_loss(task, class_weights, label_smoothing)
        self.rdrop = rdrop

    @property
    def forward_copies(self) -> int:
        """2 with R-Drop (two dropout masks per example in one forward pass), else 1."""
        return 2 if self.rdrop else 1

    def batch_targets(self, index: np.ndarray, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The targets of the examples at ``index``."""
        return self.targets[index]

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        """The supervised loss (averaged over the two copies under R-Drop, plus the consistency penalty)."""
        logits = outputs.logits.float()
        if not self.rdrop:
            return self.loss_fn(logits, targets)
        first, second = logits.chunk(2)  # [batch, labels] each: the same examples, two dropout masks
        supervised = 0.5 * (self.loss_fn(first, targets) + self.loss_fn(second, targets))
        return supervised + self.rdrop * consistency_loss(first, second, self.task)

    def predict(self, model: nn.Module, validation: Encoded, device: torch.device, dtype: torch.dtype | None) -> Any:
        """Validation logits [n, labels] (one row per window when texts were windowed)."""
        return predict_logits(model, validation, device=device, dtype=dtype)


def balanced_class_weights(targets: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """``--class-weights balanced``: n / (classes x count) per class (classification), or negatives /
    positives per label as BCE's positive weight (multi-label)."""
    if task == "classification":
        counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
        return (len(targets) / (n_classes * np.maximum(counts, 1))).astype(np.float32)
    if task == "multi-label":
        positives = targets.sum(axis=0)
        return ((len(targets) - positives) / np.maximum(positives, 1)).astype(np.float32)
    raise ConfigError("--class-weights balanced applies to classification and multi-label, not regression")
