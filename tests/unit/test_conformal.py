"""Split conformal prediction sets (classification/conformal.py): the quantile, the sets, and their coverage on
synthetic probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bertkit import ConfigError
from bertkit.classification.conformal import (
    abstention_metrics,
    check_abstain_below,
    check_coverage,
    conformal_threshold,
    lac_scores,
    prediction_sets,
    scores_to_store,
    set_metrics,
)


def test_coverage_on_synthetic_scores_meets_the_guarantee_and_its_slack():
    """Many draws of n calibration and m test rows: the mean coverage is ceil((n+1)(1-a))/(n+1), which lies in
    [1-a, 1-a + 1/(n+1)) (Monte Carlo error about 0.001 here)."""
    rng = np.random.default_rng(0)
    n, m, k, repetitions, coverage = 100, 100, 4, 2000, 0.9
    proba = rng.dirichlet(np.full(k, 0.7), size=(repetitions, n + m))
    cumulative = proba.cumsum(axis=2)
    labels = np.minimum((rng.random((repetitions, n + m, 1)) > cumulative).sum(axis=2), k - 1)  # ~ Categorical(p)
    covered, sizes = [], []
    for p, y in zip(proba, labels, strict=True):
        threshold = conformal_threshold(np.sort(lac_scores(p[:n], y[:n])), coverage)
        result = set_metrics(p[n:], y[n:], threshold)
        covered.append(result["set_coverage"])
        sizes.append(result["mean_set_size"])
    mean = float(np.mean(covered))
    exact = math.ceil((n + 1) * coverage) / (n + 1)
    assert mean == pytest.approx(exact, abs=0.003)
    assert coverage - 0.003 <= mean < coverage + 1 / (n + 1)
    assert 1 < np.mean(sizes) < k  # informative sets, not every label


def test_quantile_edges():
    scores = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert conformal_threshold(scores, 0.9) == math.inf  # ceil(6 * 0.9) = 6 > 5: every label
    assert conformal_threshold(scores, 0.8) == 0.5  # ceil(4.8) = 5
    assert conformal_threshold(scores, 0.5) == 0.3  # ceil(3.0) = 3
    nineteen = np.linspace(0.01, 0.19, 19)
    assert conformal_threshold(nineteen, 0.95) == nineteen[18]  # (19 + 1) * 0.95 is 19, not 19.000000000000004
    assert conformal_threshold([], 0.5) == math.inf
    assert prediction_sets(np.array([[0.2, 0.5, 0.3]]), math.inf, ["a", "b", "c"]) == [["b", "c", "a"]]


def test_sets_are_ordered_by_probability_and_may_be_empty():
    proba = np.array([[0.1, 0.6, 0.3], [0.34, 0.33, 0.33]])
    assert prediction_sets(proba, 0.75, ["a", "b", "c"]) == [["b", "c"], ["a", "b", "c"]]
    assert prediction_sets(proba, 0.2, ["a", "b", "c"]) == [[], []]  # 1 - 0.6 > 0.2: nothing is plausible enough
    assert prediction_sets(proba, 0.68, [-1, 0, 1]) == [[0], [-1, 0, 1]]  # labels as given
    result = set_metrics(proba, np.array([2, 5]), 0.75)  # class id 5: a label the model never saw
    assert result == {"set_coverage": 0.5, "mean_set_size": 2.5}


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "0.9", True])
def test_coverage_must_lie_strictly_between_0_and_1(value):
    with pytest.raises(ConfigError, match=r"^coverage \(--coverage\) must be a probability strictly between 0 and 1"):
        check_coverage(value)


@pytest.mark.parametrize("value", [0, 1.2, -1])
def test_abstain_below_must_be_a_probability(value):
    with pytest.raises(ConfigError, match=r"^abstain_below \(--abstain-below\) must be a probability in \(0, 1\]"):
        check_abstain_below(value)


def test_stored_scores_are_sorted_and_capped_by_a_seeded_sample():
    scores = np.random.default_rng(1).random(25)
    stored = scores_to_store(scores, seed=3, cap=10)
    assert len(stored) == 10 and stored == sorted(stored) and set(stored) <= set(scores.tolist())
    assert stored == scores_to_store(scores, seed=3, cap=10)
    assert scores_to_store(scores, seed=3) == sorted(scores.tolist())


def test_abstention_counts_and_answered_accuracy():
    proba = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.4, 0.6]])
    result = abstention_metrics(proba, np.array([0, 0, 0, 1]), below=0.7)
    assert result == {"abstained": 2, "coverage_rate": 0.5, "answered_accuracy": 0.5}
    assert abstention_metrics(proba, np.array([0, 0, 0, 1]), below=0.95)["answered_accuracy"] is None
