"""Temperature scaling and the calibration measures (classification/calibration.py), on synthetic numbers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, log_softmax
from sklearn.metrics import brier_score_loss

from bertkit.classification.calibration import (
    brier_score,
    calibrated_thresholds,
    checked_calibration,
    expected_calibration_error,
    fit_calibration,
    fit_label_temperatures,
    fit_temperature,
    reliability_bins,
    scale_logits,
)


def nll(logits: np.ndarray, targets: np.ndarray) -> float:
    return float(-log_softmax(logits, axis=1)[np.arange(len(targets)), targets].mean())


def calibrated_sample(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, k))
    proba = np.exp(log_softmax(logits, axis=1))
    targets = np.array([rng.choice(k, p=p) for p in proba])
    return logits, targets


def test_temperature_undoes_an_over_confident_model():
    logits, targets = calibrated_sample(3000, 4, seed=0)
    over = 5 * logits  # the same ranking, five times too sure
    temperature = fit_temperature(over, targets)
    assert temperature == pytest.approx(5, rel=0.15)
    assert nll(scale_logits(over, temperature), targets) < nll(over, targets) - 0.5
    # back to about the NLL of the calibrated model, and the argmax (every label) unchanged
    assert nll(scale_logits(over, temperature), targets) == pytest.approx(nll(logits, targets), abs=0.02)
    assert (scale_logits(over, temperature).argmax(1) == over.argmax(1)).all()


def test_temperature_of_a_calibrated_model_stays_near_one():
    logits, targets = calibrated_sample(3000, 3, seed=1)
    assert fit_temperature(logits, targets) == pytest.approx(1, abs=0.12)


def test_a_perfectly_separated_validation_set_keeps_the_model_s_own_probabilities():
    # every row right with a margin: the likelihood grows without end as T shrinks; no evidence to sharpen
    logits = np.array([[2.0, -1.0], [-0.5, 1.5], [3.0, 0.0], [0.2, 1.0]])
    targets = np.array([0, 1, 0, 1])
    assert fit_temperature(logits, targets) == 1.0
    # one mistake gives a finite optimum again, and it is used
    assert fit_temperature(logits, np.array([0, 1, 0, 0])) != 1.0


def test_label_temperatures_fit_each_label_and_leave_constant_labels_alone():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=1.5, size=(4000, 3))
    truth = (rng.random(logits.shape) < expit(logits)).astype(float)
    truth[:, 2] = 0  # never present: nothing to fit
    scales = np.array([4.0, 1.0, 3.0])
    temperatures = fit_label_temperatures(logits * scales, truth)
    assert temperatures[0] == pytest.approx(4, rel=0.15)
    assert temperatures[1] == pytest.approx(1, rel=0.15)
    assert temperatures[2] == 1.0
    assert fit_calibration(logits, truth, "multi-label").shape == (3,)
    assert fit_calibration(logits[:, :1], logits[:, 0], "regression") is None


def test_thresholds_move_with_the_calibration_so_decisions_do_not_change():
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3, size=(500, 4))
    thresholds = np.array([0.2, 0.5, 0.65, 0.9])
    temperature = np.array([2.0, 0.5, 3.0, 1.3])
    before = expit(logits) >= thresholds
    after = expit(logits / temperature) >= calibrated_thresholds(thresholds, temperature)
    assert (before == after).mean() > 0.999  # only rounding at the very boundary may differ
    assert calibrated_thresholds(thresholds, None) is thresholds
    assert calibrated_thresholds(np.array([0.5]), np.array([7.0]))[0] == pytest.approx(0.5)  # logit 0 is fixed


def test_ece_of_a_hand_computed_example():
    # top-class confidences 0.9 (right) and 0.92 (wrong) share bin (13/15, 14/15]; 0.62 (right) is alone:
    # ECE = 2/3 * |0.5 - 0.91| + 1/3 * |1 - 0.62| = 0.27333 + 0.12667 = 0.4
    proba = np.array([[0.9, 0.1], [0.92, 0.08], [0.38, 0.62]])
    targets = np.array([0, 1, 1])
    assert expected_calibration_error(proba, targets, "classification") == pytest.approx(0.4)
    # all in different bins: the mean of |correct - confidence|
    proba = np.array([[0.9, 0.1], [0.85, 0.15], [0.3, 0.7], [0.45, 0.55]])
    expected = (0.1 + 0.85 + 0.3 + 0.55) / 4
    assert expected_calibration_error(proba, np.array([0, 1, 1, 0]), "classification") == pytest.approx(expected)


def test_ece_of_multi_label_counts_every_row_label_probability():
    proba = np.array([[0.9, 0.2], [0.4, 0.6]])
    truth = np.array([[1, 0], [0, 0]])
    # four (row, label) forecasts, each alone in its bin: mean |y - p|
    assert expected_calibration_error(proba, truth, "multi-label") == pytest.approx((0.1 + 0.2 + 0.4 + 0.6) / 4)


def test_brier_is_the_summed_squared_error_per_row():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    targets = np.array([0, 1, 1])
    assert brier_score(proba, targets, "classification") == pytest.approx((0.02 + 1.28 + 0.18) / 3)
    # for two classes it is twice scikit-learn's binary Brier score of class 1
    assert brier_score(proba, targets, "classification") == pytest.approx(2 * brier_score_loss(targets, proba[:, 1]))
    multi = np.array([[0.9, 0.2], [0.4, 0.6]])
    assert brier_score(multi, np.array([[1, 0], [0, 0]]), "multi-label") == pytest.approx((0.05 + 0.52) / 2)


def test_reliability_bins_hold_the_ends():
    counts, confidence, outcome = reliability_bins(np.array([0.0, 1.0, 1.0, 0.5]), np.array([0, 1, 0, 1]))
    assert counts[0] == 1 and counts[-1] == 2 and counts.sum() == 4
    assert confidence[-1] == 1.0 and outcome[-1] == 0.5


def test_the_check_keeps_a_temperature_that_helps_on_rows_it_was_not_fitted_on():
    logits, targets = calibrated_sample(1000, 3, seed=3)
    over = 4 * logits
    temperature, check = checked_calibration(over, targets, "classification", seed=0)
    assert check.kept and temperature == check.fitted == pytest.approx(4, rel=0.2)
    assert check.ece_cross_fitted < check.ece_before - 0.1
    assert check.to_dict()["kept"] is True


def test_the_check_refuses_a_temperature_that_does_not_lower_the_cross_fitted_error():
    # A calibrated model: any fitted temperature is noise; on some draws it raises the error of unseen rows,
    # and then the model's own probabilities are kept (T = 1), never a temperature shown to do harm.
    outcomes = []
    for seed in range(12):
        logits, targets = calibrated_sample(120, 2, seed=seed)
        temperature, check = checked_calibration(logits, targets, "classification", seed=0)
        assert temperature == (check.fitted if check.ece_cross_fitted <= check.ece_before else 1.0)
        outcomes.append(check.kept)
    assert not all(outcomes) and any(outcomes), outcomes


def test_the_check_needs_enough_rows_to_cross_fit_and_covers_multi_label():
    logits, targets = calibrated_sample(8, 2, seed=0)
    temperature, check = checked_calibration(5 * logits, targets, "classification", seed=0)
    assert temperature == 1.0 and not check.kept  # 8 rows cannot be split in 5 folds of 2
    rng = np.random.default_rng(0)
    z = rng.normal(scale=2, size=(600, 3))
    truth = (rng.random((600, 3)) < expit(z)).astype(float)
    temperatures, check = checked_calibration(3 * z, truth, "multi-label", seed=0)
    assert check.kept and temperatures == pytest.approx([3, 3, 3], rel=0.25)
    assert checked_calibration(z[:, :1], z[:, 0], "regression", seed=0) == (None, None)
