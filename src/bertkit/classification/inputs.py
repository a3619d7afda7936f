"""The data side of a classifier's fit, evaluation and prediction, without torch: inputs as
:class:`~bertkit.data.dataset.TextData`, labels normalized and checked against the training classes, the
hold-out split, the --max-train-rows cap, the encoding at the run's max_length and its long-text decision, and the
data's fingerprint. :mod:`bertkit.classification.fitting` runs training on what it prepares; prediction with an
ONNX graph needs nothing else, so it never imports torch."""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData, from_lists
from bertkit.data.encoding import Encoded, count_longer, encode
from bertkit.data.labels import class_order, normalize_labels, sorted_classes, unseen_labels
from bertkit.data.overlap import Overlap, resolve_overlap
from bertkit.exceptions import BertkitWarning, ConfigError, DataError

Texts = Sequence[str] | Sequence[tuple[str, str]] | TextData
"""What the estimator takes as X: texts, (text, pair) tuples, or a data file read with labels."""


def as_data(X: Texts, y: Sequence[Any] | None, name: str) -> TextData:
    """``X`` (and ``y``) as :class:`TextData`; a TextData brings its own labels."""
    if isinstance(X, TextData):
        if y is not None:
            raise DataError(f"{name}: labels come from the data file; do not pass y as well")
        return X
    return from_lists(X, y, name=name)


@dataclass
class FitData:
    """Training and validation rows with labels normalized for ``task``; ``classes`` as given in training."""

    train: TextData
    validation: TextData
    task: str
    classes: list[Any]
    overlap: Overlap | None = None
    """Training rows that were also validation rows, and what was done with them (:mod:`bertkit.data.overlap`)."""
    notes: list[str] = dataclasses.field(default_factory=list)
    """Lines a run says about how the data was read (whole-number decimals read as regression scores)."""

    @property
    def all_notes(self) -> list[str]:
        """``notes`` and the overlap's line: what a fit says of its data (:func:`tell`)."""
        return [*self.notes, *([self.overlap.note] if self.overlap is not None and self.overlap.note else [])]


def prepare_data(
    X: Texts, y: Sequence[Any] | None, eval_set: tuple[Texts, Sequence[Any] | None] | TextData | None,
    config: TrainConfig,
) -> FitData:  # fmt: skip
    """Read the training data and its labels; hold out validation rows (or read ``eval_set`` and align its
    labels with the training classes); drop training rows identical to a validation row (or keep them, or refuse:
    ``config.validation_overlap``); cap the training rows at ``config.max_train_rows``."""
    train = as_data(X, y, "X")
    if train.labels is None:
        raise DataError(f"{train.source.name}: training data needs labels (no label column)")
    task, labels = normalize_labels(train.labels, config.task, as_written=train.in_memory, where=train.where)
    train.labels = labels
    if config.label_smoothing and task != "classification":
        raise ConfigError(
            f"--label-smoothing applies to single-label classification; {train.source.name} gives a "
            f"{task} task: leave --label-smoothing at 0"
        )
    # Every label of the training file, also one that only the held-out rows or the rows beyond
    # --max-train-rows carry: evaluation data may then use it.
    present = sorted_classes(train.labels, task) if task != "regression" else []
    classes = class_order(train.labels, task, train.label_names) if task != "regression" else []
    if task != "regression" and len(present) < 2:
        found = f"only one label ({present[0]!r})" if present else "no label"
        raise DataError(
            f"{train.source.name}: {found} in the training data; {'multi-label ' if task == 'multi-label' else ''}"
            "classification needs at least two"
        )
    if eval_set is None:
        _, n_validation = planned_rows(len(train), config, held_out=True)
        train, validation = hold_out(train, task, n_validation, config.seed)
    else:
        validation = as_data(*_eval_pair(eval_set), "eval_set")
        if (validation.pairs is None) != (train.pairs is None):
            shapes = ("single texts", "text pairs") if validation.pairs is None else ("text pairs", "single texts")
            raise DataError(
                f"{validation.source.name}: the training data are {shapes[1]} and the validation data {shapes[0]}; "
                "give both in the same shape"
            )
        validation.labels = align_labels(validation, task, classes)
    train, overlap = resolve_overlap(train, validation, config.validation_overlap)
    if config.max_train_rows and config.max_train_rows < len(train):
        keep = np.random.default_rng(config.seed).permutation(len(train))[: config.max_train_rows]
        train = train.subset(np.sort(keep))
    return FitData(train, validation, task, classes, overlap, _task_notes(train, task, config.task))


def _task_notes(train: TextData, task: str, asked: str) -> list[str]:
    """The line to say when regression was inferred from labels that are all whole numbers written as decimals
    (a 0.0/1.0 column, as pandas writes an integer column with a gap): scikit-learn would call them classes."""
    if task != "regression" or asked != "auto" or not all(float(v).is_integer() for v in train.labels):
        return []
    shown = ", ".join(str(v) for v in sorted(set(train.labels))[:4])
    return [
        f"{train.source.name}: the labels are whole numbers written as decimals ({shown}, ...): read as regression "
        "scores; to classify them pass --task classification (task='classification')"
    ]


