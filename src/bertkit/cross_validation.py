"""K-fold cross-validation of a text classifier: one model per fold, trained exactly as ``bertkit train`` trains
(the fold's validation rows pick the epoch kept, as ``--validation`` does), and out-of-fold predictions for
every training row.

Folds are stratified by label for single-label classification (scikit-learn's ``StratifiedKFold``), by each
row's rarest label for multi-label data, and plain ``KFold`` for regression; all shuffled with the run's seed.
``OUTPUT/oof_predictions.csv`` holds every training row once (its 0-based row in the input, its fold, text, true
and predicted label and the probability of each label) and ``OUTPUT/cv_report.json`` the per-fold metrics with
their mean and standard deviation. Fold models are kept under ``OUTPUT/fold-K/`` only when asked; otherwise they are never written.
With ``config.track`` the run is one MLflow run with a nested run per fold (:func:`bertkit.tracking.tracked_group`).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData
from bertkit.exceptions import ConfigError, DataError
from bertkit.tracking import Tracker, tracked, tracked_group

OOF_FILE = "oof_predictions.csv"
REPORT_FILE = "cv_report.json"
FOLD_PREFIX = "fold-"


@dataclass
class CVResult:
    """What a cross-validation run found: per-fold validation metrics, their mean and spread, and the
    out-of-fold predictions."""

    folds: int
    task: str
    classes: list[Any]
    per_fold: list[dict[str, Any]]
    """One record per fold: fold (1-based), train_rows, validation_rows, best_epoch, kept_epoch,
    train_seconds, metrics and, with ``keep_models``, folder."""
    mean: dict[str, float]
    std: dict[str, float]
    """Sample standard deviation (ddof=1) across folds of each validation metric."""
    oof_metrics: dict[str, float]
    """The task's metrics over all out-of-fold predictions pooled (empty for multi-label, whose folds tune
    their own thresholds)."""
    oof: pd.DataFrame = field(repr=False)
    """One row per training row, in input order (see :data:`OOF_FILE`)."""
    selection_metric: str = ""
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    """Fingerprint of the training data: source, rows, sha256."""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (``cv_report.json``): everything but the out-of-fold table."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "oof"}


def fold_indices(labels: list[Any], task: str, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) of each fold, shuffled with ``seed``: stratified by label for single-label
    classification, by each row's rarest label for multi-label data (a simple stand-in for iterative
    stratification: a rare label's rows spread over the folds), plain K-fold for regression."""
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = np.zeros((len(labels), 1))
    if task == "regression":
        return list(KFold(folds, shuffle=True, random_state=seed).split(rows))
    if task == "multi-label":
        counts = Counter(str(x) for row in labels for x in row)
        keys = [min((str(x) for x in row), key=lambda x: (counts[x], x), default="") for row in labels]
    else:
        keys = [str(v) for v in labels]
    codes = pd.factorize(pd.Series(keys))[0]
    if folds > np.bincount(codes).max():  # every key rarer than the folds: stratifying cannot place them
        return list(KFold(folds, shuffle=True, random_state=seed).split(rows))
    with warnings.catch_warnings():  # a label rarer than the folds: said in the notes instead
        warnings.simplefilter("ignore", UserWarning)
        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, codes))


