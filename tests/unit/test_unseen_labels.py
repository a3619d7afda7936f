"""Evaluation data with labels the model never saw in training (issue 19, item 7): such rows are scored as
errors (they are) and the report names the labels and their counts; ``--skip-bad-rows`` leaves them out,
counted. Training still refuses them in its validation data, with the count of rows in words that say so."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import fails, ok, sentiment_examples, write_csv

from bertkit import TextClassifier
from bertkit.exceptions import DataError


@pytest.fixture(scope="module")
def model(tiny_classifier) -> TextClassifier:
    return TextClassifier.load(tiny_classifier, device="cpu")


def _mixed(n_unseen: int = 3):
    texts, labels = sentiment_examples(12, seed=4)
    return texts + [f"so so {i}" for i in range(n_unseen)], labels + ["neutral"] * (n_unseen - 1) + ["mixed"]


def test_unseen_labels_count_as_errors_and_are_reported(model):
    texts, labels = _mixed()
    report = model.evaluate(texts, labels)
    known = model.evaluate(texts[:12], labels[:12])
    assert report.unseen_labels == {"neutral": 2, "mixed": 1}
    assert report.n_examples == 15 and report.skipped_rows == 0
    hits = round(known.metrics["accuracy"] * 12)
    assert report.metrics["accuracy"] == pytest.approx(hits / 15)  # every unseen row counted wrong
    assert report.metrics["loss"] == pytest.approx(known.metrics["loss"])  # no loss for a class without a logit
    assert [row["label"] for row in report.per_class] == ["negative", "positive", "neutral", "mixed"]
    assert report.per_class[2] == {"label": "neutral", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert np.asarray(report.confusion).shape == (4, 4) and np.asarray(report.confusion)[2:, 2:].sum() == 0
    assert report.to_dict()["unseen_labels"] == {"neutral": 2, "mixed": 1}


def test_skipping_unseen_labels_leaves_them_out_counted(model):
    texts, labels = _mixed()
    report = model.evaluate(texts, labels, skip_unseen_labels=True)
    known = model.evaluate(texts[:12], labels[:12])
    assert report.n_examples == 12 and report.skipped_rows == 3
    assert report.unseen_labels == {"neutral": 2, "mixed": 1}
    assert report.metrics == known.metrics


def test_evaluate_cli_scores_unseen_labels_and_skips_them_when_asked(capsys, tiny_classifier, tmp_path):
    rows = [["good film", "positive"], ["meh", "neutral"], ["bad plot", "negative"], ["so so", "neutral"]]
    data = write_csv(tmp_path / "eval.csv", ["text", "label"], rows)
    out, err = ok(capsys, "evaluate", tiny_classifier, "--data", data, "--json")
    result = json.loads(out)
    assert result["n_examples"] == 4 and result["unseen_labels"] == {"neutral": 2} and result["accuracy"] <= 0.5
    # stdout stays one JSON object; the warning goes to stderr, as the printed report ends with it
    assert "warning: 2 rows have labels never seen in training, scored as errors: 'neutral' 2" in err
    out, err = ok(capsys, "evaluate", tiny_classifier, "--data", data)
    assert "2 rows have labels never seen in training, scored as errors: 'neutral' 2" in out + err
    out, _ = ok(capsys, "evaluate", tiny_classifier, "--data", data, "--json", "--skip-bad-rows")
    result = json.loads(out)
    assert (result["n_examples"], result["skipped_rows"], result["unseen_labels"]) == (2, 2, {"neutral": 2})


def test_multi_label_unseen_labels_count_as_misses():
    from bertkit.classification.report import build_report
    from bertkit.data.dataset import from_lists

    data = from_lists(["a", "b"], [["x"], ["x", "new"]])
    logits = np.array([[4.0, -4.0], [4.0, -4.0]])  # predicts x, never y
    report = build_report(data, [["x"], ["x", "new"]], 0, logits, "multi-label", ["x", "y"], np.full(2, 0.5))
    assert report.unseen_labels == {"new": 1}
    assert report.metrics["accuracy"] == 0.5 and report.metrics["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1))


def test_training_validation_with_unseen_labels_counts_rows_in_words(tiny_bert):
    texts, labels = sentiment_examples(40)
    eval_set = (texts[:4], ["positive", "neutral", "x", "neutral"])
    message = r"eval_set item 1: column 'label' has label 'neutral', never seen in training; .*3 rows carry such labels"
    with pytest.raises(DataError, match=message):
        TextClassifier(str(tiny_bert), epochs=1, progress=False).fit(texts, labels, eval_set=eval_set)


def test_cli_validation_file_message(capsys, tiny_bert, tmp_path):
    texts, labels = sentiment_examples(40)
    train = write_csv(tmp_path / "t.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    valid = write_csv(tmp_path / "v.csv", ["text", "label"], [["a", "mixed"], ["b", "mixed"], ["c", "positive"]])
    error = fails(capsys, "train", "--train", train, "--validation", valid, "--output", tmp_path / "o",
                  "--model", tiny_bert, "--quiet", alone=False)  # fmt: skip
    assert "(2 rows carry such labels: 'mixed' 2)" in error and "such labels in all" not in error


def test_a_constant_regression_prediction_is_said_not_just_scored_0():
    from bertkit.classification.report import build_report
    from bertkit.data.dataset import from_lists

    data = from_lists(["a", "b", "c"], [1.0, 2.5, 4.0])
    report = build_report(data, [1.0, 2.5, 4.0], 0, np.full((3, 1), 2.5), "regression", [], None)
    assert report.metrics["pearson"] == 0.0 and report.metrics["spearman"] == 0.0
    assert report.warnings() == [
        "the model predicts one value for every row (2.5): pearson and spearman are undefined and reported as 0"
    ]
    varied = build_report(data, [1.0, 2.5, 4.0], 0, np.array([[1.0], [2.0], [4.5]]), "regression", [], None)
    assert varied.warnings() == [] and varied.metrics["pearson"] > 0.9
