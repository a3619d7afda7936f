"""Which epoch's weights a run keeps: best, last, or the last unless an earlier one is better beyond noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_same_weights, sentiment_examples

from bertkit import TextClassifier
from bertkit.config import TrainConfig
from bertkit.exceptions import ConfigError
from bertkit.selection import paired_bootstrap_win_share


def accuracy(targets: np.ndarray, logits: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == targets).mean())


def one_hot(predicted: np.ndarray) -> np.ndarray:
    return np.eye(2)[predicted]


def test_bootstrap_win_share_tells_a_real_difference_from_noise():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, size=1000)
    right = one_hot(targets)
    wrong_30 = one_hot(np.where(rng.random(1000) < 0.3, 1 - targets, targets))
    assert paired_bootstrap_win_share(accuracy, targets, right, right) == 0.5  # ties count half
    assert paired_bootstrap_win_share(accuracy, targets, right, wrong_30) == 1.0
    assert paired_bootstrap_win_share(accuracy, targets, wrong_30, right) == 0.0
    # two rows of 1,000 apart: within the noise of the validation set, far from 0 or 1
    two_off = right.copy()
    two_off[:2] = one_hot(1 - targets[:2])
    assert 0.5 < paired_bootstrap_win_share(accuracy, targets, right, two_off) < 0.95

    # for a loss, the lower score wins
    def error(t: np.ndarray, logits: np.ndarray) -> float:
        return 1 - accuracy(t, logits)

    assert paired_bootstrap_win_share(error, targets, right, wrong_30, lower_is_better=True) == 1.0
    assert paired_bootstrap_win_share(error, targets, right, wrong_30) == 0.0


def test_after_early_stopping_auto_keeps_the_best_epoch(scripted_fit):
    """Stopped early, the last epoch is patience epochs past the best and the learning rate never reached zero."""
    result, snapshots, _, calls, weights = scripted_fit("auto", 0.5, epochs=5, patience=2)
    assert len(result.history) == 3 and (result.best_epoch, result.kept_epoch) == (1, 1) and calls == []
    assert_same_weights(weights, snapshots[0])


def test_losses_and_errors_are_lower_is_better():
    from bertkit.selection import METRIC_NAMES, metric_lower_is_better

    lower = {name for names in METRIC_NAMES.values() for name in names if metric_lower_is_better(name)}
    assert lower == {"loss", "mse", "mae"}


def test_classifier_scores_the_bootstrap_on_its_validation_labels(tiny_bert, monkeypatch):
    """The win_share the classifier hands to the loop: the selection metric on the eval_set's own labels."""
    from bertkit.engine import loop as training

    captured = {}
    real_fit = training.fit

    def spy(*args, **kwargs):
        captured.update(kwargs)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", spy)
    texts, labels = sentiment_examples(40)
    eval_texts, eval_labels = texts[20:], labels[20:]
    clf = TextClassifier(str(tiny_bert), epochs=1, batch_size=16, learning_rate=3e-3, max_length=32, progress=False,
                         selection_metric="accuracy")  # fmt: skip
    clf.fit(texts[:20], labels[:20], eval_set=(eval_texts, eval_labels))
    ids = np.array([list(clf.classes_).index(label) for label in eval_labels])
    right, wrong = np.eye(len(clf.classes_))[ids], np.eye(len(clf.classes_))[(ids + 1) % len(clf.classes_)]
    win_share = captured["validation"].scorer.win_share
    assert win_share(right, wrong) == 1.0 and win_share(wrong, right) == 0.0 and win_share(right, right) == 0.5


def test_keep_epoch_is_checked():
    with pytest.raises(ConfigError, match="--keep-epoch must be auto, best or last"):
        TrainConfig(keep_epoch="first")


def test_classifier_records_best_and_kept_epochs(tiny_bert, tmp_path):
    texts, labels = sentiment_examples(40)
    clf = TextClassifier(str(tiny_bert), epochs=2, batch_size=16, learning_rate=3e-3, max_length=32, progress=False,
                         keep_epoch="last").fit(texts, labels)  # fmt: skip
    assert clf.kept_epoch_ == 2 and clf.best_epoch_ in (1, 2)
    saved = json.loads((clf.save(tmp_path / "m") / "bertkit.json").read_text())
    assert (saved["best_epoch"], saved["kept_epoch"]) == (clf.best_epoch_, 2)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_classification_metrics_match_scikit_learn(n_classes):
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    from sklearn.metrics import confusion_matrix as sklearn_confusion

    from bertkit.classification.metrics import classification_metrics, confusion_matrix

    rng = np.random.default_rng(n_classes)
    cases = [rng.integers(0, n_classes, 300), np.zeros(300, dtype=int)]  # the second: one class only
    for y_true in cases:
        for proba in (rng.random((300, n_classes)), np.eye(n_classes)[np.zeros(300, dtype=int)]):
            y_pred = proba.argmax(axis=1)
            ours = classification_metrics(y_true, proba)
            labels = np.arange(n_classes)
            macro = f1_score(y_true, y_pred, average="macro", zero_division=0)  # over the classes that occur
            assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
            assert ours["macro_f1"] == pytest.approx(macro)
            if n_classes == 2:
                binary = f1_score(y_true, y_pred, labels=labels, pos_label=1, average="binary", zero_division=0)
                assert ours["f1"] == pytest.approx(binary)
            else:
                assert ours["f1"] == pytest.approx(macro)
            assert ours["mcc"] == pytest.approx(matthews_corrcoef(y_true, y_pred))
            np.testing.assert_array_equal(
                confusion_matrix(y_true, y_pred, n_classes), sklearn_confusion(y_true, y_pred, labels=labels)
            )