def check_fold_count(folds: Any) -> None:
    """ConfigError unless ``folds`` is a whole number of at least 2 (checked before any data is read)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"--folds must be an integer of at least 2 (got {folds!r})")


def check_folds(data: TextData, labels: list[Any], task: str, folds: int) -> list[str]:
    """ConfigError or DataError for a fold count this data cannot give; returns notes on rare labels."""
    check_fold_count(folds)
    if folds > len(labels):
        raise ConfigError(f"--folds {folds} is more than the {len(labels)} training rows of {data.source.name}")
    if task != "classification":
        return []
    counts = pd.Series([str(v) for v in labels]).value_counts()
    alone = [label for label, n in counts.items() if n < 2]
    if alone:
        raise DataError(
            f"{data.source.name}: label {alone[0]!r} has a single row; every fold trains on the labels it "
            "validates, so cross-validation needs at least 2 rows of each label (add rows or remove the label)"
        )
    if folds > counts.max():
        raise ConfigError(f"--folds {folds} is more than the {counts.max()} rows of the most common label; use fewer")
    return [
        f"label {label!r} has {n} rows, fewer than the {folds} folds: some folds validate without it"
        for label, n in counts.items()
        if n < folds
    ]


def check_unseen(data: TextData, labels: list[Any], splits: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """DataError when a fold would validate on a (multi-)label none of its training rows carries."""
    for k, (train_rows, validation_rows) in enumerate(splits, 1):
        seen = {x for i in train_rows for x in labels[i]}
        for i in validation_rows:
            unseen = [x for x in labels[i] if x not in seen]
            if unseen:
                raise DataError(
                    f"{data.source.where(int(data.rows[i]))}: label {unseen[0]!r} is in fold {k}'s validation rows "
                    "only, none of its training rows; use fewer --folds (or a different --seed), or drop so rare a label"
                )


def cross_validate(
    config: TrainConfig,
    train: TextData,
    folds: int = 5,
    *,
    output: str | Path | None = None,
    keep_models: bool = False,
    progress: bool = True,
    run_options: Mapping[str, Any] | None = None,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> CVResult:
    """Cross-validate ``config`` on ``train`` with ``folds`` folds (see the module docstring).

    ``output``: the folder that receives oof_predictions.csv and cv_report.json (None: nothing is written);
    ``keep_models`` saves each fold's model folder there as ``fold-K/`` (needs ``output``), with ``run_options``
    (the data options) in its metadata as ``bertkit train`` records them. ``on_fold`` is called with each finished
    fold's record. Every fold trains with ``config.seed``; the folds are shuffled with it too."""
    from bertkit.classification.inputs import fingerprint
    from bertkit.data.labels import class_order, normalize_labels
    from bertkit.ddp import env_world_size, is_main_process
    from bertkit.seeds import summarize
    from bertkit.selection import resolve_selection_metric

    if env_world_size() > 1:
        raise ConfigError(
            "cross-validation trains its folds one after another in one process; launch it without torchrun"
        )
    if train.labels is None:
        raise DataError(f"{train.source.name}: cross-validation needs labelled data (no label column)")
    if keep_models and output is None:
        raise ConfigError("keep_models needs an output folder to keep the fold models in")
    task, labels = normalize_labels(train.labels, config.task, as_written=train.in_memory, where=train.where)
    notes = check_folds(train, labels, task, folds)
    splits = fold_indices(labels, task, folds, config.seed)
    if task == "multi-label":
        check_unseen(train, labels, splits)
    metric = resolve_selection_metric(config.selection_metric, task)
    # The folds train on the labels as read here, under the task found here: every fold reads them the same way.
    config = dataclasses.replace(config, task=task)
    data = dataclasses.replace(train, labels=labels)
    classes = class_order(labels, task, train.label_names) if task != "regression" else []
    runs, parts = [], []
    output = Path(output) if output is not None else None
    with tracked_group(config, output, run_options, kind="cv", params={"folds": folds},
                       enabled=is_main_process()) as group:  # fmt: skip
        for k, (train_rows, validation_rows) in enumerate(splits, 1):
            folder = output / f"{FOLD_PREFIX}{k}" if keep_models and output is not None else None
            with tracked(config, folder, run_options, parent=group, run_name=f"{FOLD_PREFIX}{k}") as tracker:
                run, part = _run_fold(
                    config, data, k, train_rows, validation_rows, folder, classes, progress, run_options, tracker
                )
            group.log_metrics({f"fold_{name}": value for name, value in run["metrics"].items()}, step=k)
            runs.append(run)
            parts.append(part)
            if on_fold is not None:
                on_fold(run)
        mean, std = summarize(runs)
        oof = pd.concat(parts).sort_values("input_row", kind="stable").reset_index(drop=True)
        result = CVResult(
            folds=folds, task=task, classes=classes, per_fold=runs, mean=mean, std=std,
            oof_metrics=_pooled_metrics(oof, labels, task, classes, data), oof=oof, selection_metric=metric,
            seed=config.seed, config=config.to_dict(), data=fingerprint(train), notes=notes,
        )  # fmt: skip
        group.log_spread(mean, std)
        group.log_metrics({f"pooled_{k}": v for k, v in result.oof_metrics.items()})
        if output is not None:
            group.log_files(list(write_results(result, output)))
    return result


def _run_fold(
    config: TrainConfig, data: TextData, k: int, train_rows: np.ndarray, validation_rows: np.ndarray,
    folder: Path | None, classes: list[Any], progress: bool, run_options: Mapping[str, Any] | None,
    tracker: Tracker,
) -> tuple[dict[str, Any], pd.DataFrame]:  # fmt: skip
    """Train fold ``k`` (saved to ``folder`` when given) and predict its validation rows; ``tracker`` logs it."""
    from bertkit.classification.estimator import TextClassifier
    from bertkit.runs import fit_and_save

    fold_train, fold_validation = data.subset(train_rows), data.subset(validation_rows)
    if folder is not None:
        clf = fit_and_save(config, fold_train, fold_validation, folder, progress=progress, run_options=run_options,
                           tracker=tracker)  # fmt: skip
    else:
        clf = TextClassifier.from_config(config, progress=progress)
        clf.fit(fold_train, eval_set=fold_validation, on_epoch=tracker.log_epoch)
        tracker.finish(clf, None)
    scores = clf.decision_scores(fold_validation)
    part = oof_rows(fold_validation, scores, clf, k, classes)
    run = {
        "fold": k, "train_rows": len(fold_train), "validation_rows": len(fold_validation),
        "best_epoch": clf.best_epoch_, "kept_epoch": clf.kept_epoch_, "train_seconds": clf.train_seconds_,
        "metrics": dict(clf.validation_metrics_), **({"folder": str(folder)} if folder is not None else {}),
    }  # fmt: skip
    return run, part  # the fold's model goes with this frame: one model in memory at a time