def _eval_pair(eval_set: Any) -> tuple[Any, Any]:
    """(X, y) of ``eval_set``: an (X, y) tuple or a TextData, which brings its own labels."""
    if isinstance(eval_set, TextData):
        return eval_set, None
    if isinstance(eval_set, tuple) and len(eval_set) == 2:
        return eval_set
    raise DataError(
        f"eval_set: expected an (X, y) tuple or data read from a file, got a {type(eval_set).__name__}"
        + (f" of {len(eval_set)} items" if isinstance(eval_set, (list, tuple)) else "")
        + "; pass eval_set=(X_val, y_val)"
    )


def planned_rows(n_rows: int, config: TrainConfig, *, held_out: bool) -> tuple[int, int]:
    """(rows that train, rows held out for validation) of ``n_rows`` training rows: what :func:`prepare_data`
    does, for the line a run prints before it starts. ``held_out``: no separate validation data was given."""
    n_validation = 0
    if held_out:
        # Held out before --max-train-rows applies, so that all N rows train; its size follows the rows
        # that train (a capped run on a huge file does not evaluate a tenth of the file every epoch).
        used = min(n_rows, config.max_train_rows or n_rows)
        n_validation = max(1, int(round(config.validation_fraction * used)))
    available = n_rows - n_validation
    return min(available, config.max_train_rows or available), n_validation


def align_labels(data: TextData, task: str, classes: list[Any]) -> list[Any]:
    """Normalize validation labels the way training labels were, and refuse unseen ones: validation data picks
    the epoch kept and the multi-label thresholds, and a label the model cannot predict is a mistake there (a
    wrong file or column) that should stop the run before it trains."""
    labels = _normalized_labels(data, task, classes)
    refuse_unseen_labels(
        data, labels, classes, task,
        "{where}: column {column!r} has label {value!r}, never seen in training; the model knows {known} "
        "({summary}); validation data may hold only labels of the training data",
    )  # fmt: skip
    return labels


def refuse_unseen_labels(data: TextData, labels: list[Any], classes: list[Any], task: str, message: str) -> None:
    """DataError for the first of ``labels`` (those of ``data``'s rows) not among ``classes``; ``message`` is
    a ``str.format`` template of ``where`` (file and row), ``column`` (the label column), ``value`` (the
    label), ``known`` (the first 20 classes) and ``summary`` (how many rows carry such labels, and which)."""
    unseen = unseen_labels(labels, classes, task)
    if unseen:
        row, value = unseen[0]
        known = ", ".join(repr(c) for c in classes[:20])
        where = data.source.where(int(data.rows[row]))
        summary = _unseen_summary(unseen)
        raise DataError(
            message.format(where=where, column=data.columns.label, value=value, known=known, summary=summary)
        )


def evaluation_labels(
    data: TextData, task: str, classes: list[Any], *, skip_unseen: bool
) -> tuple[TextData, list[Any], dict[Any, int]]:
    """Labels of evaluation data normalized the way training labels were, and the labels the model never saw
    with their counts. Rows carrying one stay (the report scores them as errors) unless ``skip_unseen``: then
    they are left out and counted among the skipped rows."""
    labels = _normalized_labels(data, task, classes)
    unseen = unseen_labels(labels, classes, task)
    counts = dict(Counter(value for _, value in unseen))
    if not unseen or not skip_unseen:
        return data, labels, counts
    bad = {row for row, _ in unseen}
    keep = [i for i in range(len(data)) if i not in bad]
    if not keep:
        raise DataError(f"{data.source.name}: every row has a label never seen in training ({_unseen_summary(unseen)})")
    first = {}  # one message per row, naming its first unseen label
    for row, value in unseen:
        first.setdefault(row, value)
    skipped = [f"{data.source.where(int(data.rows[r]))}: label {v!r} never seen in training" for r, v in first.items()]
    kept = data.subset(np.asarray(keep))
    kept.skipped = [*data.skipped, *skipped]  # a new list: subset() shares the original's
    return kept, [labels[i] for i in keep], counts


def _normalized_labels(data: TextData, task: str, classes: list[Any]) -> list[Any]:
    if data.labels is None:
        raise DataError(f"{data.source.name}: evaluation data needs labels (no label column)")
    fixed_task = "classification" if task == "classification" else task
    _, labels = normalize_labels(data.labels, fixed_task, where=data.where)
    if task == "classification" and classes and isinstance(classes[0], str):
        labels = [str(v) for v in labels]
    return labels


