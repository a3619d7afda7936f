"""The public facade: :class:`TextClassifier`, in the scikit-learn style.

It is the only module that combines data, modeling, training, inference and metrics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertkit import ddp
from bertkit.classification.metrics import (
    MAIN_METRIC,
    METRIC_NAMES,
    classification_metrics,
    confusion_matrix,
    loss_from_logits,
    metric_lower_is_better,
    multilabel_metrics,
    paired_bootstrap_win_share,
    per_class_report,
    regression_metrics,
    tune_thresholds,
)
from bertkit.classification.report import EvaluationReport, confidently_wrong
from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData, from_lists
from bertkit.data.encoding import Encoded, encode
from bertkit.data.labels import encode_labels, normalize_labels, sorted_classes, unseen_labels
from bertkit.devices import inference_dtype, predict_batch_size, resolve_device
from bertkit.engine.forward import (
    aggregate_windows,
    batched_logits,
    logits_to_scores,
    predict_logits,
    uses_type_ids,
)
from bertkit.exceptions import ConfigError, DataError, ModelLoadError, NotFittedError
from bertkit.models import modeling
from bertkit.params import ParamsMixin

Texts = Sequence[str] | Sequence[tuple[str, str]] | TextData


class TextClassifier(ParamsMixin):
    """Fine-tune a BERT-family encoder for text (or text-pair) classification, multi-label or regression.

    Parameters mirror ``bertkit train`` flags (see :class:`bertkit.config.TrainConfig`); ``None`` for
    ``batch_size`` or ``learning_rate`` picks a value from the amount of training data; ``None`` for
    ``predict_batch_size`` (most texts per forward pass at prediction) means 64 on CPU and 1024 on a GPU.

    Fitted attributes: ``classes_`` (labels as given), ``task_``, ``model_``, ``tokenizer_``,
    ``history_`` (one dict per epoch), ``thresholds_`` (multi-label), ``validation_metrics_`` (of the epoch
    kept), ``best_epoch_`` (best validation score) and ``kept_epoch_`` (the weights held; ``keep_epoch``).

    Example::

        clf = TextClassifier(epochs=2).fit(["great film", "dull plot"], ["pos", "neg"])
        clf.predict(["a great plot"])         # array(['pos'], dtype=object)
    """

    def __init__(
        self,
        model: str = "minilm",
        *,
        task: str = "auto",
        epochs: int = 3,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        max_length: int = 128,
        window_stride: int | None = None,
        window_aggregation: str = "mean",
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        classifier_pooling: str = "auto",
        label_smoothing: float = 0.0,
        dropout: float | None = None,
        rdrop: float | None = None,
        grad_accumulation: int = 1,
        max_grad_norm: float = 1.0,
        selection_metric: str = "auto",
        average_weights: float = 0.0,
        keep_epoch: str = "auto",
        early_stopping_patience: int = 0,
        freeze_encoder: bool = False,
        class_weights: str = "none",
        precision: str = "auto",
        seed: int = 42,
        validation_fraction: float = 0.1,
        max_train_rows: int | None = None,
        device: str = "auto",
        cuda_graphs: bool = False,
        predict_batch_size: int | None = None,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.task = task
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.window_stride = window_stride
        self.window_aggregation = window_aggregation
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.classifier_pooling = classifier_pooling
        self.label_smoothing = label_smoothing
        self.dropout = dropout
        self.rdrop = rdrop
        self.grad_accumulation = grad_accumulation
        self.max_grad_norm = max_grad_norm
        self.selection_metric = selection_metric
        self.average_weights = average_weights
        self.keep_epoch = keep_epoch
        self.early_stopping_patience = early_stopping_patience
        self.freeze_encoder = freeze_encoder
        self.class_weights = class_weights
        self.precision = precision
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.max_train_rows = max_train_rows
        self.device = device
        self.cuda_graphs = cuda_graphs
        self.predict_batch_size = predict_batch_size
        self.progress = progress

    # configuration (get_params/set_params come from ParamsMixin) -------------------------------------
    @classmethod
    def from_config(cls, config: TrainConfig, **extra: Any) -> TextClassifier:
        values = {k: v for k, v in config.to_dict().items() if k in cls._param_names()}
        estimator = cls(**values, **extra)
        estimator._notes = dict(config.extra)  # TrainConfig.extra: kept with the model, not a parameter
        return estimator

    def _config(self) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in self.get_params().items() if k in fields}
        return TrainConfig(**values, extra=dict(getattr(self, "_notes", {})))

    # fitting -------------------------------------------------------------------------------------
    def fit(
        self,
        X: Texts,
        y: Sequence[Any] | None = None,
        eval_set: tuple[Texts, Sequence[Any] | None] | TextData | None = None,
        *,
        output_dir: str | Path | None = None,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> TextClassifier:
        """Fine-tune on texts (or ``(text, pair)`` tuples) ``X`` with labels ``y``; returns ``self``.

        ``eval_set`` is the validation data used for per-epoch evaluation, the choice of the epoch kept and
        multi-label thresholds; without it a stratified, seeded share of ``X`` is held out.
        ``output_dir`` receives history.jsonl while training (the model is written by :meth:`save`).
        ``on_epoch`` is called with each epoch's history record (train loss, ``val_*`` metrics).

        Started by ``torchrun`` (``WORLD_SIZE > 1`` in the environment), every process runs ``fit`` on the
        same data: they join one process group, ``batch_size`` is the global batch split among them, and
        only rank 0 writes files (:meth:`save` does nothing elsewhere).
        """
        config = self._config()
        train = _as_data(X, y, "X")
        if train.labels is None:
            raise DataError(f"{train.source.name}: training data needs labels (no label column)")
        task, labels = normalize_labels(train.labels, config.task)
        train.labels = labels
        if config.label_smoothing and task != "classification":
            raise ConfigError(
                f"--label-smoothing applies to single-label classification; {train.source.name} gives a "
                f"{task} task: leave --label-smoothing at 0"
            )
        # Every label of the training file, also one that only the held-out rows or the rows beyond
        # --max-train-rows carry: evaluation data may then use it.
        classes = sorted_classes(train.labels, task) if task != "regression" else []
        if task != "regression" and len(classes) < 2:
            raise DataError(
                f"{train.source.name}: only one label ({classes[0]!r}) in the training data; "
                "classification needs at least two"
            )
        if eval_set is None:
            # Held out before --max-train-rows applies, so that all N rows train; its size follows the rows
            # that train (a capped run on a huge file does not evaluate a tenth of the file every epoch).
            used = min(len(train), config.max_train_rows or len(train))
            n_validation = max(1, int(round(config.validation_fraction * used)))
            train, validation = _hold_out(train, task, n_validation, config.seed)
        else:
            validation = _as_data(*(eval_set if isinstance(eval_set, tuple) else (eval_set, None)), "eval_set")
            validation.labels = self._align_labels(validation, task, classes)
        if config.max_train_rows and config.max_train_rows < len(train):
            keep = np.random.default_rng(config.seed).permutation(len(train))[: config.max_train_rows]
            train = train.subset(np.sort(keep))
        config = config.resolved(len(train), task)

        started = time.perf_counter()
        checkpoint = modeling.resolve_checkpoint(config.model)
        self.tokenizer_ = modeling.load_tokenizer(checkpoint)
        from bertkit.engine import loop as training

        training.seed_everything(config.seed)  # the new head's initial weights are part of the run
        self.model_ = modeling.build_classifier(checkpoint, task, classes, dropout=config.dropout)
        if config.classifier_pooling == "auto":
            trained_mean = modeling.sentence_pooling(checkpoint) == "mean"
            pooling = "mean" if trained_mean and modeling.has_bert_style_layers(self.model_) else "cls"
            config = dataclasses.replace(config, classifier_pooling=pooling)
        if config.classifier_pooling == "mean":
            modeling.add_mean_pooling_layer(self.model_)
        self.task_, self.classes_, self.config_ = task, classes, config
        self.thresholds_ = np.full(len(classes), 0.5) if task == "multi-label" else None
        context, device_name = ddp.setup(config.device)
        self.is_main_process_ = context.is_main
        try:
            self._fit_encoded(train, validation, config, resolve_device(device_name), context, output_dir, on_epoch)
        except BaseException:
            ddp.teardown(context, wait=False)
            raise
        ddp.teardown(context)
        self.train_seconds_ = round(time.perf_counter() - started, 2)
        self.data_fingerprint_ = _fingerprint(train)
        self.n_train_rows_ = len(train)
        self.metadata_ = {}
        return self

    def _fit_encoded(
        self,
        train: TextData,
        validation: TextData,
        config: TrainConfig,
        device,
        context: ddp.Context,
        output_dir: str | Path | None,
        on_epoch: Callable[[dict], None] | None,
    ) -> None:
        from bertkit.engine import loop as training

        task, classes = self.task_, self.classes_

        train_encoded = self._encode(train)
        validation_encoded = self._encode(validation)
        targets = encode_labels(train.labels, classes, task)
        validation_targets = encode_labels(validation.labels, classes, task)
        window_targets = targets if train_encoded.doc_index is None else targets[train_encoded.doc_index]
        main_metric = _selection_metric(config.selection_metric, task)

        def by_example(logits: np.ndarray) -> np.ndarray:
            return aggregate_windows(logits, validation_encoded, config.window_aggregation)

        def win_share(first: np.ndarray, second: np.ndarray) -> float:
            return paired_bootstrap_win_share(
                lambda targets, logits: self._metric(targets, logits, main_metric),
                validation_targets, by_example(first), by_example(second),
                lower_is_better=metric_lower_is_better(main_metric), seed=config.seed,
            )  # fmt: skip

        result = training.fit(
            self.model_, train_encoded, window_targets, config,
            task=task, device=device, validation=validation_encoded,
            evaluate=lambda logits: self._metrics(validation_targets, by_example(logits)),
            main_metric=main_metric,
            class_weights=_balanced_weights(targets, task, len(classes)) if config.class_weights == "balanced" else None,
            progress=self.progress and context.is_main,
            history_path=Path(output_dir) / "history.jsonl" if output_dir else None,
            rank=context.rank, world_size=context.world_size, on_epoch=on_epoch, win_share=win_share,
        )  # fmt: skip
        # The loop already ran the kept epoch on the validation data: reuse its logits (ONNX is never set here).
        validation_logits = by_example(result.validation_logits)
        if task == "multi-label":
            self.thresholds_ = tune_thresholds(validation_targets, logits_to_scores(validation_logits, task))
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.kept_epoch_ = result.kept_epoch
        self.validation_report_ = self._report(validation, validation.labels, validation_encoded, validation_logits)
        self.validation_metrics_ = self.validation_report_.metrics

    def _align_labels(self, data: TextData, task: str, classes: list[Any]) -> list[Any]:
        """Normalize evaluation labels the way training labels were, and refuse unseen ones."""
        if data.labels is None:
            raise DataError(f"{data.source.name}: evaluation data needs labels (no label column)")
        fixed_task = "classification" if task == "classification" else task
        _, labels = normalize_labels(data.labels, fixed_task)
        if task == "classification" and classes and isinstance(classes[0], str):
            labels = [str(v) for v in labels]
        unseen = unseen_labels(labels, classes, task)
        if unseen:
            row, value = unseen[0]
            known = ", ".join(repr(c) for c in classes[:20])
            raise DataError(
                f"{data.source.where(int(data.rows[row]))}: column {data.columns.label!r} has label {value!r}, "
                f"never seen in training; the model knows {known} ({len(unseen)} such labels in all)"
            )
        return labels

    # prediction ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "this TextClassifier is not fitted yet; call fit(...) or TextClassifier.load(folder) first"
            )

    def _encode(self, data: TextData) -> Encoded:
        return encode(self.tokenizer_, data.texts, data.pairs, self.config_.max_length, self.config_.window_stride)

    def _logits(self, encoded: Encoded) -> np.ndarray:
        """One row of logits per example (window logits aggregated when texts were windowed)."""
        return aggregate_windows(self._window_logits(encoded), encoded, self.config_.window_aggregation)

    def _window_logits(self, encoded: Encoded) -> np.ndarray:
        progress = self.progress and len(encoded) > 5000
        onnx_forward = getattr(self, "onnx_forward_", None)
        if onnx_forward is not None:
            with_types = uses_type_ids(self.model_, encoded)
            num_labels = self.model_.config.num_labels
            batch = predict_batch_size(self.predict_batch_size, "cpu")  # ONNX Runtime runs on CPU
            return batched_logits(onnx_forward, encoded, num_labels, with_types, batch, progress)
        device = next(self.model_.parameters()).device
        dtype = inference_dtype(self.config_.precision, device)
        return predict_logits(
            self.model_, encoded, batch_size=self.predict_batch_size, device=device, dtype=dtype, progress=progress,
        )  # fmt: skip

    def decision_scores(self, X: Texts) -> np.ndarray:
        """Probabilities [n, n_classes] (sigmoid per label for multi-label) or values [n] (regression)."""
        self._check_fitted()
        data = _as_data(X, None, "X")
        return logits_to_scores(self._logits(self._encode(data)), self.task_)

    def predict_proba(self, X: Texts) -> np.ndarray:
        """Class probabilities [n, n_classes]; columns follow ``classes_``. Not defined for regression."""
        self._check_fitted()
        if self.task_ == "regression":
            raise ConfigError("predict_proba is not defined for regression; use predict")
        return self.decision_scores(X)

    def predict(self, X: Texts) -> np.ndarray | list[list[Any]]:
        """Labels as given in training (object array), label lists (multi-label) or values (regression)."""
        return self._labels_from_scores(self.decision_scores(X))

    def _labels_from_scores(self, scores: np.ndarray) -> np.ndarray | list[list[Any]]:
        if self.task_ == "regression":
            return scores
        classes = np.empty(len(self.classes_), dtype=object)
        classes[:] = self.classes_
        if self.task_ == "multi-label":
            chosen = scores >= self.thresholds_[None, :]
            return [list(classes[row]) for row in chosen]
        return classes[scores.argmax(axis=1)]

    def score(self, X: Texts, y: Sequence[Any]) -> float:
        """Accuracy (classification), micro F1 (multi-label) or Pearson r (regression)."""
        report = self.evaluate(X, y)
        main = {"classification": "accuracy", "multi-label": "micro_f1", "regression": "pearson"}[self.task_]
        return report.metrics[main]

    def _metrics(self, targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        return {**self._task_metrics(targets, logits), "loss": loss_from_logits(targets, logits, self.task_)}

    def _task_metrics(self, targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        scores = logits_to_scores(logits, self.task_)
        if self.task_ == "regression":
            return regression_metrics(targets, scores)
        if self.task_ == "multi-label":
            return multilabel_metrics(targets, scores, self.thresholds_)
        return classification_metrics(targets, scores)

    def _metric(self, targets: np.ndarray, logits: np.ndarray, name: str) -> float:
        """One metric, without computing the others (the validation bootstrap calls it 1,000 times)."""
        if name == "loss":
            return loss_from_logits(targets, logits, self.task_)
        return self._task_metrics(targets, logits)[name]

    def evaluate(self, X: Texts, y: Sequence[Any] | None = None) -> EvaluationReport:
        """Metrics, per-class scores, confusion matrix and the most confidently wrong examples."""
        self._check_fitted()
        data = _as_data(X, y, "X")
        labels = self._align_labels(data, self.task_, self.classes_)
        encoded = self._encode(data)
        return self._report(data, labels, encoded, self._logits(encoded))

    def _report(self, data: TextData, labels: list[Any], encoded: Encoded, logits: np.ndarray) -> EvaluationReport:
        targets = encode_labels(labels, self.classes_, self.task_)
        scores = logits_to_scores(logits, self.task_)
        report = EvaluationReport(
            task=self.task_,
            metrics=self._metrics(targets, logits),
            n_examples=len(data),
            classes=list(self.classes_),
            skipped_rows=len(data.skipped),
            truncated=encoded.truncated,
            data=Path(data.source.name).name,
        )
        if self.task_ == "regression":
            return report
        if self.task_ == "multi-label":
            hits = (scores >= self.thresholds_[None, :]).astype(int)
            report.per_class = per_class_report(targets.astype(int), hits, self.classes_)
            return report
        ids = scores.argmax(axis=1)
        predicted = self._labels_from_scores(scores)
        where = [data.source.where(int(r)) for r in data.rows]
        report.per_class = per_class_report(targets, ids, self.classes_)
        report.confusion = confusion_matrix(targets, ids, len(self.classes_)).tolist()
        report.confidently_wrong = confidently_wrong(data.texts, where, labels, list(predicted), scores.max(axis=1))
        return report

    def predict_table(self, X: Texts, top_k: int | None = None) -> pd.DataFrame:
        """The input rows with columns added: label, score and, for k <= top_k, top{k}_label/top{k}_score.
        Names already taken in the input get a ``predicted_`` prefix."""
        data = _as_data(X, None, "X")
        scores = self.decision_scores(data)
        frame = data.frame.iloc[data.rows].reset_index(drop=True).copy()

        def name(column: str) -> str:
            return f"predicted_{column}" if column in data.frame.columns else column

        if self.task_ == "regression":
            frame[name("score")] = scores
            return frame
        labels = self._labels_from_scores(scores)
        if self.task_ == "multi-label":
            frame[name("label")] = [",".join(str(v) for v in row) for row in labels]
            frame[name("score")] = [float(s[self.thresholds_ <= s].max(initial=0.0)) for s in scores]
        else:
            frame[name("label")] = list(labels)
            frame[name("score")] = scores.max(axis=1)
        k = min(top_k if top_k is not None else 0, len(self.classes_))
        if k:
            order = np.argsort(-scores, axis=1)[:, :k]
            for rank in range(k):
                frame[name(f"top{rank + 1}_label")] = [self.classes_[i] for i in order[:, rank]]
                frame[name(f"top{rank + 1}_score")] = np.take_along_axis(scores, order[:, rank : rank + 1], 1)[:, 0]
        return frame

    def predict_file(
        self,
        path: str | Path,
        output: str | Path,
        *,
        top_k: int | None = None,
        text_column: str | None = None,
        pair_column: str | None = None,
        encoding: str = "utf-8",
        header: bool | None = None,
        skip_bad_rows: bool = False,
        chunk_rows: int = 50_000,
    ) -> tuple[int, int]:
        """Predict a data file into ``output`` (.csv/.tsv/.jsonl/.parquet), streaming ``chunk_rows`` rows at a
        time so memory stays bounded whatever the file size. Returns (rows written, rows skipped). ``output``
        appears only once every row is written: an error part-way leaves no partial file (and an older
        ``output`` untouched)."""
        from bertkit.data.writers import TableWriter

        self._check_fitted()
        skipped = 0
        with TableWriter(output) as writer:
            for frame, chunk_skipped in self.iter_predict_file(
                path, top_k=top_k, text_column=text_column, pair_column=pair_column, encoding=encoding,
                header=header, skip_bad_rows=skip_bad_rows, chunk_rows=chunk_rows,
            ):  # fmt: skip
                skipped += chunk_skipped
                writer.write(frame)
        return writer.rows, skipped

    def iter_predict_file(
        self,
        path: str | Path,
        *,
        top_k: int | None = None,
        text_column: str | None = None,
        pair_column: str | None = None,
        encoding: str = "utf-8",
        header: bool | None = None,
        skip_bad_rows: bool = False,
        chunk_rows: int = 50_000,
        row_numbers: bool = False,
    ) -> Iterator[tuple[pd.DataFrame, int]]:
        """Prediction tables (see :meth:`predict_table`) of a data file, one per chunk of at most
        ``chunk_rows`` rows, each with the number of rows skipped in it. ``row_numbers`` adds a first column
        ``input_row``: the row's 0-based position among the file's data rows (skipped rows counted)."""
        from bertkit.data.columns import choose_columns
        from bertkit.data.dataset import from_frame
        from bertkit.data.readers import iter_tables

        self._check_fitted()
        columns, start = None, 0
        for table in iter_tables(path, chunk_rows=chunk_rows, encoding=encoding, header=header):
            if columns is None:
                columns = choose_columns(
                    table.frame, table.source.name, text=text_column, pair=pair_column, need_label=False
                )
            data = from_frame(table.frame, table.source, columns, need_label=False, skip_bad_rows=skip_bad_rows)
            frame = self.predict_table(data, top_k)
            if row_numbers:
                frame.insert(0, "input_row", start + data.rows)
            start += len(table.frame)
            yield frame, len(data.skipped)

    # persistence ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write a Hugging Face model folder plus bertkit.json (task, labels, thresholds, config, metrics) and
        train_config.json (the resolved options, for ``bertkit train --config`` to repeat the run).

        After a distributed fit only rank 0 writes; other ranks return the path without writing."""
        self._check_fitted()
        if not getattr(self, "is_main_process_", True):
            return Path(folder)
        metadata = {
            **getattr(self, "metadata_", {}),
            "format": 1,
            "kind": "text-classification",
            "task": self.task_,
            "classes": list(self.classes_),
            "thresholds": None if self.thresholds_ is None else [float(t) for t in self.thresholds_],
            "config": self.config_.to_dict(),
            "validation_metrics": getattr(self, "validation_metrics_", None),
            "best_epoch": getattr(self, "best_epoch_", None),
            "kept_epoch": getattr(self, "kept_epoch_", None),
            "history": getattr(self, "history_", None),
            "train_seconds": getattr(self, "train_seconds_", None),
            "n_train_rows": getattr(self, "n_train_rows_", None),
            "data_fingerprint": getattr(self, "data_fingerprint_", None),
            "versions": modeling.library_versions(),
        }
        folder = modeling.save_folder(folder, self.model_, self.tokenizer_, metadata)
        # Every option of the run, resolved (batch size and learning rate filled in), plus the data options the
        # CLI recorded in metadata_["run_options"]: `bertkit train --config folder/train_config.json` repeats it.
        options = {**self.config_.to_dict(), **getattr(self, "metadata_", {}).get("run_options", {})}
        (folder / "train_config.json").write_text(json.dumps(options, indent=2, default=str) + "\n", encoding="utf-8")
        return folder

    def export_onnx(self, folder: str | Path, quantize: str | None = None) -> Path:
        """Export the fitted model to ``folder/onnx/`` (``quantize="int8"``: dynamic int8 weights) for
        ``load(folder, backend="onnx")``; the graph is checked against torch before it is kept."""
        self._check_fitted()
        from bertkit.export import export_onnx

        return export_onnx(self.model_, self.tokenizer_, folder, quantize=quantize)

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        device: str = "auto",
        backend: str = "torch",
        precision: str | None = None,
        progress: bool = False,
    ) -> TextClassifier:
        """Load a folder written by :meth:`save`, or any Hugging Face sequence-classification model
        (hub id or folder; its config's id2label names the classes).

        ``backend``: ``torch``, or ``onnx`` / ``onnx-int8`` for a model exported with :meth:`export_onnx`
        (ONNX Runtime on CPU). ``precision`` overrides the saved one for prediction with torch: ``auto`` (bf16
        where the hardware runs it natively), ``bf16`` or ``fp32`` (matches plain transformers exactly)."""
        backends = ("torch", "onnx", "onnx-int8")
        if backend not in backends:
            raise ConfigError(f"--backend must be one of {', '.join(backends)} (got {backend!r})")
        checkpoint = modeling.resolve_checkpoint(folder)
        metadata = modeling.read_metadata(checkpoint) or {}
        # Folders saved before "kind" existed are classifiers; plain HF folders say it in their architectures.
        kind = metadata.get("kind", "text-classification") if metadata else (
            modeling.architecture_kind(checkpoint) or "text-classification"
        )  # fmt: skip
        if kind != "text-classification":
            hint = {
                "question-answering": "`bertkit qa evaluate/predict` (QuestionAnswerer.load)",
                "token-classification": "`bertkit tag evaluate/predict` (TokenTagger.load)",
            }.get(kind, "the matching bertkit class")
            raise ModelLoadError(f"{folder}: holds a {kind} model, not a text classifier; use {hint}")
        model = modeling.load_classifier(checkpoint)
        tokenizer = modeling.load_tokenizer(checkpoint)
        if metadata:
            config = TrainConfig.from_dict(metadata["config"])
            task, classes = metadata["task"], metadata["classes"]
        else:
            task, classes = _task_from_hf_config(model.config)
            limit = getattr(tokenizer, "model_max_length", 512)
            config = TrainConfig(model=str(folder), task=task, max_length=min(int(limit), 512))
        config = dataclasses.replace(config, device=device)
        if precision is not None:
            config = dataclasses.replace(config, precision=precision)
        estimator = cls.from_config(config, progress=progress)
        estimator.model_ = model.to(resolve_device(device)).eval()
        estimator.tokenizer_ = tokenizer
        estimator.task_, estimator.classes_, estimator.config_ = task, classes, config
        thresholds = metadata.get("thresholds")
        estimator.thresholds_ = np.asarray(thresholds if thresholds else [0.5] * len(classes)) if (
            task == "multi-label"
        ) else None  # fmt: skip
        estimator.history_ = metadata.get("history") or []
        estimator.validation_metrics_ = metadata.get("validation_metrics")
        estimator.best_epoch_, estimator.kept_epoch_ = metadata.get("best_epoch"), metadata.get("kept_epoch")
        estimator.metadata_ = {k: v for k, v in metadata.items() if k not in ("versions",)}
        if backend != "torch":
            from bertkit.export import OnnxForward, onnx_path

            estimator.onnx_forward_ = OnnxForward(onnx_path(checkpoint, "int8" if backend == "onnx-int8" else None))
        return estimator


