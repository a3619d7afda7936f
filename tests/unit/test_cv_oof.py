"""The out-of-fold table of ``bertkit cv`` (:func:`bertkit.cross_validation.oof_rows`): labels chosen the way the
fold's model predicts them, on the scale of the calibrated probabilities it writes."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bertkit.classification.inputs import as_data
from bertkit.classification.prediction import PredictionMixin
from bertkit.cross_validation import oof_rows


class FoldModel(PredictionMixin):
    """A fitted multi-label model's attributes, without a network: thresholds tuned at 0.8 on the uncalibrated
    probabilities, and a temperature of 2 per label."""

    task_, classes_ = "multi-label", ["a", "b"]
    thresholds_ = np.array([0.8, 0.8])
    temperature_ = np.array([2.0, 2.0])


def test_multi_label_oof_predictions_use_the_thresholds_on_the_calibrated_scale():
    model = FoldModel()
    # logits 2.0 (uncalibrated 0.88, above 0.8: chosen) and 1.0 (0.73: not chosen), probabilities after T = 2
    scores = expit(np.array([[2.0, 1.0], [1.0, 2.0]]) / 2.0)
    data = as_data(["one", "two"], [["a"], ["b"]], "X")
    table = oof_rows(data, scores, model, fold=1, classes=["a", "b"])
    assert table["predicted"].tolist() == ["a", "b"]  # as predict() would: calibration never changes a label set
    assert np.allclose(table[["proba_a", "proba_b"]].to_numpy(), scores)
