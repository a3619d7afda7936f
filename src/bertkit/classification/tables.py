"""Prediction tables: the input rows with label and score columns added, for in-memory data and for data
files streamed chunk by chunk (memory bounded whatever the file size), written atomically."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, TypedDict

import numpy as np
import pandas as pd

from bertkit.classification.scoring import labels_from_scores
from bertkit.data.dataset import TextData
from bertkit.exceptions import ConfigError, DataError


class FileOptions(TypedDict, total=False):
    """How a data file is read and predicted: the keyword options that :meth:`TextClassifier.predict_file`,
    :meth:`TextClassifier.iter_predict_file` and :func:`bertkit.predict_ray` pass on to
    :func:`iter_predict_file`, which gives their defaults.

    ``top_k``: add top{k}_label/top{k}_score for k <= top_k (default None: none); ``text_column`` and
    ``pair_column``: the columns (default: found from the header); ``encoding`` (``utf-8``); ``header`` (None:
    detected); ``skip_bad_rows`` (False: a bad row is an error); ``chunk_rows``: rows read and predicted at a
    time (50,000); ``delimiter`` (a ``--delimiter`` spelling; None: the one
    the file's suffix implies)."""

    top_k: int | None
    text_column: str | None
    pair_column: str | None
    encoding: str
    header: bool | None
    skip_bad_rows: bool
    chunk_rows: int
    delimiter: str | None


class TablePredictor(Protocol):
    """What the file functions need of a fitted classifier (``TextClassifier`` has both methods)."""

    def predict_table(self, X: TextData, top_k: int | None = None) -> pd.DataFrame:
        """The prediction table of ``X`` (see :func:`prediction_table`)."""
        ...

    def iter_predict_file(self, path: str | Path, **options: Any) -> Iterator[tuple[pd.DataFrame, int]]:
        """Prediction tables of a data file, chunk by chunk (see :func:`iter_predict_file`)."""
        ...


def free_name(column: str, taken: Any) -> str:
    """The name an added column gets beside the input's ``taken`` columns: ``column``, else ``predicted_column``,
    else ``predicted_column_2``, ...: an input column (a previous prediction's) is never overwritten."""
    if column not in taken:
        return column
    name, n = f"predicted_{column}", 2
    while name in taken:
        name, n = f"predicted_{column}_{n}", n + 1
    return name


def prediction_table(
    data: TextData,
    scores: np.ndarray,
    task: str,
    classes: list[Any],
    thresholds: np.ndarray | None,
    top_k: int | None = None,
) -> pd.DataFrame:
    """The rows of ``data`` with columns added: label, score and, for k <= top_k, top{k}_label/top{k}_score
    (``scores`` as :meth:`TextClassifier.decision_scores` gives them). Names already taken in the input get a
    ``predicted_`` prefix (:func:`free_name`)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k (--top-k) must be a positive integer (got {top_k!r})")
    if top_k is not None and task == "regression":
        raise ConfigError("top_k (--top-k) ranks labels, and a regression model has none; leave it out")
    frame = data.frame.iloc[data.rows].reset_index(drop=True).copy()

    def name(column: str) -> str:
        return free_name(column, data.frame.columns)

    if task == "regression":
        frame[name("score")] = scores
        return frame
    labels = labels_from_scores(scores, task, classes, thresholds)
    if task == "multi-label":
        frame[name("label")] = [",".join(str(v) for v in row) for row in labels]
        frame[name("score")] = [float(s[thresholds <= s].max(initial=0.0)) for s in scores]
    else:
        frame[name("label")] = list(labels)
        frame[name("score")] = scores.max(axis=1)
    k = min(top_k if top_k is not None else 0, len(classes))
    if k:
        order = np.argsort(-scores, axis=1)[:, :k]
        for rank in range(k):
            frame[name(f"top{rank + 1}_label")] = [classes[i] for i in order[:, rank]]
            frame[name(f"top{rank + 1}_score")] = np.take_along_axis(scores, order[:, rank : rank + 1], 1)[:, 0]
    return frame


def iter_predict_file(
    classifier: TablePredictor,
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
    delimiter: str | None = None,
) -> Iterator[tuple[pd.DataFrame, int]]:
    """Prediction tables of a data file, one per chunk of at most ``chunk_rows`` rows, each with the number of
    rows skipped in it (see :meth:`TextClassifier.iter_predict_file`)."""
    from bertkit.data.dataset import from_frame, table_columns
    from bertkit.data.readers import iter_tables

    columns, start, last = None, 0, None
    pending = 0  # rows skipped in chunks that had no usable row: counted with the next chunk that has one
    for table in iter_tables(path, chunk_rows=chunk_rows, encoding=encoding, header=header, delimiter=delimiter):
        if columns is None:
            columns = table_columns(table, text_column, pair_column, need_label=False)
        data = from_frame(table.frame, table.source, columns, need_label=False, skip_bad_rows=skip_bad_rows,
                          allow_empty=skip_bad_rows)  # fmt: skip
        first_row, start = start, start + len(table.frame)
        if not len(data.texts):  # every row of this chunk skipped (--skip-bad-rows): the others still count
            pending += len(data.skipped)
            continue
        frame = classifier.predict_table(data, top_k)
        if row_numbers:
            frame.insert(0, "input_row", first_row + data.rows)
        # an empty copy taken now: the caller may change the frame it gets (Ray adds input_file) or read its attrs
        last = frame.iloc[0:0].copy()
        last.attrs.clear()
        yield frame, len(data.skipped) + pending
        pending = 0
    if columns is None:  # no chunk at all: never "0 predictions" with the columns unchecked and no output written
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    if last is None:
        raise DataError(f"{path}: no usable rows ({pending} skipped as empty)")
    if pending:  # the last chunks had no usable row: their count rides on a chunk of no rows
        yield last, pending


def predict_file(classifier: TablePredictor, path: str | Path, output: str | Path, **options: Any) -> tuple[int, int]:
    """Stream the classifier's prediction tables of ``path`` into ``output``, which appears only once every row is written.
    Returns (rows written, rows skipped)."""
    from bertkit.data.writers import TableWriter, check_output_file

    check_output_file(Path(output), path)  # not the input, not a folder: refused before any row is predicted
    skipped = 0
    with TableWriter(output) as writer:
        for frame, chunk_skipped in classifier.iter_predict_file(path, **options):
            skipped += chunk_skipped
            writer.write(frame)
    return writer.rows, skipped
