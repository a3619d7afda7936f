"""From logits to what a classifier reports: labels, metrics of a task, and the validation scorer the
training loop calls every epoch (metrics of the epoch, the bootstrap that decides the epoch kept)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bertkit.classification.metrics import (
    classification_metrics,
    loss_from_logits,
    multilabel_metrics,
    regression_metrics,
    tune_thresholds,
)
from bertkit.data.encoding import Encoded
from bertkit.engine.batches import aggregate_windows, logits_to_scores
from bertkit.selection import metric_lower_is_better, paired_bootstrap_win_share


def labels_from_scores(
    scores: np.ndarray, task: str, classes: list[Any], thresholds: np.ndarray | None
) -> np.ndarray | list[list[Any]]:
    """Labels as given in training (object array), label lists (multi-label, at ``thresholds``) or the
    values themselves (regression)."""
    if task == "regression":
        return scores
    names = np.empty(len(classes), dtype=object)
    names[:] = classes
    if task == "multi-label":
        chosen = scores >= thresholds[None, :]
        return [list(names[row]) for row in chosen]
    return names[scores.argmax(axis=1)]


def task_metrics(targets: np.ndarray, logits: np.ndarray, task: str, thresholds: np.ndarray | None) -> dict[str, float]:
    """The task's metrics of logits against encoded targets (no loss)."""
    scores = logits_to_scores(logits, task)
    if task == "regression":
        return regression_metrics(targets, scores)
    if task == "multi-label":
        return multilabel_metrics(targets, scores, thresholds)
    return classification_metrics(targets, scores)


def evaluation_metrics(
    targets: np.ndarray, logits: np.ndarray, task: str, thresholds: np.ndarray | None
) -> dict[str, float]:
    """The task's metrics plus ``loss`` (the training objective on these rows)."""
    return {**task_metrics(targets, logits, task, thresholds), "loss": loss_from_logits(targets, logits, task)}


def one_metric(targets: np.ndarray, logits: np.ndarray, name: str, task: str, thresholds: np.ndarray | None) -> float:
    """One metric, without computing ``loss`` unless it is the one asked (the bootstrap calls it 1,000 times)."""
    if name == "loss":
        return loss_from_logits(targets, logits, task)
    return task_metrics(targets, logits, task, thresholds)[name]


@dataclass(frozen=True)
class ClassificationScorer:
    """Scores a classifier's validation logits for the training loop (``engine.objective.ValidationScorer``).

    Logits come per window when texts were windowed; they are aggregated to one row per example first.
    """

    task: str
    targets: np.ndarray
    """Encoded validation labels, one row per example."""
    validation: Encoded
    window_aggregation: str
    main_metric: str
    seed: int

    def by_example(self, logits: np.ndarray) -> np.ndarray:
        """One row of logits per validation example."""
        return aggregate_windows(logits, self.validation, self.window_aggregation)

    def thresholds_for(self, logits: np.ndarray) -> np.ndarray | None:
        """Multi-label: the per-label thresholds tuned on these validation logits (one row per example), as the
        final model's are; None for the other tasks. Every epoch is scored at its own tuned thresholds, so the
        kept epoch's line equals the final report and epochs are chosen by the score the model will have."""
        if self.task != "multi-label":
            return None
        return tune_thresholds(self.targets, logits_to_scores(logits, self.task))

    def score(self, outputs: np.ndarray) -> dict[str, float]:
        """The task's metrics and loss of one epoch's validation logits."""
        logits = self.by_example(outputs)
        return evaluation_metrics(self.targets, logits, self.task, self.thresholds_for(logits))

    def win_share(self, first: np.ndarray, second: np.ndarray) -> float:
        """Share of paired bootstrap resamples of the validation rows in which ``first`` scores better on the
        selection metric than ``second``."""
        return paired_bootstrap_win_share(
            self._main_metric, self.targets, self._at_own_thresholds(first), self._at_own_thresholds(second),
            lower_is_better=metric_lower_is_better(self.main_metric), seed=self.seed,
        )  # fmt: skip

    def _at_own_thresholds(self, outputs: np.ndarray) -> np.ndarray:
        """Logits per example; multi-label ones shifted by logit(threshold) per label, so that 0.5 on the shifted
        logits decides as the epoch's own tuned thresholds do on the raw ones (the bootstrap scores both epochs'
        outputs with one function). The loss is read from unshifted logits."""
        logits = self.by_example(outputs)
        if self.task != "multi-label" or self.main_metric == "loss":
            return logits
        thresholds = self.thresholds_for(logits)
        return logits - np.log(thresholds / (1 - thresholds))[None, :]

    def _main_metric(self, targets: np.ndarray, logits: np.ndarray) -> float:
        halves = np.full(targets.shape[1], 0.5) if self.task == "multi-label" else None
        return one_metric(targets, logits, self.main_metric, self.task, halves)
