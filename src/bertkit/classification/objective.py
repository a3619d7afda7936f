"""The training objectives of sequence classification: one target per example, its loss (cross-entropy,
binary cross-entropy or MSE), R-Drop's consistency penalty and balanced class weights; and distillation's, the
labels' loss mixed with a soft loss against a teacher's logits (:class:`DistillationObjective`)."""

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


def soft_loss(logits: torch.Tensor, teacher: torch.Tensor, task: str, temperature: float) -> torch.Tensor:
    """Per-example distillation loss of student ``logits`` against ``teacher`` logits (both [batch, labels]):
    KL(softmax(teacher / T) || softmax(student / T)) summed over classes (single-label); binary cross-entropy of
    sigmoid(student / T) against sigmoid(teacher / T), averaged over labels (multi-label); the squared difference
    of the two outputs (regression, no temperature). Both temperature losses are scaled by T^2, so that their
    gradients keep the size of the hard loss's as T changes (Hinton et al., 2015, "Distilling the Knowledge in a
    Neural Network"). Returns [batch]."""
    if task == "regression":
        return ((logits - teacher) ** 2).mean(-1)
    scale = temperature * temperature
    if task == "multi-label":
        targets = torch.sigmoid(teacher / temperature)
        bce = nn.functional.binary_cross_entropy_with_logits(logits / temperature, targets, reduction="none")
        return bce.mean(-1) * scale
    student, taught = (logits / temperature).log_softmax(-1), (teacher / temperature).log_softmax(-1)
    kl = nn.functional.kl_div(student, taught, log_target=True, reduction="none")
    return kl.sum(-1) * scale


class HiddenCapture:
    """Keeps the first token's row ([CLS]) of a module's output at each forward, [batch, hidden], with its
    autograd history: hooked on an encoder's last layer, the state a [CLS]-reading head takes. :meth:`remove`
    unhooks it."""

    def __init__(self, module: nn.Module) -> None:
        self.state: torch.Tensor | None = None
        self._handle = module.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, args: Any, output: Any) -> None:
        hidden = output[0] if isinstance(output, tuple) else output  # [batch, length or 1, hidden]
        self.state = hidden[:, 0]

    def remove(self) -> None:
        """Unhook, and drop the last state kept."""
        self._handle.remove()
        self.state = None


class DistillationObjective:
    """Knowledge distillation: ``alpha`` x the task's own loss on the labels (:func:`make_loss`) plus
    (1 - ``alpha``) x :func:`soft_loss` against the teacher's logits, averaged over the batch.

    Rows without a label (unlabeled data) take the soft loss alone, at full weight: their hard loss is left out
    and their ``alpha`` is 0. The hard loss is the task loss over the batch's labelled rows, weighted by their
    share of the batch, so with ``alpha=1`` and every row labelled the loss is :class:`SequenceObjective`'s,
    bit for bit (plain fine-tuning). The targets of a batch pack, per row: a labelled flag, the label (class id,
    label-indicator row or value) and the teacher's logits, as one float tensor [batch, 1 + label width +
    labels] (the loop moves one tensor per batch).

    With ``hidden`` (a :class:`HiddenCapture` on the student's last encoder layer) and ``teacher_hidden`` (the
    teacher's last-layer [CLS] state per row, [rows, hidden]), every row adds ``hidden_weight`` x the mean
    squared difference of the two [CLS] states: a student that keeps the teacher's last layer and head then
    learns the whole representation the head reads, not only its projection onto the labels' logits (a
    representation loss in the manner of FitNets and TinyBERT, on the one state the head reads). The teacher's
    states ride at the end of the packed targets.
    """

    rows_aligned = True
    """``predict`` returns one row per validation example, so validation can be sharded across ranks."""
    supports_cuda_graphs = False
    """The labelled rows of a batch vary in number: the loss reads that count on the host."""
    forward_copies = 1

    def __init__(
        self,
        task: str,
        targets: np.ndarray,
        labeled: np.ndarray,
        teacher_logits: np.ndarray,
        *,
        alpha: float,
        temperature: float,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        hidden: HiddenCapture | None = None,
        teacher_hidden: np.ndarray | None = None,
        hidden_weight: float = 0.0,
    ) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"--alpha must be between 0 (soft targets only) and 1 (labels only) (got {alpha})")
        if not temperature > 0:
            raise ConfigError(f"--temperature must be positive (got {temperature}); 1 keeps the teacher's logits")
        if not hidden_weight >= 0:
            raise ConfigError(f"--hidden-weight must be 0 (off) or more (got {hidden_weight})")
        if (hidden is None) != (teacher_hidden is None):
            raise ValueError("the student's hidden capture and the teacher's hidden states go together")
        hard = targets.reshape(len(targets), -1).astype(np.float32)  # class ids stay exact as floats below 2^24
        parts = [labeled.reshape(-1, 1).astype(np.float32), hard, teacher_logits]
        if teacher_hidden is not None:
            parts.append(teacher_hidden)
        packed = np.concatenate(parts, axis=1)
        self.targets = torch.from_numpy(np.ascontiguousarray(packed, dtype=np.float32))
        self.task, self.alpha, self.temperature = task, float(alpha), float(temperature)
        self.width = hard.shape[1]
        self.soft_end = 1 + self.width + teacher_logits.shape[1]  # the teacher's logits end, its [CLS] states start
        self.hidden, self.hidden_weight = hidden, float(hidden_weight)
        self.loss_fn = make_loss(task, class_weights, label_smoothing)

    def batch_targets(self, index: np.ndarray, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The packed targets (labelled flag, label, teacher logits) of the examples at ``index``."""
        return self.targets[index]

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        """``alpha`` x hard loss (labelled rows) + the soft loss, weighted 1 - ``alpha`` (labelled rows) or 1."""
        logits = outputs.logits.float()
        labeled = targets[:, 0] > 0
        hard_targets = targets[:, 1 : 1 + self.width]
        if self.task == "classification":
            hard_targets = hard_targets[:, 0].long()
        elif self.task == "regression":
            hard_targets = hard_targets[:, 0]
        n_rows, n_labeled = len(logits), int(labeled.sum())
        hard = logits.new_zeros(())
        if n_labeled == n_rows:
            hard = self.loss_fn(logits, hard_targets)
        elif n_labeled:
            hard = self.loss_fn(logits[labeled], hard_targets[labeled]) * (n_labeled / n_rows)
        soft = soft_loss(logits, targets[:, 1 + self.width : self.soft_end], self.task, self.temperature)
        weights = torch.where(labeled, 1.0 - self.alpha, 1.0)
        loss = self.alpha * hard + (weights * soft).mean()
        if self.hidden is not None and self.hidden_weight > 0:
            state = self.hidden.state.float()  # [batch, hidden]: the student's last-layer [CLS] state, this forward
            loss = loss + self.hidden_weight * ((state - targets[:, self.soft_end :]) ** 2).mean()
        return loss

    def predict(self, model: nn.Module, validation: Encoded, device: torch.device, dtype: torch.dtype | None) -> Any:
        """Validation logits [n, labels] (one row per window when texts were windowed)."""
        return predict_logits(model, validation, device=device, dtype=dtype)
