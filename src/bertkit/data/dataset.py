"""From a file (or in-memory lists) to validated texts, optional pairs and labels, with row provenance."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertkit.data.columns import TEXT_NAMES, Columns, choose_columns
from bertkit.data.labels import is_missing
from bertkit.data.readers import LABEL_TEXT, Source, Table, read_table, separator_in
from bertkit.exceptions import BertkitWarning, DataError

ITEM = "item"
"""The unit of :func:`from_lists` input: positions in the caller's lists."""


@dataclass
class TextData:
    """Validated examples. ``rows`` are positions in ``frame`` (kept for prediction output and messages)."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[Any] | None
    source: Source
    frame: pd.DataFrame
    rows: np.ndarray
    columns: Columns
    skipped: list[str] = field(default_factory=list)
    """One message per row left out with ``skip_bad_rows=True``."""
    notes: list[str] = field(default_factory=list)
    """Informational lines on how the data was read (1-based label ids detected), for the CLI to print."""
    label_offset: int | None = None
    """The id of the first of ``label_names`` when they were applied (0 or 1, given or detected)."""
    label_names: list[Any] | None = None
    """The label names given for the file (``--label-names``), in their order: a model's classes keep it, so
    that its class i is the data's id i (:func:`bertkit.data.labels.class_order`)."""

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def in_memory(self) -> bool:
        """Given as Python lists (:func:`from_lists`), not read from a file: its labels are typed as given."""
        return self.source.unit == ITEM

    def where(self, index: int) -> str:
        """Where example ``index`` came from, as messages name it ("train.csv line 7", "X item 3")."""
        return self.source.where(int(self.rows[index]))

    def subset(self, index: np.ndarray) -> TextData:
        pick = [int(i) for i in index]
        return dataclasses.replace(
            self,
            texts=[self.texts[i] for i in pick],
            pairs=None if self.pairs is None else [self.pairs[i] for i in pick],
            labels=None if self.labels is None else [self.labels[i] for i in pick],
            rows=self.rows[pick],
            notes=[],
        )


def load_file(
    path: str | Path,
    *,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
    need_label: bool = True,
    encoding: str = "utf-8",
    header: bool | None = None,
    skip_bad_rows: bool = False,
    label_names: Sequence[str] | None = None,
    delimiter: str | None = None,
    label_offset: int | None = None,
    skip_hint: bool = True,
) -> TextData:
    """Read and validate a data file; every problem names the file, line and column. Integer labels index
    ``label_names`` from ``label_offset`` (None: 1 when the ids are exactly 1..N, said in ``notes``, else 0).
    ``skip_hint``: an empty row's message names --skip-bad-rows (False for a command without the flag)."""
    table = read_table(path, encoding=encoding, header=header, delimiter=delimiter)
    columns = table_columns(table, text_column, pair_column, label_column, need_label)
    data = from_frame(
        table.frame, table.source, columns, need_label=need_label, skip_bad_rows=skip_bad_rows, skip_hint=skip_hint
    )
    if label_names is not None and data.labels is not None:
        data.label_names = list(label_names)
    if label_names is not None and data.labels is not None and not _already_named(data.labels, label_names):
        multi = any(isinstance(v, str) and "," in v for v in data.labels)
        offset = label_offset if label_offset is not None else _detect_offset(data.labels, len(label_names))
        if label_offset is None and offset == 1:
            data.notes.append(
                f"{data.source.name}: label ids run 1..{len(label_names)} with no 0, read as 1-based: id 1 is "
                f"{label_names[0]!r}, id {len(label_names)} is {label_names[-1]!r} (pass --label-offset 0 if "
                "id 0 names the first)"
            )
        data.label_offset = offset
        data.labels = [_name_label(v, label_names, data, i, multi, offset) for i, v in enumerate(data.labels)]
    return data


