"""The prediction side of :class:`bertkit.TextClassifier` beyond ``predict``, as a mixin it inherits: which
probabilities it gives (calibrated or not), the thresholds on their scale, split-conformal prediction sets
(:mod:`bertkit.classification.conformal`), abstention, and prediction tables and files with those columns."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Unpack

import numpy as np
import pandas as pd

from bertkit.classification import conformal, inputs, tables
from bertkit.classification.calibration import (
    Temperature,
    calibrate,
    calibrated_thresholds,
    scale_logits,
    set_calibration,
)
from bertkit.classification.inputs import as_data
from bertkit.classification.report import Uncertainty
from bertkit.classification.tables import FileOptions
from bertkit.data.labels import encode_labels
from bertkit.engine.batches import logits_to_scores
from bertkit.exceptions import ConfigError


class JsonList(list):
    """A list that prints as JSON: a ``prediction_set`` cell is a JSON list in CSV/TSV output (pandas writes
    ``str`` of the cell) and stays a list in JSONL and Parquet."""

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False, default=str)

    __repr__ = __str__


class PredictionMixin:
    """Calibrated probabilities, prediction sets, abstention and prediction tables for a fitted classifier
    (the host class gives ``task_``, ``_classes`` (the labels, a list), ``thresholds_``, ``decision_scores`` and ``_check_fitted``)."""

    use_calibration: bool = True
    """Apply the temperature(s) fitted at training (bertkit.json ``calibration``) to the probabilities; False
    gives the model's own softmax/sigmoid (``TextClassifier.load(folder, calibration=False)``,
    ``--no-calibration``). A model saved without a temperature is never scaled."""
    temperature_: Temperature | None = None
    """Fitted temperature: one float (single-label), one per label (multi-label), None (regression, or a
    folder saved without one)."""
    conformal_scores_: np.ndarray | None = None
    """Sorted conformity scores ``1 - p(true label)`` of the validation rows (single-label classification)."""

    def calibrate(self, X: Any, y: Any = None) -> Any:
        """Refit the temperature(s), and for single-label classification the conformity scores of
        :meth:`predict_set`, on labelled rows ``X``, ``y`` that did not train the model (``fit`` does this on its
        validation rows); returns ``self``. For a model changed after training, or one loaded from a folder
        without calibration (a plain Hugging Face model). Labels must be ones the model knows."""
        self._check_fitted()
        data = as_data(X, y, "X")
        data.labels = inputs.align_labels(data, self.task_, self._classes)
        targets = encode_labels(data.labels, self._classes, self.task_)
        logits = self._logits(self._encode(data))
        set_calibration(self, calibrate(logits, targets, self.task_, self.config_.seed))
        return self

    def _temperature(self) -> Temperature | None:
        return self.temperature_ if self.use_calibration else None

    def _to_scores(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities (calibrated unless switched off) or regression values of one row of logits each."""
        return logits_to_scores(scale_logits(logits, self._temperature()), self.task_)

    @property
    def score_thresholds_(self) -> np.ndarray | None:
        """Multi-label decision thresholds on the scale of :meth:`predict_proba`: ``thresholds_`` (tuned before
        calibration, as saved) moved through the calibration, so the labels chosen are the same either way."""
        if self.thresholds_ is None:
            return None
        return calibrated_thresholds(self.thresholds_, self._temperature())

    def conformal_threshold(self, coverage: float) -> float:
        """The split-conformal threshold ``q`` for ``coverage``: a label is in a text's set when
        ``1 - p(label) <= q`` (``inf``: every label, when the validation rows are too few for that coverage)."""
        self._check_fitted()
        coverage = conformal.check_coverage(coverage)
        conformal.check_task(self.task_, "coverage (--coverage: prediction sets)")
        if self.conformal_scores_ is None:
            raise ConfigError(
                "this model has no conformity scores (saved before prediction sets existed, or a plain Hugging Face "
                "folder); retrain it with `bertkit train` to use --coverage"
            )
        unscaled = self.temperature_ is None or bool(np.all(np.asarray(self.temperature_) == 1.0))
        if not self.use_calibration and not unscaled:  # with T = 1 both probabilities are the same
            raise ConfigError(
                "--coverage needs the calibrated probabilities its scores were computed on; leave out "
                "--no-calibration (calibration=False)"
            )
        return conformal.conformal_threshold(self.conformal_scores_, coverage)

    def predict_set(self, X: Any, coverage: float = 0.9) -> list[list[Any]]:
        """Split-conformal prediction sets (LAC score): for each text, the labels (as given in training, most
        probable first) whose calibrated probability ``p`` has ``1 - p`` within the conformal threshold.

        Guarantee: if the validation rows of the training run and the new rows are exchangeable (drawn from the
        same distribution), the true label is in the set with probability at least ``coverage`` (on average
        over rows and validation draws), and below ``coverage + 1/(n + 1)`` when the ``n`` scores have no ties.
        A set may be empty; it holds every label when ``n`` is too small for ``coverage``. Single-label
        classification only; ``coverage`` strictly between 0 and 1."""
        threshold = self.conformal_threshold(coverage)
        return conformal.prediction_sets(self.decision_scores(X), threshold, self._classes)

    def check_set_options(self, coverage: float | None = None, abstain_below: float | None = None) -> None:
        """ConfigError unless the model can honour ``coverage`` and ``abstain_below`` (single-label, in range,
        conformity scores saved, calibration on for sets): the CLI checks before it reads any data."""
        self._check_fitted()
        self._uncertainty(coverage, abstain_below)

    def _uncertainty(self, coverage: float | None, abstain_below: float | None) -> Uncertainty:
        """What :meth:`evaluate` adds: the temperature applied, the sets of ``coverage``, the abstentions."""
        threshold = None if coverage is None else self.conformal_threshold(coverage)
        if abstain_below is not None:
            abstain_below = conformal.check_abstain_below(abstain_below)
            conformal.check_task(self.task_, "abstain_below (--abstain-below)")
        return Uncertainty(self._temperature(), coverage, threshold, abstain_below)

    def _add_set_columns(
        self, frame: pd.DataFrame, scores: np.ndarray, label_column: str, coverage: float | None,
        abstain_below: float | None,
    ) -> pd.DataFrame:  # fmt: skip
        """A prediction table with ``prediction_set`` (``coverage``) and the label of rows whose top probability
        is below ``abstain_below`` missing (``pd.NA`` in a column of the labels' nullable type: Int64, Float64,
        boolean or string; None for other labels); ``frame.attrs["abstained"]`` counts those rows."""
        if coverage is not None:
            sets = conformal.prediction_sets(scores, self.conformal_threshold(coverage), self._classes)
            frame[tables.free_name("prediction_set", frame.columns)] = [JsonList(s) for s in sets]
        if abstain_below is not None:
            below = conformal.check_abstain_below(abstain_below)
            conformal.check_task(self.task_, "abstain_below (--abstain-below)")
            withheld = scores.max(axis=1) < below
            # the labels' own nullable type: a chunk whose rows all abstain still has one (Parquet's schema)
            labels = frame[label_column].astype(_nullable_dtype(self._classes))
            labels[withheld] = None
            frame[label_column] = labels
            frame.attrs["abstained"] = int(withheld.sum())
        return frame

    def predict_table(
        self, X: Any, top_k: int | None = None, *, coverage: float | None = None, abstain_below: float | None = None
    ) -> pd.DataFrame:
        """The input rows with columns added: label, score and, for k <= top_k, top{k}_label/top{k}_score.
        Names already taken in the input get a ``predicted_`` prefix. Single-label classification: ``coverage``
        adds ``prediction_set`` (see :meth:`predict_set`; a JSON list in CSV); ``abstain_below`` leaves the label
        missing where the top probability is below it (``pd.NA``, the column keeping the labels' type; test with
        ``pd.isna``), and ``frame.attrs["abstained"]`` counts those rows."""
        data = as_data(X, None, "X")
        scores = self.decision_scores(data)
        frame = tables.prediction_table(data, scores, self.task_, self._classes, self.score_thresholds_, top_k)
        label = tables.free_name("label", data.frame.columns)
        return self._add_set_columns(frame, scores, label, coverage, abstain_below)

    def predict_file(
        self,
        path: str | Path,
        output: str | Path,
        *,
        coverage: float | None = None,
        abstain_below: float | None = None,
        on_chunk: Callable[[pd.DataFrame], None] | None = None,
        **options: Unpack[FileOptions],
    ) -> tuple[int, int]:
        """Predict a data file into ``output`` (.csv/.tsv/.jsonl/.parquet), streaming ``chunk_rows`` rows at a
        time so memory stays bounded whatever the file size. Returns (rows written, rows skipped). ``output``
        appears only once every row is written: an error part-way leaves no partial file (and an older
        ``output`` untouched). ``coverage``, ``abstain_below``: as in :meth:`predict_table`; ``on_chunk`` is
        called with each table before it is written; ``options``: how the file is read
        (:class:`~bertkit.classification.tables.FileOptions`: ``top_k``, ``text_column``, ``pair_column``,
        ``encoding``, ``header``, ``skip_bad_rows``, ``chunk_rows``, ``delimiter``)."""
        self._check_fitted()
        return tables.predict_file(
            self, path, output, coverage=coverage, abstain_below=abstain_below, on_chunk=on_chunk, **options
        )

    def iter_predict_file(
        self,
        path: str | Path,
        *,
        row_numbers: bool = False,
        coverage: float | None = None,
        abstain_below: float | None = None,
        on_chunk: Callable[[pd.DataFrame], None] | None = None,
        **options: Unpack[FileOptions],
    ) -> Iterator[tuple[pd.DataFrame, int]]:
        """Prediction tables (see :meth:`predict_table`) of a data file, one per chunk of at most
        ``chunk_rows`` rows, each with the number of rows skipped in it. ``row_numbers`` adds a first column
        ``input_row``: the row's 0-based position among the file's data rows (skipped rows counted);
        ``options``: as in :meth:`predict_file`."""
        self._check_fitted()  # a generator: checked when iteration starts, as every chunk is predicted lazily
        self.check_set_options(coverage, abstain_below)  # wrong options fail before the first chunk is read
        # tables calls predict_table(data, top_k): the set and abstention options ride along with it.
        maker = SimpleNamespace(
            predict_table=partial(self.predict_table, coverage=coverage, abstain_below=abstain_below)
        )
        for frame, skipped in tables.iter_predict_file(maker, path, row_numbers=row_numbers, **options):
            if on_chunk is not None:
                on_chunk(frame)
            yield frame, skipped


def _nullable_dtype(classes: list[Any]) -> str:
    """The pandas dtype that holds ``classes`` and missing values: string, Int64, Float64, boolean, else object."""
    if classes and all(isinstance(c, bool) for c in classes):
        return "boolean"
    if classes and all(isinstance(c, int) for c in classes):
        return "Int64"
    if classes and all(isinstance(c, float) for c in classes):
        return "Float64"
    if classes and all(isinstance(c, str) for c in classes):
        return "string"
    return "object"
