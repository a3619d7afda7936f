"""Evaluation reports: a terminal table, JSON, confusion-matrix, learning-curve and reliability PNGs, and the
most confidently wrong examples."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.classification import conformal
from bertkit.classification.calibration import (
    N_BINS,
    Temperature,
    brier_score,
    calibrated_thresholds,
    confidence_and_outcome,
    expected_calibration_error,
    reliability_bins,
    scale_logits,
)
from bertkit.classification.metrics import (
    classification_metrics,
    confusion_matrix,
    loss_from_logits,
    multilabel_metrics,
    per_class_report,
)
from bertkit.classification.scoring import evaluation_metrics, labels_from_scores
from bertkit.data.dataset import TextData
from bertkit.data.labels import encode_labels, unseen_labels
from bertkit.engine.batches import logits_to_scores


@dataclass(frozen=True)
class Uncertainty:
    """What a report does with the probabilities: the temperature(s) applied to them (None: the model's own
    probabilities), and for single-label classification the prediction sets of ``coverage`` (``set_threshold``:
    the conformal threshold for it) and the rows withheld below ``abstain_below``."""

    temperature: Temperature | None = None
    coverage: float | None = None
    set_threshold: float | None = None
    abstain_below: float | None = None


@dataclass
class EvaluationReport:
    task: str
    metrics: dict[str, float]
    n_examples: int
    classes: list[Any] = field(default_factory=list)
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    confidently_wrong: list[dict[str, Any]] = field(default_factory=list)
    skipped_rows: int = 0
    truncated: int = 0
    data: str = ""
    unseen_labels: dict[Any, int] = field(default_factory=dict)
    """Labels of the data the model never saw in training, with their counts: scored as errors (they are the
    last rows and columns of ``per_class`` and ``confusion``), or left out when ``unseen_skipped``."""
    unseen_rows: int = 0
    unseen_skipped: bool = False
    calibration: dict[str, Any] | None = None
    """With a temperature applied: it, and ``ece``/``brier`` of the probabilities before and after it."""
    reliability: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    """(confidence, outcome) arrays per curve of reliability.png ("uncalibrated", "calibrated")."""
    notes: list[str] = field(default_factory=list)
    """What else the metrics do not show (constant regression scores), for :meth:`warnings`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "task": self.task,
            "n_examples": self.n_examples,
            "skipped_rows": self.skipped_rows,
            "truncated_examples": self.truncated,
            "unseen_labels": self.unseen_labels,
            **self.metrics,
            **({"calibration": self.calibration} if self.calibration else {}),
            "per_class": self.per_class,
            "confusion_matrix": self.confusion,
            "classes": self.classes,
            "confidently_wrong": self.confidently_wrong,
        }

    def print(self, console=None) -> None:
        """A rich table of the metrics and the per-class scores."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        head = Table(title=f"{self.data or 'evaluation'}: {self.n_examples} examples ({self.task})")
        head.add_column("metric")
        head.add_column("value", justify="right")
        for name, value in self.metrics.items():
            head.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
        console.print(head)
        if self.calibration:
            c = self.calibration
            shown = f"{c['temperature']:.3f}" if isinstance(c["temperature"], float) else "one per label"
            console.print(f"calibration: temperature {shown}; ECE {c['ece_uncalibrated']:.4f} -> "
                          f"{c['ece_calibrated']:.4f}, Brier {c['brier_uncalibrated']:.4f} -> "
                          f"{c['brier_calibrated']:.4f}")  # fmt: skip
        if self.per_class:
            table = Table(title="per class")
            for column in ("label", "precision", "recall", "f1", "support"):
                table.add_column(column, justify="left" if column == "label" else "right")
            for row in self.per_class:
                table.add_row(
                    str(row["label"]), f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                    f"{row['f1']:.3f}", str(row["support"]),
                )  # fmt: skip
            console.print(table)
        if self.confidently_wrong:
            console.print("[bold]most confidently wrong[/bold]")
            for row in self.confidently_wrong[:5]:
                console.print(
                    f"  {row['where']}: predicted {row['predicted']!r} ({row['score']:.3f}), "
                    f"true {row['true']!r}: {row['text'][:100]!r}"
                )
        for line in self.warnings():
            console.print(f"[yellow]{line}[/yellow]")

    def warnings(self) -> list[str]:
        """What the metrics do not show of the data: rows with labels never seen in training, rows skipped.
        :meth:`print` ends with them; the CLI says them on stderr beside ``--json``."""
        lines = []
        if self.unseen_labels:
            verdict = "left out (--skip-bad-rows)" if self.unseen_skipped else "scored as errors"
            counts = ", ".join(f"{label!r} {count}" for label, count in self.unseen_labels.items())
            rows = "1 row has" if self.unseen_rows == 1 else f"{self.unseen_rows} rows have"
            lines.append(f"{rows} labels never seen in training, {verdict}: {counts}")
        if self.skipped_rows:
            lines.append(f"{self.skipped_rows} row{'' if self.skipped_rows == 1 else 's'} skipped (--skip-bad-rows)")
        return lines + self.notes

    def save(self, folder: str | Path, history: list[dict] | None = None) -> list[Path]:
        """Write report.json, confusion_matrix.png, learning_curves.png (when history is given) and
        reliability.png (classification: before and after calibration when a temperature was applied)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "report.json"]
        written[0].write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        if self.confusion is not None:
            written.append(plot_confusion(np.asarray(self.confusion), self.classes, folder / "confusion_matrix.png"))
        if history:
            written.append(plot_learning_curves(history, folder / "learning_curves.png"))
        if self.reliability:
            written.append(plot_reliability(self.reliability, folder / "reliability.png"))
        return written