def table_columns(
    table: Table, text: str | None = None, pair: str | None = None, label: str | None = None, need_label: bool = True
) -> Columns:
    """The columns of ``table`` to use (:func:`choose_columns`); when a one-column text file has no usable
    columns, say how else it can be read: with the separator its heading holds (``text;label`` read as a CSV), or
    as 'label text' lines (TREC's read as tab-separated are one column). A file whose one column is headed as a
    text column, or that lacks a named text column, was split right: its own error says which column is missing."""
    try:
        return choose_columns(table.frame, table.source.name, text=text, pair=pair, label=label, need_label=need_label)
    except DataError as exc:
        if len(table.frame.columns) != 1 or table.delimiter in (None, LABEL_TEXT):
            raise
        heading = str(table.frame.columns[0])
        if heading == text or heading.lower() in TEXT_NAMES:
            raise
        seen = _consistent_separator(table)
        if seen is None and text is not None:
            raise  # the named column's own error says which column holds the text
        how = "as tab-separated (.txt and .tsv are)" if table.delimiter == "\t" else f"split at {table.delimiter!r}"
        if seen is not None:
            advice = f"its lines look {seen}-separated: pass --delimiter {seen}"
        elif table.source.header and not need_label:  # texts alone, to predict or embed: the first is no header
            advice = f"if its first line {heading[:40]!r} is a text, not a header, pass --no-header"
        else:
            advice = (
                "for 'label text' lines such as TREC's pass --delimiter space, for other separators --delimiter "
                "',', ';', '|' or 'tab'"
            )
        raise DataError(f"{table.source.name}: 1 column found reading it {how}; {advice} ({exc})") from None


def _consistent_separator(table: Table) -> str | None:
    """The ``--delimiter`` spelling of the separator that a one-column table's first lines (its heading included)
    all hold equally often (:func:`separator_in`)."""
    lines = [str(v) for v in table.frame.iloc[:8, 0]]
    if table.source.header:
        lines.insert(0, str(table.frame.columns[0]))
    return separator_in(lines, table.delimiter)


def from_frame(
    frame: pd.DataFrame, source: Source, columns: Columns, *, need_label: bool, skip_bad_rows: bool,
    skip_hint: bool = True, allow_empty: bool = False,
) -> TextData:  # fmt: skip
    """The rows of ``frame`` as TextData, each checked (a missing text, pair or label is a DataError naming the
    row, or with ``skip_bad_rows`` a skipped row). No usable row at all is a DataError unless ``allow_empty``
    (one chunk of a file, whose other chunks may have some)."""
    # Prediction input may carry a label column (even with gaps): it is kept as data, not validated.
    use_label = columns.label is not None and need_label
    checks = [(columns.text, "text")]
    if columns.pair:
        checks.append((columns.pair, "text"))
    if use_label:
        checks.append((columns.label, "label"))
    keep: list[int] = []
    skipped: list[str] = []
    frame = _bytes_decoded(frame, source, [columns.text, *([columns.pair] if columns.pair else [])])
    values = {name: frame[name].tolist() for name, _ in checks}
    for row in range(len(frame)):
        problem = None
        for name, kind in checks:
            if is_missing(values[name][row]):
                what = (
                    f"the record has no key {name!r}"
                    if row in source.absent.get(name, ())
                    else f"column {name!r} is empty"
                )
                skip = ", or pass --skip-bad-rows to skip such rows, counted in the report" if skip_hint else ""
                problem = f"{source.where(row)}: {what}; every row needs a {kind} (fix or remove the row{skip})"
                break
        for name, _kind in checks[: 2 if columns.pair else 1]:
            value = values[name][row]
            if problem is None and isinstance(value, (dict, list, tuple, np.ndarray)):
                raise DataError(
                    f"{source.where(row)}: column {name!r} holds a {type(value).__name__}, not a text; put a string "
                    "there (join the words, or pick another column with --text-column)"
                )
        if problem is None:
            keep.append(row)
        elif skip_bad_rows:
            skipped.append(problem)
        else:
            raise DataError(problem)
    if not keep and not allow_empty:
        raise DataError(f"{source.name}: no usable rows ({len(skipped)} skipped as empty)")
    texts = [str(values[columns.text][i]) for i in keep]
    pairs = [str(values[columns.pair][i]) for i in keep] if columns.pair else None
    labels = [values[columns.label][i] for i in keep] if use_label else None
    return TextData(
        texts=texts, pairs=pairs, labels=labels, source=source, frame=frame,
        rows=np.asarray(keep, dtype=np.int64),
        columns=Columns(columns.text, columns.pair, columns.label if use_label else None),
        skipped=skipped,
    )  # fmt: skip


