"""Choosing by a validation metric: which metric a run selects on, which direction is better, and whether an
earlier epoch beats the last one by more than the noise of a finite validation set.

Shared by the training loop (best epoch, keep-epoch bootstrap), multi-seed runs (best seed) and the
hyperparameter search (study direction). Plain numpy: no torch, no model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bertkit.exceptions import ConfigError

MAIN_METRIC = {"classification": "mcc", "multi-label": "micro_f1", "regression": "pearson"}
"""The selection metric ``auto`` stands for, per classification task."""
METRIC_NAMES = {
    "classification": ("accuracy", "f1", "macro_f1", "mcc", "loss"),
    "multi-label": ("accuracy", "f1", "micro_f1", "macro_f1", "loss"),
    "regression": ("pearson", "spearman", "mse", "mae", "loss"),
}
"""The validation metrics a classifier records per epoch (``val_<name>``), per task."""

KEEP_BEST_CONFIDENCE = 0.95
"""``keep_epoch="auto"`` keeps an earlier epoch over the last one only when it scores better on validation in at
least this share of paired bootstrap resamples of the validation rows."""


def metric_lower_is_better(name: str) -> bool:
    """Whether a smaller value of the metric is better (losses and errors: loss, mse, mae)."""
    return name.endswith(("loss", "error")) or name in ("mse", "mae")


def resolve_selection_metric(name: str, task: str) -> str:
    """The metric ``--selection-metric name`` selects on for ``task``: ``auto`` is the task's main metric;
    any other name must be one the task records (a ConfigError lists them)."""
    if name == "auto":
        return MAIN_METRIC[task]
    if name not in METRIC_NAMES[task]:
        raise ConfigError(
            f"--selection-metric for {task} must be one of auto, {', '.join(METRIC_NAMES[task])} (got {name!r})"
        )
    return name


def paired_bootstrap_win_share(
    score: Callable[[np.ndarray, np.ndarray], float],
    targets: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    *,
    lower_is_better: bool = False,
    resamples: int = 500,
    seed: int = 0,
) -> float:
    """Share of bootstrap resamples of the rows in which the outputs ``first`` score better than ``second``.

    Both are scored on the same resampled rows (paired), ``score(targets[rows], outputs[rows])``; ties count
    half, so two identical outputs give 0.5. This separates a difference between two checkpoints from the
    sampling noise of a finite validation set (Efron & Tibshirani, An Introduction to the Bootstrap, ch. 16).
    It is a rough guard, not an exact test: when the two differ on only a handful of rows, all in the first's
    favour (3 of 1,000 rows: 0.976), it already passes 0.95, where an exact sign test would not (p = 0.125).
    """
    rng = np.random.default_rng(seed)
    n = len(targets)
    wins = 0.0
    for _ in range(resamples):
        rows = rng.integers(0, n, size=n)
        difference = score(targets[rows], first[rows]) - score(targets[rows], second[rows])
        if lower_is_better:
            difference = -difference
        wins += 1.0 if difference > 0 else 0.5 if difference == 0 else 0.0
    return wins / resamples
