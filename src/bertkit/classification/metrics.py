"""Metrics as pure functions of numpy arrays (numpy, scikit-learn and scipy underneath)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [true class, predicted class] of class ids in [0, n_classes), as scikit-learn's
    ``confusion_matrix(labels=range(n_classes))``, in one ``bincount``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if y_true.size and (y_true.min() < 0 or y_true.max() >= n_classes):
        raise ValueError(f"class ids must be in [0, {n_classes}) (got {y_true.min()}..{y_true.max()})")
    counts = np.bincount(y_true * n_classes + np.asarray(y_pred, dtype=np.int64), minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def _f1(true_positives: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """F1 = 2 tp / (2 tp + fp + fn), elementwise, from the counts and that denominator; 0 where nothing was
    true or predicted (scikit-learn's zero_division=0)."""
    true_positives, denominator = np.asarray(true_positives, dtype=np.float64), np.asarray(denominator)
    return np.divide(2 * true_positives, denominator, out=np.zeros_like(true_positives), where=denominator > 0)


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """accuracy; f1 (binary F1 of class 1 for two classes, macro F1 otherwise); macro_f1 (over the classes that
    occur in ``y_true`` or the predictions); mcc.

    Computed from the confusion matrix with scikit-learn's definitions (zero_division=0; the multi-class MCC
    of ``matthews_corrcoef``), in numpy: validation scores it thousands of times (selection.paired_bootstrap_win_share),
    where scikit-learn's input checks cost 30x the arithmetic. tests/unit/test_keep_epoch.py compares the
    two."""
    n_classes = proba.shape[1]
    confusion = confusion_matrix(y_true, proba.argmax(axis=1), n_classes).astype(np.float64)  # [true, predicted]
    total = confusion.sum()
    hits = np.diag(confusion)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    f1_denominator = true_counts + predicted_counts  # 2 tp + fp + fn
    per_class_f1 = _f1(hits, f1_denominator)
    # macro over the classes that occur (true or predicted), as scikit-learn's f1_score(average="macro") without
    # labels=: a class named (--label-names) but absent from these rows would otherwise count as F1 0
    macro = float(per_class_f1[f1_denominator > 0].mean()) if total else 0.0
    covariance = hits.sum() * total - true_counts @ predicted_counts
    spread = (total**2 - true_counts @ true_counts) * (total**2 - predicted_counts @ predicted_counts)
    return {
        "accuracy": float(hits.sum() / total),
        "f1": float(per_class_f1[1]) if n_classes == 2 else macro,
        "macro_f1": macro,
        "mcc": float(covariance / np.sqrt(spread)) if spread > 0 else 0.0,
    }


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class (each label, for multi-hot arrays)."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = None if y_true.ndim == 2 else np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return [
        {"label": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    ]


def multilabel_metrics(y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """micro/macro F1 at per-label thresholds; accuracy is exact-set match; f1 is micro F1.

    Counted in numpy with scikit-learn's definitions (``f1_score(average="micro"|"macro", zero_division=0)``,
    ``accuracy_score`` on multi-hot rows), for the same reason as :func:`classification_metrics`: the
    validation bootstrap scores it hundreds of times."""
    truth = np.asarray(y_true).astype(bool)  # [n, labels]
    predicted = proba >= thresholds[None, :]  # [n, labels]
    tp = (predicted & truth).sum(axis=0)  # [labels]
    f1_denominator = predicted.sum(axis=0) + truth.sum(axis=0)  # 2 tp + fp + fn, per label
    per_label_f1 = _f1(tp, f1_denominator)
    micro = float(_f1(tp.sum(), f1_denominator.sum()))
    return {
        "accuracy": float((predicted == truth).all(axis=1).mean()),
        "f1": micro,
        "micro_f1": micro,
        "macro_f1": float(per_label_f1.mean()),
    }


def tune_thresholds(y_true: np.ndarray, proba: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-label decision thresholds that maximise micro F1 on validation data.

    Starts from the best single threshold for all labels, then moves each label's threshold in turn to
    the grid value that most improves micro F1 given the others (two passes of coordinate ascent). Tuning
    each label for its own F1 instead would switch on labels the model cannot yet tell apart for every
    row (for a rare label, predicting it everywhere beats never) and wreck precision overall.
    """
    grid = np.arange(0.05, 0.96, 0.05) if grid is None else grid
    truth = y_true.astype(bool)  # [n, labels]
    predicted = proba[None, :, :] >= grid[:, None, None]  # [grid, n, labels]
    tp = (predicted & truth[None]).sum(axis=1)  # [grid, labels]
    fp = predicted.sum(axis=1) - tp
    fn = truth.sum(axis=0)[None, :] - tp

    def micro_f1(tp_total, fp_total, fn_total):
        return _f1(tp_total, 2 * tp_total + fp_total + fn_total)

    choice = np.full(y_true.shape[1], int(np.argmax(micro_f1(tp.sum(1), fp.sum(1), fn.sum(1)))))
    columns = np.arange(y_true.shape[1])
    for _ in range(2):
        for j in columns:
            rest = columns != j
            others = [m[choice[rest], columns[rest]].sum() for m in (tp, fp, fn)]
            scores = micro_f1(others[0] + tp[:, j], others[1] + fp[:, j], others[2] + fn[:, j])
            choice[j] = int(np.argmax(scores))
    return grid[choice]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    constant = np.ptp(y_pred) == 0 or np.ptp(y_true) == 0
    error = y_pred - y_true
    return {
        "pearson": 0.0 if constant else float(pearsonr(y_true, y_pred).statistic),
        "spearman": 0.0 if constant else float(spearmanr(y_true, y_pred).statistic),
        "mse": float(np.mean(error**2)),
        "mae": float(np.mean(np.abs(error))),
    }


def loss_from_logits(targets: np.ndarray, logits: np.ndarray, task: str) -> float:
    """The training objective on held-out data: cross-entropy, binary cross-entropy or MSE."""
    if task == "regression":
        return float(np.mean((logits[:, 0] - targets) ** 2))
    if task == "multi-label":
        # log(1 + exp(-|x|)) + max(x, 0) - x * y: the numerically stable BCE-with-logits.
        losses = np.logaddexp(0, -np.abs(logits)) + np.maximum(logits, 0) - logits * targets
        return float(losses.mean())
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_proba = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_proba[np.arange(len(targets)), targets].mean())