def _as_data(X: Texts, y: Sequence[Any] | None, name: str) -> TextData:
    if isinstance(X, TextData):
        if y is not None:
            raise DataError(f"{name}: labels come from the data file; do not pass y as well")
        return X
    return from_lists(X, y, name=name)


def _selection_metric(name: str, task: str) -> str:
    if name == "auto":
        return MAIN_METRIC[task]
    if name not in METRIC_NAMES[task]:
        raise ConfigError(
            f"--selection-metric for {task} must be one of auto, {', '.join(METRIC_NAMES[task])} (got {name!r})"
        )
    return name


def _task_from_hf_config(config) -> tuple[str, list[Any]]:
    if config.problem_type == "regression" or (config.num_labels == 1 and config.problem_type is None):
        return "regression", []
    id2label = {int(k): v for k, v in config.id2label.items()}
    classes = [id2label[i] for i in range(config.num_labels)]
    return ("multi-label" if config.problem_type == "multi_label_classification" else "classification"), classes


def _hold_out(train: TextData, task: str, n_val: int, seed: int) -> tuple[TextData, TextData]:
    """A seeded validation split of ``n_val`` rows, stratified by label when every class has at least two
    examples."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    if len(train) < 4:
        raise DataError(f"{train.source.name}: {len(train)} rows are too few to hold out validation data")
    stratify = None
    if task == "classification":
        counts = pd.Series(train.labels).value_counts()
        if counts.min() >= 2 and n_val >= len(counts):
            stratify = train.labels
    fit_index, val_index = train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)
    return train.subset(np.sort(fit_index)), train.subset(np.sort(val_index))


def _balanced_weights(targets: np.ndarray, task: str, n_classes: int) -> np.ndarray | None:
    if task == "classification":
        counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
        return (len(targets) / (n_classes * np.maximum(counts, 1))).astype(np.float32)
    if task == "multi-label":
        positives = targets.sum(axis=0)
        return ((len(targets) - positives) / np.maximum(positives, 1)).astype(np.float32)
    raise ConfigError("--class-weights balanced applies to classification and multi-label, not regression")


def _fingerprint(data: TextData) -> dict[str, Any]:
    digest = hashlib.sha256()
    for i, text in enumerate(data.texts):
        digest.update(text.encode())
        if data.pairs is not None:
            digest.update(b"\x1f" + data.pairs[i].encode())
        digest.update(b"\x1e" + str(data.labels[i]).encode() + b"\n")
    return {"source": data.source.name, "rows": len(data), "sha256": digest.hexdigest()}