def _label_text(value: Any) -> Any:
    return ",".join(str(v) for v in value) if isinstance(value, list | tuple) else value


def oof_rows(data: TextData, scores: np.ndarray, clf: Any, fold: int, classes: list[Any]) -> pd.DataFrame:
    """The out-of-fold table of one fold's validation rows: input_row, fold, text (text_pair), label,
    predicted and, for classification, ``proba_<label>`` per label of ``classes`` (0 for a label this fold's
    model does not know)."""
    from bertkit.classification.scoring import labels_from_scores

    # scores are calibrated: multi-label thresholds on their scale (thresholds_ is on the uncalibrated one)
    predicted = labels_from_scores(scores, clf.task_, np.asarray(clf.classes_).tolist(), clf.score_thresholds_)
    table = {"input_row": data.rows.astype(np.int64), "fold": fold, "text": data.texts}
    if data.pairs is not None:
        table["text_pair"] = data.pairs
    table["label"] = [_label_text(v) for v in data.labels]
    table["predicted"] = [_label_text(v) for v in predicted]
    if clf.task_ != "regression":
        index = {c: i for i, c in enumerate(np.asarray(clf.classes_).tolist())}
        for name in classes:
            table[f"proba_{name}"] = scores[:, index[name]] if name in index else np.zeros(len(data))
    return pd.DataFrame(table)


def _pooled_metrics(
    oof: pd.DataFrame, labels: list[Any], task: str, classes: list[Any], data: TextData
) -> dict[str, float]:
    """The task's metrics over every out-of-fold prediction at once (not for multi-label: see CVResult)."""
    from bertkit.classification.metrics import classification_metrics, regression_metrics

    position = {int(row): i for i, row in enumerate(data.rows)}
    truth = [labels[position[int(row)]] for row in oof["input_row"]]
    if task == "regression":
        return regression_metrics(np.asarray(truth, dtype=np.float64), oof["predicted"].to_numpy(np.float64))
    if task == "multi-label":
        return {}
    index = {c: i for i, c in enumerate(classes)}
    proba = oof[[f"proba_{c}" for c in classes]].to_numpy(np.float64)
    return classification_metrics(np.asarray([index[v] for v in truth]), proba)


def write_results(result: CVResult, output: str | Path) -> tuple[Path, Path]:
    """Write ``output/oof_predictions.csv`` and ``output/cv_report.json``; returns their paths."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    oof_path, report_path = output / OOF_FILE, output / REPORT_FILE
    result.oof.to_csv(oof_path, index=False)
    report = {**result.to_dict(), "oof_predictions": OOF_FILE}
    report_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return oof_path, report_path


def is_cv_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a cross-validation run bertkit wrote and nothing else: cv_report.json,
    oof_predictions.csv and fold-K/ model folders."""
    from bertkit.runs import MODEL_FILES

    entries = list(Path(folder).iterdir())

    def ours(entry: Path) -> bool:
        if entry.name in (OOF_FILE, REPORT_FILE):
            return entry.is_file()
        fold = entry.name.startswith(FOLD_PREFIX) and entry.is_dir() and (entry / "bertkit.json").is_file()
        return fold and all(e.name in MODEL_FILES for e in entry.iterdir())

    return any(e.name == REPORT_FILE for e in entries) and all(ours(e) for e in entries)


def check_cv_output(output: str | Path, overwrite: bool) -> None:
    """Refuse an ``--output`` a cross-validation run would mix into or replace silently (the rules of
    ``bertkit train``: :func:`bertkit.runs.check_output_folder`); a folder an earlier ``bertkit cv`` wrote is
    bertkit's own too, which ``overwrite`` replaces."""
    from bertkit.runs import check_output_folder

    output = Path(output)
    if output.is_dir() and any(output.iterdir()) and is_cv_folder(output):
        if not overwrite:
            raise ConfigError(
                f"{output}: folder is not empty (holds a cross-validation run bertkit wrote); choose a new --output "
                "folder, or pass --overwrite to replace it"
            )
        return
    check_output_folder(output, overwrite)


def clear_cv_output(output: str | Path) -> None:
    """Delete what :func:`check_cv_output` let ``--overwrite`` replace (checked again here)."""
    import shutil

    from bertkit.runs import clear_output_folder

    output = Path(output)
    if not output.is_dir() or not any(output.iterdir()):
        return
    if not is_cv_folder(output):
        clear_output_folder(output)
        return
    for entry in output.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