def build_report(
    data: TextData,
    labels: list[Any],
    truncated: int,
    logits: np.ndarray,
    task: str,
    classes: list[Any],
    thresholds: np.ndarray | None,
    uncertainty: Uncertainty | None = None,
) -> EvaluationReport:
    """The report of a classifier's ``logits`` (one row per example) on ``data`` with (aligned) ``labels``:
    metrics, per-class scores, and for single-label classification the confusion matrix and the most
    confidently wrong rows.

    A label the model never saw (``classes`` lacks it) is scored as an error: it joins the label set as a
    class the model never predicts, so accuracy and F1 count its rows wrong, as scikit-learn's metrics do for
    a ``y_true`` label absent from ``y_pred``; the loss covers the rows (labels) the model has a logit for.

    ``uncertainty`` (see :class:`Uncertainty`): metrics of the probabilities after its temperature (the loss
    stays the training objective on the raw logits), ``ece`` and ``brier``, and the prediction-set and
    abstention figures it asks for."""
    uncertainty = uncertainty or Uncertainty()
    unseen = unseen_labels(labels, classes, task)  # (row, label) pairs
    counts = Counter(value for _, value in unseen)
    extra = list(counts)  # in order of first appearance
    labels_all = [*classes, *extra]
    targets = encode_labels(labels, labels_all, task)
    scores = _with_unseen(logits_to_scores(scale_logits(logits, uncertainty.temperature), task), len(extra))
    if thresholds is not None:  # on the scale of the scores; extra columns (zero scores) never reach theirs
        thresholds = calibrated_thresholds(thresholds, uncertainty.temperature)
        thresholds = np.concatenate([thresholds, np.full(len(extra), np.inf)])
    report = EvaluationReport(
        task=task,
        metrics=_metrics(targets, scores, logits, task, len(classes), thresholds),
        n_examples=len(data),
        classes=labels_all,
        skipped_rows=len(data.skipped),
        truncated=truncated,
        data=Path(data.source.name).name,
        unseen_labels={value: counts[value] for value in extra},
        unseen_rows=len({row for row, _ in unseen}),
    )
    if task == "regression":
        report.notes = _constant_notes(logits[:, 0], np.asarray(targets, dtype=np.float64))
        return report
    _add_uncertainty(report, targets, scores, _with_unseen(logits_to_scores(logits, task), len(extra)), uncertainty)
    if task == "multi-label":
        hits = (scores >= thresholds[None, :]).astype(int)
        report.per_class = per_class_report(targets.astype(int), hits, labels_all)
        return report
    ids = scores.argmax(axis=1)
    predicted = labels_from_scores(scores, task, labels_all, thresholds)
    where = [data.source.where(int(r)) for r in data.rows]
    report.per_class = per_class_report(targets, ids, labels_all)
    if extra and len(classes) == 2:  # "f1" of a binary model stays the F1 of its class 1
        report.metrics["f1"] = report.per_class[1]["f1"]
    report.confusion = confusion_matrix(targets, ids, len(labels_all)).tolist()
    report.confidently_wrong = confidently_wrong(data.texts, where, labels, list(predicted), scores.max(axis=1))
    return report


def _constant_notes(predicted: np.ndarray, targets: np.ndarray) -> list[str]:
    """A line when the predictions (or the true values) are all one value: correlation is then undefined, and
    the report's pearson and spearman of 0 say no more than that."""
    for values, what in ((predicted, "the model predicts"), (targets, "the true values are")):
        if len(values) > 1 and np.ptp(values) == 0:
            return [f"{what} one value for every row ({float(values[0]):.4g}): pearson and spearman are undefined "
                    "and reported as 0"]  # fmt: skip
    return []


def _with_unseen(scores: np.ndarray, n_extra: int) -> np.ndarray:
    """``scores`` with a zero column for each of ``n_extra`` labels the model never saw (never predicted)."""
    if not n_extra or scores.ndim == 1:
        return scores
    return np.concatenate([scores, np.zeros((len(scores), n_extra), dtype=scores.dtype)], axis=1)


