"""TextClassifier runs that train several epochs on tiny models (text pairs, regression, multi-label, other
architectures): slow for the fast loop, so they live here; the fast estimator tests are tests/unit/test_estimator.py."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import NEGATIVE, NEUTRAL, POSITIVE, sentiment_examples

from bertkit import BertkitWarning, ConfigError, TextClassifier

FAST = dict(epochs=5, batch_size=16, learning_rate=3e-3, max_length=32, progress=False)


def test_text_pairs_use_the_second_text(tiny_bert):
    # The label is the sentiment of the second text; the first carries a random, misleading one.
    rng = random.Random(3)
    pairs, labels = [], []
    for i in range(300):
        positive = i % 2 == 0
        first = rng.choice(POSITIVE + NEGATIVE)
        second = rng.choice(POSITIVE if positive else NEGATIVE)
        pairs.append((f"the film {first}", f"the plot {second}"))
        labels.append("yes" if positive else "no")
    # 24 drawn pairs repeat others: those are left out of training, as the held-out rows have them (and said)
    with pytest.warns(BertkitWarning, match="are also rows of the validation data"):
        clf = TextClassifier(str(tiny_bert), **{**FAST, "epochs": 8, "learning_rate": 1e-2}).fit(
            pairs[:240], labels[:240]
        )
    assert clf.score(pairs[240:], labels[240:]) >= 0.85


def test_regression_on_float_labels(tiny_bert):
    texts, labels = sentiment_examples(240)
    values = [4.5 if label == "positive" else 0.5 for label in labels]
    clf = TextClassifier(str(tiny_bert), **{**FAST, "epochs": 6, "learning_rate": 1e-2}).fit(texts, values)
    assert clf.task_ == "regression"
    predicted = clf.predict(["great wonderful film", "awful boring film"])
    assert predicted.dtype == np.float32 and predicted[0] > predicted[1] + 1.0
    assert clf.validation_metrics_["pearson"] > 0.8
    with pytest.raises(ConfigError, match="not defined for regression"):
        clf.predict_proba(["x"])


def test_multi_label_with_tuned_thresholds(tiny_bert):
    rng = random.Random(5)
    texts, labels = [], []
    for _ in range(300):
        tags = [tag for tag, pool in (("pos", POSITIVE), ("neg", NEGATIVE)) if rng.random() < 0.5]
        words = rng.choices(NEUTRAL, k=3) + [rng.choice(POSITIVE if t == "pos" else NEGATIVE) for t in tags]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(tags)
    clf = TextClassifier(str(tiny_bert), **{**FAST, "epochs": 8}).fit(texts[:250], labels[:250])
    assert clf.task_ == "multi-label" and list(clf.classes_) == ["neg", "pos"]
    assert clf.thresholds_.shape == (2,)
    report = clf.evaluate(texts[250:], labels[250:])
    assert report.metrics["micro_f1"] >= 0.8 and "macro_f1" in report.metrics
    predicted = clf.predict(["great film awful plot"])
    assert isinstance(predicted, list) and isinstance(predicted[0], list)


@pytest.mark.parametrize("fixture", ["tiny_distilbert", "tiny_roberta"])
def test_other_architectures_fit_pairs_and_single_texts(fixture, request, tmp_path):
    folder = request.getfixturevalue(fixture)
    texts, labels = sentiment_examples(240)
    clf = TextClassifier(str(folder), **{**FAST, "epochs": 6, "learning_rate": 1e-2}).fit(texts, labels)
    assert clf.score(*sentiment_examples(60, seed=9)) >= 0.8
    pairs = [(t, "the film") for t in texts]
    paired = TextClassifier(str(folder), **{**FAST, "epochs": 1}).fit(pairs, labels)
    assert paired.predict_proba(pairs[:3]).shape == (3, 2)
    assert (paired.text_pair_, clf.text_pair_) == (True, False)  # recorded in bertkit.json: predict refuses the other
    loaded = TextClassifier.load(clf.save(tmp_path / fixture))
    np.testing.assert_allclose(loaded.predict_proba(texts[:4]), clf.predict_proba(texts[:4]), atol=1e-6)