def _bytes_decoded(frame: pd.DataFrame, source: Source, names: list[str]) -> pd.DataFrame:
    """``frame`` with the bytes in its text columns ``names`` (a Parquet binary column) decoded as UTF-8, so that
    the model reads, and the output shows, "good" and not "b'good'"; a copy only when there are bytes. Bytes
    that are not UTF-8 are a DataError naming the row and column."""
    decoded: dict[str, list[Any]] = {}
    for name in names:
        cells = frame[name].tolist()
        if not any(isinstance(v, (bytes, bytearray)) for v in cells):
            continue
        for row, value in enumerate(cells):
            if isinstance(value, (bytes, bytearray)):
                try:
                    cells[row] = bytes(value).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{source.where(row)}: column {name!r} holds bytes that are not UTF-8 text ({exc.reason} at "
                        f"byte {exc.start}); store the texts as UTF-8 strings (a string column, not binary)"
                    ) from None
        decoded[name] = cells
    if not decoded:
        return frame
    frame = frame.copy()
    for name, cells in decoded.items():
        frame[name] = pd.Series(cells, index=frame.index, dtype=object)
    return frame


def from_lists(texts: Sequence[Any], labels: Sequence[Any] | None = None, name: str = "input") -> TextData:
    """In-memory input: a list of strings, or of (text, pair) tuples, and optional labels."""
    if isinstance(texts, str):
        raise DataError(f"{name}: expected a list of texts, got a single string; wrap it in a list")
    items = _rows_of(texts, name)
    if not items:
        raise DataError(f"{name}: no texts given")
    if labels is not None:
        labels = _labels_of(labels, name)
        if len(labels) != len(items):
            raise DataError(f"{name}: {len(items)} texts but {len(labels)} labels; give one label per text")
    paired = isinstance(items[0], (tuple, list))
    if paired and any(not isinstance(x, (tuple, list)) or len(x) != 2 for x in items):
        raise DataError(f"{name}: text pairs must all be (text, text_pair) tuples")
    # dtype=object keeps a None as None (not NaN) so the type check below names what was given.
    frame = pd.DataFrame({"text": pd.Series([x[0] if paired else x for x in items], dtype=object)})
    if paired:
        frame["text_pair"] = pd.Series([x[1] for x in items], dtype=object)
    if labels is not None:
        frame["label"] = pd.Series(labels, dtype=object)
    source = Source(name, tuple(range(len(items))), ITEM)
    columns = Columns("text", "text_pair" if paired else None, "label" if labels is not None else None)
    for column in ("text", "text_pair"):
        if column in frame:
            bad = [i for i, v in enumerate(frame[column]) if not isinstance(v, str)]
            if bad:
                raise DataError(
                    f"{source.where(bad[0])}: expected a string, got {type(frame[column][bad[0]]).__name__}"
                )
    _check_items(frame, name)
    return from_frame(frame, source, columns, need_label=labels is not None, skip_bad_rows=False)


def _rows_of(texts: Any, name: str) -> list[Any]:
    """In-memory texts as a list of items: a DataFrame's or 2-D array's rows are texts (one column) or (text,
    pair) tuples (two), never its column names, which iterating over a DataFrame gives."""
    if isinstance(texts, pd.DataFrame):
        width = texts.shape[1]
        if width not in (1, 2):
            raise DataError(
                f"{name}: a DataFrame of {width} columns ({', '.join(repr(str(c)) for c in texts.columns[:6])}); "
                "pass one text column, or two for text pairs, e.g. df['text'] or df[['sentence1', 'sentence2']]"
            )
        return list(texts.iloc[:, 0]) if width == 1 else list(zip(texts.iloc[:, 0], texts.iloc[:, 1], strict=True))
    if isinstance(texts, np.ndarray) and texts.ndim == 2:
        if texts.shape[1] not in (1, 2):
            raise DataError(
                f"{name}: an array of shape {texts.shape}; pass one text per row, or two for text pairs (n, 2)"
            )
        return list(texts[:, 0]) if texts.shape[1] == 1 else [tuple(row) for row in texts]
    return list(texts)


