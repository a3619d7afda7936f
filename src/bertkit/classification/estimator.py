"""The public facade: :class:`TextClassifier`, in the scikit-learn style.

It holds the scikit-learn surface only; the work is done by its neighbours: ``inputs`` (data, labels, encoding),
``fitting`` (model, the training loop; imported by ``fit`` alone, so that prediction with an ONNX graph never
imports torch), ``objective`` (the loss), ``scoring`` (labels and metrics from logits), ``report``,
``tables`` (prediction tables and files) and ``persistence`` (save and load).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.classification import inputs, persistence
from bertkit.classification.inputs import Texts, as_data
from bertkit.classification.logits import window_logits
from bertkit.classification.prediction import PredictionMixin
from bertkit.classification.report import EvaluationReport, build_report
from bertkit.classification.scoring import labels_from_scores
from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData
from bertkit.data.encoding import Encoded
from bertkit.data.labels import label_array
from bertkit.devices import resolve_device
from bertkit.engine.batches import aggregate_windows
from bertkit.exceptions import ConfigError, NotFittedError
from bertkit.flags import in_parameter_terms
from bertkit.models.checkpoints import check_max_length, load_tokenizer, resolve_checkpoint
from bertkit.params import ParamsMixin


class TextClassifier(PredictionMixin, ParamsMixin):
    """Fine-tune a BERT-family encoder for text (or text-pair) classification, multi-label or regression.

    Parameters mirror ``bertkit train`` flags (see :class:`bertkit.config.TrainConfig`); ``None`` for
    ``batch_size`` or ``learning_rate`` picks a value from the amount of training data; ``None`` for
    ``predict_batch_size`` (most texts per forward pass at prediction) means 64 on CPU and 1024 on a GPU.

    Fitted attributes: ``classes_`` (labels as given), ``task_``, ``model_``, ``tokenizer_``,
    ``history_`` (one dict per epoch), ``thresholds_`` (multi-label), ``validation_metrics_`` (of the epoch
    kept), ``best_epoch_`` (best validation score) and ``kept_epoch_`` (the weights held; ``keep_epoch``);
    ``text_pair_``: trained on text pairs (None for a loaded folder that does not record it); prediction
    refuses the other shape of input. ``temperature_`` and ``conformal_scores_``: calibration and prediction
    sets (see :class:`bertkit.classification.prediction.PredictionMixin`; ``use_calibration`` switches it off).

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
        attention_dropout: float | None = None,
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
        validation_overlap: str = "drop",
        max_train_rows: int | None = None,
        device: str = "auto",
        cuda_graphs: bool = False,
        checkpoint_every: str | None = None,
        track: str | None = None,
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
        self.attention_dropout = attention_dropout
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
        self.validation_overlap = validation_overlap
        self.max_train_rows = max_train_rows
        self.device = device
        self.cuda_graphs = cuda_graphs
        self.checkpoint_every = checkpoint_every
        self.track = track  # honoured by bertkit train / runs.fit_and_save (bertkit.tracking), not by fit alone
        self.predict_batch_size = predict_batch_size
        self.progress = progress

    @property
    def classes_(self) -> np.ndarray:
        """The labels as given in training, in ``predict_proba``'s column order, as the array scikit-learn's
        classifiers give (int64, bool or object: :func:`bertkit.data.labels.label_array`)."""
        if "_classes" not in self.__dict__:
            raise AttributeError("classes_")  # not fitted: hasattr says False, as scikit-learn expects
        return label_array(self._classes)

    @classes_.setter
    def classes_(self, value: Sequence[Any]) -> None:
        self._classes = list(value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a pickle from before classes_ became a property keeps the labels under that name
        if "classes_" in state:
            state["_classes"] = list(state.pop("classes_"))
        self.__dict__.update(state)

    # configuration (get_params/set_params come from ParamsMixin) -------------------------------------
    @property
    def _estimator_type(self) -> str:  # type: ignore[override]  # what scikit-learn takes it for: the task's kind
        return "regressor" if self.task == "regression" else "classifier"

    @classmethod
    def from_config(cls, config: TrainConfig, **extra: Any) -> TextClassifier:
        values = {k: v for k, v in config.to_dict().items() if k in cls._param_names()}
        estimator = cls(**values, **extra)
        estimator._notes = dict(config.extra)  # TrainConfig.extra: kept with the model, not a parameter
        return estimator

    def _config(self) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in self.get_params().items() if k in fields}
        try:
            return TrainConfig(**values, extra=dict(getattr(self, "_notes", {})))
        except ConfigError as exc:  # said to the caller in parameter names: epochs, not --epochs
            raise ConfigError(in_parameter_terms(str(exc), TrainConfig)) from None

    # fitting -------------------------------------------------------------------------------------
    def fit(
        self,
        X: Texts,
        y: Sequence[Any] | None = None,
        eval_set: tuple[Texts, Sequence[Any] | None] | TextData | None = None,
        *,
        output_dir: str | Path | None = None,
        on_epoch: Callable[[dict], None] | None = None,
        resume_from: str | Path | None = None,
    ) -> TextClassifier:
        """Fine-tune on texts (or ``(text, pair)`` tuples) ``X`` with labels ``y``; returns ``self``.

        ``eval_set`` is the validation data used for per-epoch evaluation, the choice of the epoch kept and
        multi-label thresholds; without it a stratified, seeded share of ``X`` is held out.
        ``output_dir`` receives history.jsonl while training (the model is written by :meth:`save`).
        ``on_epoch`` is called with each epoch's history record (train loss, ``val_*`` metrics).
        ``resume_from``: continue from the checkpoint in that folder (``output_dir/checkpoint`` of an interrupted
        run with ``checkpoint_every``; the same options and data) to the weights of an uninterrupted run.

        Started by ``torchrun`` (``WORLD_SIZE > 1`` in the environment), every process runs ``fit`` on the
        same data: they join one process group, ``batch_size`` is the global batch split among them, and
        only rank 0 writes files (:meth:`save` does nothing elsewhere).
        """
        from bertkit import ddp  # torch: imported by what trains, never by a prediction with an ONNX graph
        from bertkit.classification import fitting
        from bertkit.engine.loop import RunOptions, seed_everything

        config = self._config()
        # The model must exist and hold max_length tokens before the data is read or anything is written.
        checkpoint = resolve_checkpoint(config.model)
        check_max_length(config.model, checkpoint, config.max_length)
        data = inputs.prepare_data(X, y, eval_set, config)
        config = config.resolved(len(data.train), data.task)
        if ddp.is_main_process():
            inputs.tell(data.all_notes, progress=self.progress)

        started = time.perf_counter()
        self.tokenizer_ = load_tokenizer(checkpoint)
        # window_stride None: windows when many training texts are long (no random draw, same encoding else)
        config, long_texts = inputs.resolve_long_texts(
            self.tokenizer_, data.train, config, announce=self.progress and ddp.is_main_process()
        )
        seed_everything(config.seed)  # the new head's initial weights are part of the run
        self.__dict__.pop("onnx_forward_", None)  # a graph loaded with the old weights must not predict for the new
        self.model_, config = fitting.build_model(checkpoint, data.task, data.classes, config)
        self.task_, self.classes_, self.config_ = data.task, data.classes, config
        self.text_pair_ = data.train.pairs is not None
        self.thresholds_ = np.full(len(data.classes), 0.5) if data.task == "multi-label" else None
        context, device_name = ddp.setup(config.device)
        self.is_main_process_ = context.is_main
        run = RunOptions(
            progress=self.progress and context.is_main,
            history_path=Path(output_dir) / "history.jsonl" if output_dir else None,
            rank=context.rank, world_size=context.world_size, on_epoch=on_epoch,
            checkpoint=fitting.checkpointing(config, data, output_dir, resume_from, context.world_size),
        )  # fmt: skip
        try:
            outcome = fitting.train(self.model_, self.tokenizer_, data, config, resolve_device(device_name), run)
        except BaseException:
            ddp.teardown(context, wait=False)
            raise
        ddp.teardown(context)
        overlap = data.overlap.metadata() if data.overlap is not None else {}
        metadata = {**long_texts.metadata(), **overlap}  # long_share, truncated_share, validation_overlap
        fitting.set_fitted(self, outcome, data, time.perf_counter() - started, metadata)
        return self

    # prediction ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "this TextClassifier is not fitted yet; call fit(...) or TextClassifier.load(folder) first"
            )

    def _encode(self, data: TextData) -> Encoded:
        inputs.check_input_shape(getattr(self, "text_pair_", None), data)
        return inputs.encode_texts(self.tokenizer_, data, self.config_)

    def _logits(self, encoded: Encoded) -> np.ndarray:
        """One row of logits per example (window logits aggregated when texts were windowed)."""
        return aggregate_windows(self._window_logits(encoded), encoded, self.config_.window_aggregation)

    def _window_logits(self, encoded: Encoded) -> np.ndarray:
        return window_logits(
            self.model_, encoded, onnx_forward=getattr(self, "onnx_forward_", None), task=self.task_,
            precision=self.config_.precision, batch_size=self.predict_batch_size,
            progress=self.progress and len(encoded) > 5000,
        )  # fmt: skip

    @property
    def packed_forward_(self) -> bool:
        """Whether torch prediction runs the packed forward (:mod:`bertkit.models.packed`: BERT, RoBERTa,
        ELECTRA, DistilBERT, ALBERT, MPNet, DeBERTa-v2/v3, ModernBERT classifiers), which does no work on
        padding; the service sizes its forward batches by it."""
        from bertkit.models.packed import packed_classifier

        self._check_fitted()
        return packed_classifier(self.model_) is not None

    def decision_scores(self, X: Texts) -> np.ndarray:
        """Probabilities [n, n_classes] (sigmoid per label for multi-label) or values [n] (regression);
        probabilities are calibrated by the temperature fitted in training unless ``use_calibration`` is False."""
        return self._to_scores(self._example_logits(X))

    def _example_logits(self, X: Texts) -> np.ndarray:
        """Raw logits [n, labels], one row per example of ``X`` (windows aggregated), before calibration."""
        return self._logits_and_truncated(X)[0]

    def _logits_and_truncated(self, X: Texts) -> tuple[np.ndarray, int]:
        """:meth:`_example_logits` and how many of the examples were truncated."""
        self._check_fitted()
        encoded = self._encode(as_data(X, None, "X"))
        return self._logits(encoded), encoded.truncated

    def predict_proba(self, X: Texts) -> np.ndarray:
        """Class probabilities [n, n_classes]; columns follow ``classes_``. Not defined for regression."""
        self._check_fitted()
        if self.task_ == "regression":
            raise ConfigError("predict_proba is not defined for regression; use predict")
        return self.decision_scores(X)

    def predict(self, X: Texts) -> np.ndarray | list[list[Any]]:
        """Labels as given in training, label lists (multi-label) or values (regression). The array has
        ``classes_``'s dtype (int64, float64 or bool where the labels all are, else object), as scikit-learn's
        metrics expect."""
        labels = labels_from_scores(self.decision_scores(X), self.task_, self._classes, self.score_thresholds_)
        if self.task_ != "classification":
            return labels
        return labels.astype(self.classes_.dtype)

    def score(self, X: Texts, y: Sequence[Any]) -> float:
        """Accuracy (classification), micro F1 (multi-label) or Pearson r (regression)."""
        report = self.evaluate(X, y)
        main = {"classification": "accuracy", "multi-label": "micro_f1", "regression": "pearson"}[self.task_]
        return report.metrics[main]

    def evaluate(
        self, X: Texts, y: Sequence[Any] | None = None, *, skip_unseen_labels: bool = False,
        coverage: float | None = None, abstain_below: float | None = None,
    ) -> EvaluationReport:  # fmt: skip
        """Metrics (with ``ece`` and ``brier``), per-class scores, confusion matrix and the most confidently wrong
        examples.

        Rows with a label the model never saw in training are scored as errors and counted in the report's
        ``unseen_labels``; ``skip_unseen_labels=True`` (``--skip-bad-rows``) leaves them out, counted as skipped.
        Single-label: ``coverage`` adds ``set_coverage`` and ``mean_set_size`` of the prediction sets
        (:meth:`predict_set`); ``abstain_below`` adds ``abstained``, ``coverage_rate`` and ``answered_accuracy``."""
        return self._evaluate(
            X, y, skip_unseen_labels=skip_unseen_labels, coverage=coverage, abstain_below=abstain_below
        )

    def _evaluate(
        self, X: Texts, y: Sequence[Any] | None = None, *, skip_unseen_labels: bool = False,
        coverage: float | None = None, abstain_below: float | None = None, logits: np.ndarray | None = None,
        truncated: int | None = None,
    ) -> EvaluationReport:  # fmt: skip
        """:meth:`evaluate`; ``logits`` (from :meth:`_logits_and_truncated`, one row per example of ``X`` in its
        order) and ``truncated`` when they are already computed: the backend choice scores the rows it has timed
        without running or tokenizing them again (fast_backend.py)."""
        self._check_fitted()
        given = as_data(X, y, "X")
        data, labels, unseen = inputs.evaluation_labels(
            given, self.task_, self._classes, skip_unseen=skip_unseen_labels
        )
        uncertainty = self._uncertainty(coverage, abstain_below)  # checked before the forward pass
        if logits is None:
            encoded = self._encode(data)
            logits, truncated = self._logits(encoded), encoded.truncated
        elif len(logits) != len(data):
            raise ValueError(f"{len(logits)} rows of logits for {len(data)} examples")
        elif truncated is None:
            truncated = self._encode(data).truncated
        report = build_report(data, labels, truncated, logits, self.task_, self._classes, self.thresholds_, uncertainty)
        if unseen and skip_unseen_labels:  # the rows are gone from data: the report says what left them out
            report.unseen_labels, report.unseen_skipped = unseen, True
            report.unseen_rows = len(data.skipped) - len(given.skipped)
        return report

    # persistence ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write a Hugging Face model folder plus bertkit.json (task, labels, thresholds, config, metrics) and
        train_config.json (the resolved options, for ``bertkit train --config`` to repeat the run).

        After a distributed fit only rank 0 writes; other ranks return the path without writing."""
        self._check_fitted()
        if not getattr(self, "is_main_process_", True):
            return Path(folder)
        return persistence.save_classifier(self, folder)

    def export_onnx(self, folder: str | Path, quantize: str | None = None) -> Path:
        """Export the fitted model to ``folder/onnx/`` (``quantize="int8"``: dynamic int8 weights) for
        ``load(folder, backend="onnx")``, ``folder`` being where :meth:`save` wrote it (its config, tokenizer and
        weights go with the graph); checked against torch before it is kept. After a distributed fit only rank 0
        writes."""
        self._check_fitted()
        from bertkit.export import export_onnx

        main = getattr(self, "is_main_process_", True)
        return export_onnx(self.model_, self.tokenizer_, folder, quantize=quantize, write=main)

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        device: str = "auto",
        backend: str = "auto",
        precision: str | None = None,
        progress: bool = False,
        calibration: bool = True,
    ) -> TextClassifier:
        """Load a folder written by :meth:`save`, or any Hugging Face sequence-classification model
        (hub id or folder; its config's id2label names the classes).

        ``backend``: ``auto`` (the default ``bertkit train`` chose and recorded: the fastest backend within 0.5
        point of torch on the validation rows, when its graph is there and the model runs on the CPU; else
        torch), ``torch``, or ``onnx`` / ``onnx-int8`` for a model exported with :meth:`export_onnx` (ONNX
        Runtime on CPU); ``backend_`` says which one predicts. ``precision`` overrides the saved one for prediction with torch: ``auto`` (bf16
        where the hardware runs it natively), ``bf16`` or ``fp32`` (matches plain transformers exactly).
        ``calibration=False``: probabilities without the saved temperature (sets ``use_calibration``)."""
        loaded = persistence.load_classifier(folder, device=device, backend=backend, precision=precision)
        estimator = cls.from_config(loaded.config, progress=progress)
        loaded.restore(estimator)
        estimator.use_calibration = calibration
        return estimator
