"""The torch side of :meth:`TextClassifier.fit`, in the order it runs: build the model (head and pooling), run the
training loop under the classification objective on the data :mod:`bertkit.classification.inputs` prepared
(read, labels, hold-out, encoding), calibrate, and report on validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.classification.calibration import Calibration, calibrate, set_calibration
from bertkit.classification.inputs import FitData, encode_texts, fingerprint
from bertkit.classification.objective import SequenceObjective, balanced_class_weights
from bertkit.classification.report import EvaluationReport, Uncertainty, build_report
from bertkit.classification.scoring import ClassificationScorer
from bertkit.config import TrainConfig
from bertkit.data.encoding import Encoded
from bertkit.data.labels import encode_labels
from bertkit.engine import loop
from bertkit.engine.checkpoint import CHECKPOINT_DIR, CheckpointOptions, locate, parse_every
from bertkit.engine.objective import Validation
from bertkit.exceptions import ConfigError
from bertkit.models.heads import build_classifier
from bertkit.models.pooling import add_mean_pooling_layer, has_bert_style_layers, sentence_pooling
from bertkit.selection import resolve_selection_metric


def build_model(checkpoint: str, task: str, classes: list[Any], config: TrainConfig) -> tuple[Any, TrainConfig]:
    """A classifier on ``checkpoint`` with a new head; ``classifier_pooling="auto"`` resolved (mean pooling for
    sentence-embedding checkpoints trained with it, when the architecture allows). The caller seeds first:
    the head's initial weights are part of the run."""
    model = build_classifier(
        checkpoint, task, classes, dropout=config.dropout, attention_dropout=config.attention_dropout
    )
    if config.classifier_pooling == "auto":
        trained_mean = sentence_pooling(checkpoint) == "mean"
        pooling = "mean" if trained_mean and has_bert_style_layers(model) else "cls"
        config = dataclasses.replace(config, classifier_pooling=pooling)
    if config.classifier_pooling == "mean":
        add_mean_pooling_layer(model)
    return model, config


@dataclass
class TrainOutcome:
    """What training leaves on the estimator."""

    history: list[dict]
    best_epoch: int
    kept_epoch: int
    thresholds: np.ndarray | None
    validation_report: EvaluationReport
    calibration: Calibration
    """Temperature(s), conformity scores and the check, fitted on the validation rows (see :func:`calibrate`)."""
    resumed_seconds: float = 0.0
    """Training seconds of the runs this one resumed from."""


def set_fitted(clf: Any, outcome: TrainOutcome, data: FitData, seconds: float, metadata: dict[str, Any]) -> None:
    """Leave a finished training on the classifier (``TextClassifier.fit``, a distilled student): thresholds,
    calibration, history and kept epoch, the validation report and rows, and ``metadata`` for
    :meth:`TextClassifier.save`; ``seconds`` the training took (a resumed run adds what the runs before it
    trained)."""
    clf.thresholds_ = outcome.thresholds
    set_calibration(clf, outcome.calibration)
    clf.history_, clf.best_epoch_, clf.kept_epoch_ = outcome.history, outcome.best_epoch, outcome.kept_epoch
    clf.validation_report_ = outcome.validation_report
    clf.validation_data_ = data.validation  # the rows scored above (not saved): runs.fit_and_save reuses them
    clf.backend_ = "torch"
    clf.validation_metrics_ = outcome.validation_report.metrics
    clf.train_seconds_ = round(seconds + outcome.resumed_seconds, 2)
    clf.data_fingerprint_ = fingerprint(data.train)
    clf.n_train_rows_ = len(data.train)
    clf.metadata_ = metadata


def train(
    model: Any, tokenizer: Any, data: FitData, config: TrainConfig, device: torch.device, run: loop.RunOptions
) -> TrainOutcome:
    """Encode, build the objective and the validation scorer, run the loop; tune multi-label thresholds on the
    kept epoch's validation logits and report on them."""
    task, classes = data.task, data.classes
    train_encoded = encode_texts(tokenizer, data.train, config)
    validation_encoded = encode_texts(tokenizer, data.validation, config)
    targets = encode_labels(data.train.labels, classes, task)
    validation_targets = encode_labels(data.validation.labels, classes, task)
    window_targets = targets if train_encoded.doc_index is None else targets[train_encoded.doc_index]
    scorer = ClassificationScorer(
        task=task, targets=validation_targets, validation=validation_encoded,
        window_aggregation=config.window_aggregation,
        main_metric=resolve_selection_metric(config.selection_metric, task), seed=config.seed,
    )  # fmt: skip
    weights = None
    if config.class_weights == "balanced":
        balanced = balanced_class_weights(targets, task, len(classes))
        weights = torch.as_tensor(balanced, dtype=torch.float32, device=device)
    objective = SequenceObjective(task, window_targets, weights, config.label_smoothing, config.rdrop or 0.0)
    result = loop.fit(
        model, train_encoded, config, objective, device=device,
        validation=Validation(validation_encoded, scorer), run=run,
    )  # fmt: skip
    return outcome_of(result, scorer, data, validation_encoded, validation_targets, config.seed)


def outcome_of(
    result: loop.FitResult, scorer: ClassificationScorer, data: FitData, validation_encoded: Encoded,
    validation_targets: np.ndarray, seed: int,
) -> TrainOutcome:  # fmt: skip
    """What a finished loop leaves: multi-label thresholds tuned on the kept epoch's validation logits (as
    every epoch's were), the calibration fitted on them, and the validation report with both."""
    # The loop already ran the kept epoch on the validation data: reuse its logits (ONNX is never set here).
    validation_logits = scorer.by_example(result.validation_logits)
    thresholds = scorer.thresholds_for(validation_logits)
    calibration = calibrate(validation_logits, validation_targets, data.task, seed)
    report = build_report(
        data.validation, data.validation.labels, validation_encoded.truncated, validation_logits, data.task, data.classes,
        thresholds, Uncertainty(temperature=calibration.temperature),
    )  # fmt: skip
    return TrainOutcome(
        result.history, result.best_epoch, result.kept_epoch, thresholds, report, calibration, result.resumed_seconds
    )


def checkpointing(
    config: TrainConfig, data: FitData, output_dir: str | Path | None, resume_from: str | Path | None, world_size: int
) -> CheckpointOptions | None:
    """Where the loop keeps its checkpoint (``output_dir/checkpoint``, every ``config.checkpoint_every``) and the
    checkpoint it resumes from; None when neither is asked. The fingerprint a checkpoint must match holds every
    option that changes the numbers and hashes of the training and validation data."""
    every = parse_every(config.checkpoint_every)
    if every is None and resume_from is None:
        return None
    if output_dir is None and every is not None:
        raise ConfigError("checkpoint_every needs fit(output_dir=...): the checkpoint is written to OUTPUT/checkpoint")
    folder = Path(output_dir) / CHECKPOINT_DIR if output_dir is not None else locate(resume_from)
    ignored = ("checkpoint_every", "track", "device", "extra")  # where and how a run reports, not what it trains
    values = {k: v for k, v in config.to_dict().items() if k not in ignored}
    values.update(train_data=fingerprint(data.train), validation_data=fingerprint(data.validation),
                  classes=list(data.classes), world_size=world_size)  # fmt: skip
    resume = Path(resume_from) if resume_from is not None else None
    return CheckpointOptions(folder, every, values, resume)