def _labels_of(labels: Any, name: str) -> list[Any]:
    """In-memory labels as a list: a column vector (an (n, 1) array or a one-column DataFrame) is read as one
    label per row, with a warning as scikit-learn gives, not as one-label lists (multi-label)."""
    where = "y" if name == "X" else f"{name} labels"
    if isinstance(labels, pd.DataFrame):
        if labels.shape[1] != 1:
            raise DataError(
                f"{where}: a DataFrame of {labels.shape[1]} columns; pass one label column, e.g. df['label']"
            )
        labels = labels.iloc[:, 0].to_numpy()
    elif isinstance(labels, np.ndarray) and labels.ndim == 2 and labels.shape[1] == 1:
        warnings.warn(
            f"{where}: a column vector of shape {labels.shape} was passed where a 1-D array was expected; read as "
            "one label per row (use y.ravel(); for multi-label give a list of label lists)",
            BertkitWarning,
            stacklevel=6,  # the caller of fit, evaluate or predict
        )
        labels = labels[:, 0]
    return list(labels)


def _check_items(frame: pd.DataFrame, name: str) -> None:
    """DataError for the first empty text, second text or label of in-memory input, named as the caller wrote
    it (``X[3]``, ``y[3]``): a position in a list, not a line of a file."""
    labels = "y" if name == "X" else f"{name} labels"
    problems = {
        "text": "empty text; every item needs a non-empty text",
        "text_pair": "empty second text of the pair; every pair needs two non-empty texts",
        "label": "missing label; every text needs a label",
    }
    for column, problem in problems.items():
        if column not in frame:
            continue
        for i, value in enumerate(frame[column]):
            if is_missing(value):
                where = f"{labels}[{i}]" if column == "label" else f"{name}[{i}]"
                raise DataError(f"{where}: {problem} (got {value!r})")


def _already_named(labels: Sequence[Any], names: Sequence[str]) -> bool:
    """Whether every label is one of ``names`` already (a file of names evaluated by a model that saved the
    names of its training file's ids): such labels are kept, not read as ids."""
    known = set(names)
    return all(isinstance(v, str) and not v.strip().lstrip("-").isdigit() and v.strip() in known for v in labels)


def _detect_offset(labels: Sequence[Any], n_names: int) -> int:
    """1 when the integer ids are exactly 1..``n_names`` (every one present, no 0: AG News' 1-4), else 0."""
    ids: set[int] = set()
    for value in labels:
        for part in str(value).split(","):
            try:
                ids.add(int(part))
            except ValueError:
                return 0  # not ids: the mapping names the row
    return 1 if ids == set(range(1, n_names + 1)) else 0


def _name_label(value: Any, names: Sequence[str], data: TextData, index: int, multi: bool, offset: int) -> Any:
    """Map integer label ids to names (GoEmotions' labels.txt, AG News' class.txt); ids count from ``offset``."""

    def name(v: Any) -> str:
        try:
            i = int(v) - offset
            if i < 0:  # names[-1] would silently pick the last name
                raise IndexError(i)
            return names[i]
        except (ValueError, IndexError):
            other = 1 - offset
            # The other offset is advice only where it would place this id among the names.
            fits_other = str(v).strip().lstrip("-").isdigit() and 0 <= int(v) - other < len(names)
            fix = (
                f"pass --label-offset {other} if ids count from {other}"
                if fits_other
                else "fix the label, or give label names that cover it"
            )
            raise DataError(
                f"{data.where(index)}: label {v!r} is not an index into the {len(names)} label names given (ids "
                f"{offset}..{len(names) - 1 + offset}); {fix}"
            ) from None

    if multi:
        return [name(v) for v in str(value).split(",")]
    return name(value)
