"""From a file (or in-memory lists) to validated texts, optional pairs and labels, with row provenance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertkit.data.columns import Columns, choose_columns
from bertkit.data.labels import is_missing
from bertkit.data.readers import Source, read_table
from bertkit.exceptions import DataError


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

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: np.ndarray) -> TextData:
        pick = [int(i) for i in index]
        return TextData(
            texts=[self.texts[i] for i in pick],
            pairs=None if self.pairs is None else [self.pairs[i] for i in pick],
            labels=None if self.labels is None else [self.labels[i] for i in pick],
            source=self.source,
            frame=self.frame,
            rows=self.rows[pick],
            columns=self.columns,
            skipped=self.skipped,
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
) -> TextData:
    """Read and validate a data file; every problem names the file, line and column."""
    table = read_table(path, encoding=encoding, header=header)
    columns = choose_columns(
        table.frame, table.source.name, text=text_column, pair=pair_column, label=label_column,
        need_label=need_label,
    )  # fmt: skip
    data = from_frame(table.frame, table.source, columns, need_label=need_label, skip_bad_rows=skip_bad_rows)
    if label_names is not None and data.labels is not None:
        multi = any(isinstance(v, str) and "," in v for v in data.labels)
        data.labels = [_name_label(v, label_names, data, i, multi) for i, v in enumerate(data.labels)]
    return data


def from_frame(
    frame: pd.DataFrame, source: Source, columns: Columns, *, need_label: bool, skip_bad_rows: bool
) -> TextData:
    # Prediction input may carry a label column (even with gaps): it is kept as data, not validated.
    use_label = columns.label is not None and need_label
    checks = [(columns.text, "text")]
    if columns.pair:
        checks.append((columns.pair, "text"))
    if use_label:
        checks.append((columns.label, "label"))
    keep: list[int] = []
    skipped: list[str] = []
    values = {name: frame[name].tolist() for name, _ in checks}
    for row in range(len(frame)):
        problem = None
        for name, kind in checks:
            if is_missing(values[name][row]):
                problem = (
                    f"{source.where(row)}: column {name!r} is empty; every row needs a {kind} "
                    f"(fix or remove the row, or pass --skip-bad-rows to skip such rows, counted in the report)"
                )
                break
        if problem is None:
            keep.append(row)
        elif skip_bad_rows:
            skipped.append(problem)
        else:
            raise DataError(problem)
    if not keep:
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


def from_lists(texts: Sequence[Any], labels: Sequence[Any] | None = None, name: str = "input") -> TextData:
    """In-memory input: a list of strings, or of (text, pair) tuples, and optional labels."""
    if isinstance(texts, str):
        raise DataError(f"{name}: expected a list of texts, got a single string; wrap it in a list")
    items = list(texts)
    if not items:
        raise DataError(f"{name}: no texts given")
    if labels is not None:
        labels = list(labels)
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
    source = Source(name, tuple(range(len(items))), "item")
    columns = Columns("text", "text_pair" if paired else None, "label" if labels is not None else None)
    for column in ("text", "text_pair"):
        if column in frame:
            bad = [i for i, v in enumerate(frame[column]) if not isinstance(v, str)]
            if bad:
                raise DataError(
                    f"{source.where(bad[0])}: expected a string, got {type(frame[column][bad[0]]).__name__}"
                )
    return from_frame(frame, source, columns, need_label=labels is not None, skip_bad_rows=False)


def _name_label(value: Any, names: Sequence[str], data: TextData, index: int, multi: bool) -> Any:
    """Map integer label ids to names (GoEmotions' labels.txt, AG News' class.txt)."""

    def name(v: Any) -> str:
        try:
            i = int(v)
            if i < 0:  # names[-1] would silently pick the last name
                raise IndexError(i)
            return names[i]
        except (ValueError, IndexError):
            where = data.source.where(int(data.rows[index]))
            raise DataError(f"{where}: label {v!r} is not an index into the {len(names)} label names given") from None

    if multi:
        return [name(v) for v in str(value).split(",")]
    return name(value)