def test_multilabel_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    from bertkit.classification.metrics import multilabel_metrics

    rng = np.random.default_rng(7)
    truth = (rng.random((200, 5)) < 0.3).astype(int)
    truth[:, 4] = 0  # a label never present
    proba = rng.random((200, 5))
    for thresholds in (np.full(5, 0.5), np.array([0.2, 0.5, 0.9, 0.7, 0.99]), np.full(5, 1.1)):  # the last: none
        y_pred = (proba >= thresholds).astype(int)
        ours = multilabel_metrics(truth, proba, thresholds)
        micro = f1_score(truth, y_pred, average="micro", zero_division=0)
        assert ours["micro_f1"] == ours["f1"] == pytest.approx(micro)
        assert ours["macro_f1"] == pytest.approx(f1_score(truth, y_pred, average="macro", zero_division=0))
        assert ours["accuracy"] == pytest.approx(accuracy_score(truth, y_pred))


@pytest.mark.parametrize(("share", "first_step"), [(0.5, 4), (0.75, 2)])
def test_weight_average_is_the_mean_of_the_tail_and_leaves_the_trajectory_alone(
    tiny_bert, monkeypatch, share, first_step
):
    """2 epochs of 3 steps: the model ends as the mean of the weights after steps first_step..6; each epoch is
    evaluated with the average once the tail has begun, else with the trained weights; training is unchanged."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertkit.classification.objective import SequenceObjective
    from bertkit.data.encoding import encode
    from bertkit.engine import loop as training
    from bertkit.engine.objective import MetricScorer, Validation

    texts = [f"good movie {i}" if i % 2 else f"awful plot {i}" for i in range(24)]
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    train, validation = encode(tokenizer, texts, None, 16), encode(tokenizer, texts[:4], None, 16)
    original_step = training.optimizer_step

    def run(share: float):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
        after_steps, evaluated = [], []

        def step(net, *args):
            original_step(net, *args)
            after_steps.append({k: v.detach().clone() for k, v in net.named_parameters()})

        def evaluate(logits):
            evaluated.append({k: v.detach().clone() for k, v in model.named_parameters()})
            return {"mcc": float(len(evaluated))}  # each epoch better: the last is kept

        monkeypatch.setattr(training, "optimizer_step", step)
        config = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-3, precision="fp32",
                             average_weights=share).resolved(24)  # fmt: skip
        result = training.fit(model, train, config, SequenceObjective("classification", np.arange(24) % 2),
                              device=torch.device("cpu"), validation=Validation(validation, MetricScorer(evaluate, "mcc")),
                              run=training.RunOptions(progress=False))  # fmt: skip
        return model, after_steps, evaluated, result

    model, after_steps, evaluated, result = run(share)
    plain_model, plain_steps, _, _ = run(0.0)
    first = first_step - 1  # index into after_steps
    assert len(after_steps) == 6 and [r["averaged_steps"] for r in result.history] == [max(0, 3 - first), 6 - first]

    def mean(steps: list[dict], name: str) -> torch.Tensor:
        return torch.stack([weights[name] for weights in steps]).mean(dim=0)

    for name, value in model.named_parameters():
        torch.testing.assert_close(value.detach(), mean(after_steps[first:], name), msg=name)
        torch.testing.assert_close(evaluated[1][name], mean(after_steps[first:], name), msg=name)
        epoch_one = mean(after_steps[first:3], name) if first < 3 else after_steps[2][name]
        torch.testing.assert_close(evaluated[0][name], epoch_one, msg=name)
        for trained, plain in zip(after_steps, plain_steps, strict=True):  # the same trajectory, step by step
            torch.testing.assert_close(trained[name], plain[name], msg=name)
    assert not torch.equal(next(model.parameters()), next(plain_model.parameters()))


def test_average_weights_is_checked():
    with pytest.raises(ConfigError, match=r"--average-weights must be in \[0, 1\]"):
        TrainConfig(average_weights=1.5)


def test_a_named_class_absent_from_the_rows_does_not_cap_macro_f1():
    from bertkit.classification.metrics import classification_metrics

    y_true = np.array([0, 1, 0, 1, 3])  # class 2 (named by --label-names) never occurs nor is predicted
    perfect = classification_metrics(y_true, np.eye(4)[y_true])
    assert perfect["macro_f1"] == perfect["f1"] == 1.0
    wrong = classification_metrics(y_true, np.eye(4)[[0, 1, 0, 2, 3]])  # predicting class 2 brings it in
    assert wrong["macro_f1"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)