def _add_uncertainty(
    report: EvaluationReport, targets: np.ndarray, scores: np.ndarray, raw: np.ndarray, uncertainty: Uncertainty
) -> None:
    """Add to a classification report: ``ece`` and ``brier`` of ``scores`` (the probabilities reported),
    before/after figures when a temperature made them from ``raw``, the reliability curves, and the
    prediction-set and abstention figures ``uncertainty`` asks (over the model's own classes)."""
    task = report.task
    report.metrics["ece"] = expected_calibration_error(scores, targets, task)
    report.metrics["brier"] = brier_score(scores, targets, task)
    calibrated = uncertainty.temperature is not None
    if calibrated:
        temperature = uncertainty.temperature
        report.calibration = {
            "temperature": float(temperature) if np.ndim(temperature) == 0 else [float(t) for t in temperature],
            "ece_uncalibrated": expected_calibration_error(raw, targets, task),
            "ece_calibrated": report.metrics["ece"],
            "brier_uncalibrated": brier_score(raw, targets, task),
            "brier_calibrated": report.metrics["brier"],
        }
        report.reliability["uncalibrated"] = confidence_and_outcome(raw, targets, task)
    report.reliability["calibrated" if calibrated else "model"] = confidence_and_outcome(scores, targets, task)
    known = scores[:, : scores.shape[1] - len(report.unseen_labels)]
    if uncertainty.set_threshold is not None:
        report.metrics["target_coverage"] = float(uncertainty.coverage)
        report.metrics.update(conformal.set_metrics(known, targets, uncertainty.set_threshold))
    if uncertainty.abstain_below is not None:
        report.metrics.update(conformal.abstention_metrics(known, targets, uncertainty.abstain_below))


def _metrics(
    targets: np.ndarray, scores: np.ndarray, logits: np.ndarray, task: str, n_known: int,
    thresholds: np.ndarray | None,
) -> dict[str, float]:  # fmt: skip
    """The task's metrics of ``scores`` (over the model's classes and any unseen labels after them) and the
    loss over what the model has logits for: the rows of known labels, the known label columns."""
    if task == "regression":
        return evaluation_metrics(targets, logits, task, thresholds)
    if task == "multi-label":
        metrics = multilabel_metrics(targets, scores, thresholds)
        return {**metrics, "loss": loss_from_logits(targets[:, :n_known], logits, task)}
    metrics = classification_metrics(targets, scores)
    known = targets < n_known
    if known.any():
        metrics["loss"] = loss_from_logits(targets[known], logits[known], task)
    return metrics


def confidently_wrong(
    texts: list[str],
    where: list[str],
    true: list[Any],
    predicted: list[Any],
    scores: np.ndarray,
    limit: int = 10,
) -> list[dict[str, Any]]:
    wrong = [i for i in range(len(texts)) if true[i] != predicted[i]]
    wrong.sort(key=lambda i: -float(scores[i]))
    return [
        {
            "where": where[i],
            "text": texts[i],
            "true": true[i],
            "predicted": predicted[i],
            "score": float(scores[i]),
        }
        for i in wrong[:limit]
    ]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: np.ndarray, classes: list[Any], path: Path) -> Path:
    plt = _pyplot()
    size = max(4.0, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    names = [str(c) for c in classes]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(names) <= 20:
        peak = matrix.max() or 1
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    ax.set_title("confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """A reliability diagram: mean outcome (accuracy) against mean confidence in each of the 15 bins, one line per
    curve (before and after calibration), the diagonal being perfect calibration; bars below count the
    predictions in each bin."""
    plt = _pyplot()
    fig, (curve_ax, count_ax) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True)
    curve_ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    centers = (np.arange(N_BINS) + 0.5) / N_BINS
    width = 0.8 / N_BINS / len(curves)
    for offset, (name, (confidence, outcome)) in enumerate(curves.items()):
        counts, mean_confidence, mean_outcome = reliability_bins(confidence, outcome)
        filled = counts > 0
        ece = float(np.sum(counts / max(len(confidence), 1) * np.abs(mean_outcome - mean_confidence)))
        curve_ax.plot(mean_confidence[filled], mean_outcome[filled], marker="o", label=f"{name} (ECE {ece:.3f})")
        count_ax.bar(centers + (offset - (len(curves) - 1) / 2) * width, counts, width=width, label=name)
    curve_ax.set_ylabel("accuracy (share true)")
    curve_ax.set_title("reliability")
    curve_ax.legend()
    count_ax.set_xlabel("confidence")
    count_ax.set_ylabel("predictions")
    count_ax.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_learning_curves(history: list[dict], path: Path) -> Path:
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train loss")
    if "val_loss" in history[0]:
        loss_ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_title("loss")
    loss_ax.legend()
    for name in sorted(k for k in history[0] if k.startswith("val_") and k != "val_loss"):
        metric_ax.plot(epochs, [r.get(name) for r in history], marker="o", label=name[4:])
    metric_ax.set_xlabel("epoch")
    metric_ax.set_title("validation metrics")
    if len(metric_ax.lines):
        metric_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
