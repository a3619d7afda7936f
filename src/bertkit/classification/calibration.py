"""Calibration of a classifier's probabilities, in numpy and scipy: temperature scaling fitted on validation
logits, and the two calibration measures the reports give (expected calibration error, Brier score).

Single-label classification gets one temperature ``T`` (probabilities ``softmax(logits / T)``: the argmax, hence
every predicted label, is unchanged). Multi-label gets one temperature per label (``sigmoid(logit_j / T_j)``);
the decision thresholds tuned on the uncalibrated probabilities are carried over by the same monotone map
(:func:`calibrated_thresholds`), so calibration never changes a predicted label set.

A fitted temperature is kept only when it lowers the calibration error of rows it was not fitted on
(:func:`checked_calibration`: 5-fold cross-fitting on the validation rows); otherwise ``T = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit, log_softmax

from bertkit.classification.conformal import lac_scores, scores_to_store
from bertkit.engine.batches import logits_to_scores

N_BINS = 15
"""Equal-width confidence bins of the expected calibration error and the reliability diagram."""
LOG_T_BOUNDS = (-3.0, 3.0)
"""Log temperatures searched: T from e^-3 = 0.05 to e^3 = 20. A model that learned nothing is pushed towards 20
(flattened, rightly); a validation set the model separates perfectly has no finite optimum (the likelihood only
grows as T shrinks), and is left at T = 1 (:func:`_best_log_temperature`)."""

Temperature = float | np.ndarray
"""One temperature (single-label) or one per label (multi-label)."""


def _best_log_temperature(nll) -> float:
    """The log temperature in :data:`LOG_T_BOUNDS` minimising ``nll(log_t)`` (a one-dimensional, smooth
    problem: Brent's bounded method). An optimum at the lower bound means the validation rows are separated
    perfectly, so they say nothing about how sharp the model should be: then 0 (T = 1, the model's own
    probabilities), never a temperature that turns every probability into 0 or 1."""
    log_t = float(minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-5}).x)
    return 0.0 if log_t <= LOG_T_BOUNDS[0] + 1e-3 else log_t


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature ``T`` minimising the mean negative log-likelihood of ``softmax(logits / T)`` for class
    ids ``targets`` (Guo et al., 2017). ``T > 1`` softens an over-confident model."""
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(targets))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits * np.exp(-log_t), axis=1)[rows, targets].mean())

    return float(np.exp(_best_log_temperature(nll)))


def fit_label_temperatures(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """One temperature per label minimising the binary cross-entropy of ``sigmoid(logit_j / T_j)`` against the
    multi-hot ``targets``. A label that is always or never present in these rows keeps ``T = 1`` (its fit would
    only push every probability towards 0 or 1)."""
    logits = np.asarray(logits, dtype=np.float64)
    truth = np.asarray(targets, dtype=np.float64)
    temperatures = np.ones(logits.shape[1])
    for j in range(logits.shape[1]):
        if truth[:, j].min() == truth[:, j].max():
            continue
        z, y = logits[:, j], truth[:, j]

        def bce(log_t: float, z=z, y=y) -> float:
            scaled = z * np.exp(-log_t)
            return float(-(y * log_expit(scaled) + (1 - y) * log_expit(-scaled)).mean())

        temperatures[j] = np.exp(_best_log_temperature(bce))
    return temperatures


def fit_calibration(logits: np.ndarray, targets: np.ndarray, task: str) -> Temperature | None:
    """The task's temperature(s) fitted on validation ``logits`` with encoded ``targets``; None for
    regression (nothing to calibrate) or with no rows."""
    if task == "regression" or len(logits) == 0:
        return None
    if task == "multi-label":
        return fit_label_temperatures(logits, targets)
    return fit_temperature(logits, targets)


CHECK_FOLDS = 5
"""Folds of the cross-fitting that decides whether a fitted temperature is kept."""


@dataclass
class CalibrationCheck:
    """Whether a fitted temperature is kept: the validation rows' ECE without it, and with temperatures each
    fitted on the other folds (an honest estimate: no row is scored by a temperature it helped fit)."""

    fitted: Temperature
    ece_before: float
    ece_cross_fitted: float

    @property
    def kept(self) -> bool:
        return self.ece_cross_fitted <= self.ece_before

    def to_dict(self) -> dict[str, object]:
        fitted = float(self.fitted) if np.ndim(self.fitted) == 0 else [float(t) for t in np.ravel(self.fitted)]
        return {"fitted_temperature": fitted, "ece_before": round(self.ece_before, 6),
                "ece_cross_fitted": round(self.ece_cross_fitted, 6), "kept": self.kept}  # fmt: skip


def checked_calibration(
    logits: np.ndarray, targets: np.ndarray, task: str, seed: int
) -> tuple[Temperature | None, CalibrationCheck | None]:
    """The temperature(s) of :func:`fit_calibration` when they lower the cross-fitted ECE of these rows, else
    ``T = 1`` (a temperature that makes probabilities worse on rows it has not seen is not applied: a validation
    set unlike the data the model will see, or too few rows to tell); and the check. (None, None) for
    regression or no rows; fewer rows than :data:`CHECK_FOLDS` x 2 cannot be cross-fitted: ``T = 1``."""
    fitted = fit_calibration(logits, targets, task)
    if fitted is None:
        return None, None
    identity: Temperature = np.ones_like(fitted) if np.ndim(fitted) else 1.0
    logits = np.asarray(logits, dtype=np.float64)
    before = expected_calibration_error(logits_to_scores(logits, task), targets, task)
    if len(logits) < 2 * CHECK_FOLDS:
        return identity, CalibrationCheck(fitted, before, float("inf"))
    proba = np.empty_like(logits)
    for part in np.array_split(np.random.default_rng(seed).permutation(len(logits)), CHECK_FOLDS):
        rest = np.setdiff1d(np.arange(len(logits)), part)
        temperature = fit_calibration(logits[rest], np.asarray(targets)[rest], task)
        proba[part] = logits_to_scores(scale_logits(logits[part], temperature), task)
    check = CalibrationCheck(fitted, before, expected_calibration_error(proba, targets, task))
    return (fitted if check.kept else identity), check


def scale_logits(logits: np.ndarray, temperature: Temperature | None) -> np.ndarray:
    """``logits / T`` (per column for per-label temperatures); the logits unchanged for None."""
    if temperature is None:
        return logits
    return np.asarray(logits, dtype=np.float64) / np.asarray(temperature, dtype=np.float64)


def calibrated_thresholds(thresholds: np.ndarray, temperature: Temperature | None) -> np.ndarray:
    """Multi-label thresholds tuned on uncalibrated probabilities, moved to the calibrated scale:
    ``sigmoid(logit(t_j) / T_j)``. ``p >= t`` before calibration exactly when ``p' >= t'`` after (up to
    rounding), so the labels chosen do not depend on calibration."""
    if temperature is None:
        return thresholds
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-12, 1 - 1e-12)
    return expit(np.log(t / (1 - t)) / np.asarray(temperature, dtype=np.float64))


