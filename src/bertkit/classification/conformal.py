"""Split conformal prediction sets for single-label classification (the LAC score), in numpy.

At training time the conformity score of each validation row is ``s_i = 1 - p_i(true label)`` (calibrated
probabilities); the sorted scores are saved with the model. For a coverage ``1 - alpha`` the threshold ``q`` is
the ``ceil((n + 1)(1 - alpha))``-th smallest of the ``n`` scores, and a text's set holds every label ``y`` with
``1 - p(y) <= q``. When validation and new rows are exchangeable (drawn alike), the set holds the true label
with probability at least ``1 - alpha`` (marginally, over rows and the validation draw), and below
``1 - alpha + 1/(n + 1)`` when the scores have no ties (Vovk et al., 2005; Angelopoulos & Bates, 2021).
A set may be empty (no label is plausible enough at that coverage) and holds every label when
``ceil((n + 1)(1 - alpha)) > n`` (too few validation rows for that coverage).

The temperature is fitted on the same validation rows (one scalar, the common practice): strictly the rows
are then not exchangeable with new ones, and the effect of that one fitted number is negligible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bertkit.exceptions import ConfigError

MAX_STORED = 10_000
"""Most scores saved with a model: beyond it a seeded random sample (the guarantee then holds with ``n`` the
sample's size, as the sample is as exchangeable with new rows as the whole)."""


def lac_scores(proba: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``1 - p(true class)`` of each row (float64), ``targets`` the class ids."""
    proba = np.asarray(proba, dtype=np.float64)
    return 1.0 - proba[np.arange(len(proba)), np.asarray(targets)]


def scores_to_store(scores: np.ndarray, seed: int, cap: int = MAX_STORED) -> list[float]:
    """The scores to save, sorted: all of them up to ``cap``, else a seeded random sample of ``cap``."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) > cap:
        scores = np.random.default_rng(seed).choice(scores, size=cap, replace=False)
    return [float(s) for s in np.sort(scores)]


def check_coverage(coverage: float, flag: str = "coverage (--coverage)") -> float:
    """``coverage`` as a float; ConfigError unless strictly between 0 and 1 (named as the API and CLI call it)."""
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 < coverage < 1:
        raise ConfigError(f"{flag} must be a probability strictly between 0 and 1, such as 0.9 (got {coverage!r})")
    return float(coverage)


def check_task(task: str, what: str) -> None:
    """ConfigError unless single-label classification (``what`` names the flag or method)."""
    if task != "classification":
        raise ConfigError(f"{what} applies to single-label classification only; this model's task is {task}")


def conformal_threshold(sorted_scores: np.ndarray | list[float], coverage: float) -> float:
    """The split-conformal threshold ``q`` for ``coverage`` = 1 - alpha: the ``k``-th smallest score,
    ``k = ceil((n + 1) * coverage)``; ``inf`` (every label in every set) when ``k > n``."""
    scores = np.asarray(sorted_scores, dtype=np.float64)
    n = len(scores)
    # The rounding guard keeps e.g. (19 + 1) * 0.95 = 19.000000000000004 at 19, not 20.
    k = math.ceil(round((n + 1) * check_coverage(coverage), 9))
    return math.inf if k > n else float(scores[k - 1])


def set_members(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean [n, classes]: label ``y`` is in a row's set when ``1 - p(y) <= threshold`` (computed as the
    scores were)."""
    return (1.0 - np.asarray(proba, dtype=np.float64)) <= threshold


def prediction_sets(proba: np.ndarray, threshold: float, classes: list[Any]) -> list[list[Any]]:
    """Each row's set as a list of ``classes``, most probable first."""
    members = set_members(proba, threshold)
    order = np.argsort(-np.asarray(proba), axis=1, kind="stable")
    return [
        [classes[j] for j in row_order if row_members[j]] for row_order, row_members in zip(order, members, strict=True)
    ]


def set_metrics(proba: np.ndarray, targets: np.ndarray, threshold: float) -> dict[str, float]:
    """``set_coverage`` (share of rows whose true class is in the set; a class id beyond the model's classes
    never is) and ``mean_set_size``."""
    members = set_members(proba, threshold)
    targets = np.asarray(targets)
    known = targets < members.shape[1]
    hit = np.zeros(len(targets), dtype=bool)
    hit[known] = members[np.flatnonzero(known), targets[known]]
    return {"set_coverage": float(hit.mean()), "mean_set_size": float(members.sum(axis=1).mean())}


def check_abstain_below(value: float) -> float:
    """``--abstain-below`` as a float; ConfigError unless in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(
            f"abstain_below (--abstain-below) must be a probability in (0, 1], such as 0.7 (got {value!r})"
        )
    return float(value)


def abstention_metrics(proba: np.ndarray, targets: np.ndarray, below: float) -> dict[str, float | int | None]:
    """Rows whose top probability is below ``below`` are withheld: ``abstained`` (count), ``coverage_rate``
    (share answered) and ``answered_accuracy`` (accuracy on the answered rows; None when none is)."""
    proba = np.asarray(proba)
    answered = proba.max(axis=1) >= below
    correct = proba.argmax(axis=1) == np.asarray(targets)
    return {
        "abstained": int((~answered).sum()),
        "coverage_rate": float(answered.mean()) if len(proba) else 0.0,
        "answered_accuracy": float(correct[answered].mean()) if answered.any() else None,
    }