def _unseen_summary(unseen: list[tuple[int, Any]]) -> str:
    """'3 rows carry such labels: 'neutral' 2, 'x' 1' (rows, then each label with its count)."""
    rows = len({row for row, _ in unseen})
    counts = Counter(value for _, value in unseen)
    shown = ", ".join(f"{value!r} {count}" for value, count in list(counts.items())[:10])
    more = f" and {len(counts) - 10} more labels" if len(counts) > 10 else ""
    return f"{rows} {'row carries' if rows == 1 else 'rows carry'} such labels: {shown}{more}"


def hold_out(train: TextData, task: str, n_val: int, seed: int) -> tuple[TextData, TextData]:
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


def encode_texts(tokenizer: Any, data: TextData, config: TrainConfig) -> Encoded:
    """Token ids of ``data`` at the run's max_length: overlapping windows when ``config.window_stride`` is a
    positive stride, else truncated (0, or None: a model saved before the stride was resolved at training)."""
    return encode(tokenizer, data.texts, data.pairs, config.max_length, config.window_stride)


LONG_TEXT_SHARE = 0.10
"""Share of training examples longer than max_length above which ``window_stride=None`` reads texts in windows."""


@dataclass
class LongTexts:
    """How a run met training examples longer than max_length tokens."""

    share: float
    """Share of the training examples (texts or pairs) longer than max_length tokens."""
    windowed: bool
    """Whether they are read in overlapping windows (else truncated)."""
    note: str | None
    """The one line a run prints about it; None when there is nothing to say."""

    def metadata(self) -> dict[str, float]:
        """What a saved model records: ``long_share`` and ``truncated_share`` (0 with windows)."""
        share = round(self.share, 4)
        return {"long_share": share, "truncated_share": 0.0 if self.windowed else share}


def resolve_long_texts(
    tokenizer: Any, data: TextData, config: TrainConfig, *, announce: bool = False
) -> tuple[TrainConfig, LongTexts]:
    """``config`` with ``window_stride`` decided (``None``: windows of stride max_length // 4 when more than
    10% of the single training texts are longer than max_length, else 0, truncation), and what was found.

    Pairs keep truncation unless a stride is given: a window of the second text is labelled with the whole
    pair's label, which no measurement has backed for pair tasks. ``announce`` prints the note on stderr.
    Only the tokenizer runs: nothing random is drawn and the encoding of a run that truncates is unchanged."""
    longer = count_longer(tokenizer, data.texts, data.pairs, config.max_length)
    share = longer / max(len(data), 1)
    stride, note = config.window_stride, None
    if stride is None:
        auto = config.max_length // 4  # 32 at 128: the stride measured on IMDb (benchmarks/RESULTS.md)
        stride = auto if share > LONG_TEXT_SHARE and data.pairs is None and auto > 0 else 0
        kind = "pairs" if data.pairs is not None else "texts"
        what = f"{share:.0%} of training {kind} exceed {config.max_length} tokens"
        if stride:
            note = (
                f"{what}: reading them in overlapping windows (--window-stride {stride}); --window-stride 0 "
                "truncates instead"
            )
        elif share > LONG_TEXT_SHARE:
            note = (
                f"{what} and are truncated (windows are chosen by themselves only for single texts); "
                f"--window-stride {max(auto, 1)} or a larger --max-length reads more"
            )
    if note and announce:
        say(note)
    return dataclasses.replace(config, window_stride=stride), LongTexts(share, stride > 0, note)


def check_input_shape(text_pair: bool | None, data: TextData) -> None:
    """DataError for single texts given to a model trained on pairs (``text_pair``), or pairs to a single-text
    model: the model would answer, wrongly (None, a folder that does not record its setting, takes both)."""
    if text_pair is None or text_pair == (data.pairs is not None):
        return
    if text_pair:
        raise DataError(
            f"{data.source.name}: this model was trained on text pairs; give each text its pair "
            "((text, text_pair) tuples; the CLI: --pair with TEXT, --text-pair-column with --data; "
            'the service: "pairs")'
        )
    raise DataError(
        f"{data.source.name}: this model was trained on single texts, not pairs; drop the second text "
        '(the CLI: no --pair or --text-pair-column; the service: "texts", not "pairs")'
    )


def tell(notes: list[str], *, progress: bool) -> None:
    """Say what a fit did with its data (rows left out, a task inferred): lines among the progress output, or
    BertkitWarnings when the run is quiet, so that ``progress=False`` (``--quiet``) never hides them."""
    for note in notes:
        if progress:
            say(note)
        else:
            warnings.warn(note, BertkitWarning, stacklevel=3)


def say(line: str) -> None:
    """Print one line of a run on stderr without breaking a progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)


def fingerprint(data: TextData) -> dict[str, Any]:
    """Source, row count and a SHA-256 of the texts, pairs and labels: which data trained a model."""
    digest = hashlib.sha256()
    for i, text in enumerate(data.texts):
        digest.update(text.encode())
        if data.pairs is not None:
            digest.update(b"\x1f" + data.pairs[i].encode())
        digest.update(b"\x1e" + str(data.labels[i]).encode() + b"\n")
    return {"source": data.source.name, "rows": len(data), "sha256": digest.hexdigest()}