def confidence_and_outcome(proba: np.ndarray, targets: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """What the calibration measures compare. Single-label: the top-class probability of each row and whether
    the top class is the true one. Multi-label: every (row, label) probability and whether the label is
    present (each label's sigmoid read as a binary forecast)."""
    proba = np.asarray(proba, dtype=np.float64)
    if task == "multi-label":
        return proba.ravel(), np.asarray(targets, dtype=np.float64).ravel()
    return proba.max(axis=1), (proba.argmax(axis=1) == np.asarray(targets)).astype(np.float64)


def reliability_bins(
    confidence: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean confidence, mean outcome) of each of ``n_bins`` equal-width bins ``((i-1)/B, i/B]`` (a
    confidence of exactly 0 joins the first); empty bins have mean 0."""
    index = np.clip(np.ceil(np.asarray(confidence) * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    safe = np.maximum(counts, 1)
    mean_confidence = np.bincount(index, weights=confidence, minlength=n_bins) / safe
    mean_outcome = np.bincount(index, weights=outcome, minlength=n_bins) / safe
    return counts, mean_confidence, mean_outcome


def expected_calibration_error(proba: np.ndarray, targets: np.ndarray, task: str, n_bins: int = N_BINS) -> float:
    """ECE = sum over bins b of |b|/n * |accuracy(b) - mean confidence(b)|, over ``n_bins`` equal-width bins
    of the top-class probability (single-label). Multi-label: over every (row, label) sigmoid probability, with
    the share of those present in place of accuracy (see :func:`confidence_and_outcome`)."""
    confidence, outcome = confidence_and_outcome(proba, targets, task)
    if confidence.size == 0:
        return 0.0
    counts, mean_confidence, mean_outcome = reliability_bins(confidence, outcome, n_bins)
    return float(np.sum(counts / confidence.size * np.abs(mean_outcome - mean_confidence)))


def brier_score(proba: np.ndarray, targets: np.ndarray, task: str) -> float:
    """Brier score: the mean over rows of the sum over classes (labels) of (p - y)^2, y the one-hot true class
    (multi-hot labels for multi-label). 0 is perfect; a single-label row scores at most 2."""
    proba = np.asarray(proba, dtype=np.float64)
    if task == "multi-label":
        truth = np.asarray(targets, dtype=np.float64)
    else:
        truth = np.zeros_like(proba)
        truth[np.arange(len(proba)), np.asarray(targets)] = 1.0
    return float(((proba - truth) ** 2).sum(axis=1).mean()) if len(proba) else 0.0


@dataclass
class Calibration:
    """What :func:`calibrate` fits on validation rows."""

    temperature: Temperature | None
    conformal_scores: list[float] | None
    check: CalibrationCheck | None


def calibrate(logits: np.ndarray, targets: np.ndarray, task: str, seed: int) -> Calibration:
    """The temperature(s) fitted on the kept epoch's validation logits when cross-fitting shows they lower the
    calibration error, else 1 (:func:`~bertkit.classification.calibration.checked_calibration`; multi-label
    thresholds stay on the uncalibrated scale they were tuned on) and, for single-label classification, the
    sorted conformity scores ``1 - p(true label)`` of those rows under it. The one temperature is fitted on the
    same rows the conformal threshold uses (see :mod:`bertkit.classification.conformal`)."""
    temperature, check = checked_calibration(logits, targets, task, seed)
    if task != "classification" or temperature is None:
        return Calibration(temperature, None, check)
    proba = logits_to_scores(scale_logits(logits, temperature), task)
    return Calibration(temperature, scores_to_store(lac_scores(proba, targets), seed), check)


def set_calibration(classifier: Any, calibration: Calibration) -> None:
    """Put a fitted calibration on a classifier: ``temperature_``, ``conformal_scores_``, ``calibration_check_``."""
    classifier.temperature_, classifier.conformal_scores_ = calibration.temperature, calibration.conformal_scores
    classifier.calibration_check_ = calibration.check
