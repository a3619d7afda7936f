"""Append prediction tables to CSV, TSV, JSONL or Parquet output, chunk by chunk.

Every value is written as it was read: JSON lines carry floats in full (shortest round-trip form) and dates
as ISO 8601; TSV is written unquoted, as its reader (and GLUE's) reads it, so a value holding a tab or line
break is refused; a Parquet column whose values have no one type (1 and "x2", a list and a string, an integer
above int64) is written as text.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertkit.exceptions import BertkitError, DataError

OUTPUT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


def make_parent(path: Path) -> None:
    """Create the folder ``--output`` goes in; a part of it that is a file (or not writable) is a DataError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(
            f"{path}: a part of the folder {path.parent} is a file, not a folder; choose another --output"
        ) from None
    except OSError as exc:
        raise DataError(
            f"{path}: cannot create the folder {path.parent} ({exc.strerror}); choose another --output"
        ) from None


def check_output_file(path: Path, *inputs: str | Path | None) -> None:
    """DataError, before any work is done, unless ``path`` can become the ``--output`` file: not a folder, not
    one of the ``inputs`` (writing there would destroy the data read), its folder made (:func:`make_parent`)."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder; --output names the file to write, e.g. {path / ('out' + path.suffix)}")
    for source in inputs:
        if source is not None and Path(source).resolve() == path.resolve():
            raise DataError(
                f"{path}: --output is the --data file; writing there would replace the data read; choose another name"
            )
    make_parent(path)


@contextmanager
def writing_errors(path: Path) -> Iterator[None]:
    """An OSError in the block (a full disk, a path the system refuses) as a one-line DataError naming
    ``--output``: the one message of every writer here."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, BertkitError):  # ModelLoadError is an OSError too, with its own message
            raise
        raise DataError(f"{path}: cannot write the output ({exc.strerror or exc}); choose another --output") from None


@contextmanager
def written_file(path: Path) -> Iterator[Path]:
    """:func:`replaced_on_success` with an OSError while writing or finishing as a DataError
    (:func:`writing_errors`)."""
    with writing_errors(path), replaced_on_success(path) as partial:
        yield partial


def partial_path(path: Path) -> Path:
    """Where output for ``path`` is written until it is complete: a hidden file beside it."""
    return path.with_name(f".{path.name}.partial")


def finish_partial(path: Path, *, succeeded: bool) -> None:
    """Move the partial file onto ``path`` after a complete write (if anything was written); else delete it."""
    partial = partial_path(path)
    if not succeeded:
        if not partial.is_dir():  # a folder of that name is not ours to delete (and unlink cannot)
            partial.unlink(missing_ok=True)
    elif partial.exists():
        os.replace(partial, path)


@contextmanager
def replaced_on_success(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; it becomes ``path`` only when the block ends
    without an error, so a failed or interrupted prediction leaves no half-written output and an earlier
    file of that name as it was (so does a failed move onto ``path``, a full disk say)."""
    done = False
    try:
        yield partial_path(path)
        finish_partial(path, succeeded=True)
        done = True
    finally:
        if not done:
            finish_partial(path, succeeded=False)


class TableWriter:
    """Write DataFrames with the same columns one after another into one file. Use it as a context manager:
    the rows go to a hidden ``.NAME.partial`` file that replaces ``path`` only when the block succeeds; an OSError
    while writing or finishing is a DataError (:func:`writing_errors`) and leaves no partial file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in OUTPUT_SUFFIXES:
            raise DataError(f"{self.path}: --output must end in {', '.join(OUTPUT_SUFFIXES)}")
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a folder; --output must name a file")
        make_parent(self.path)
        self.rows = 0
        self._parquet = None
        self._partial = partial_path(self.path)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        try:
            with writing_errors(self.path):
                if self._parquet is not None:
                    self._parquet.close()
                finish_partial(self.path, succeeded=error_type is None)
        except BaseException:
            finish_partial(self.path, succeeded=False)
            if error_type is None:  # else the error of the block is the one to see
                raise

    def write(self, frame: pd.DataFrame) -> None:
        with writing_errors(self.path):
            self._write(frame)
        self.rows += len(frame)

    def _write(self, frame: pd.DataFrame) -> None:
        first = self.rows == 0
        if self.suffix == ".parquet":
            self._write_parquet(frame)
        elif self.suffix == ".jsonl":
            lines = json_lines(frame, self.path, self.rows)  # errors before the file is touched
            with self._partial.open("w" if first else "a", encoding="utf-8") as handle:
                handle.writelines(lines)
        elif self.suffix == ".tsv":
            check_tsv(frame, self.path, self.rows)
            # Unquoted: the TSV reader (like GLUE's) reads quote characters as text, so a quoted cell would gain
            # quotes on every round trip; check_tsv has refused what would need quoting.
            frame.to_csv(
                self._partial, mode="w" if first else "a", header=first, index=False, sep="\t",
                quoting=csv.QUOTE_NONE,
            )  # fmt: skip
        else:
            frame.to_csv(self._partial, mode="w" if first else "a", header=first, index=False, sep=",")

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = arrow_table(frame)
        if self._parquet is None:
            # A column with no value in the first chunk has no type yet: it is written as text, which
            # later chunks' values (labels, numbers) cast to, rather than as null, which nothing casts to.
            schema = pa.schema(
                [field.with_type(pa.string()) if pa.types.is_null(field.type) else field for field in table.schema]
            )
            self._parquet = pq.ParquetWriter(self._partial, schema)
        try:
            table = table.cast(self._parquet.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise DataError(
                f"{self.path}: a column's values change type between chunks of the output ({exc}); write CSV "
                "or JSONL, or give --chunk-rows larger than the file"
            ) from None
        self._parquet.write_table(table)


TSV_BREAKS = re.compile(r"[\t\n\r]")
"""What an unquoted TSV cell cannot hold: the column separator and the line breaks csv readers split rows at."""
ADVICE = "write the output as .csv, .jsonl or .parquet instead"


def check_tsv(frame: pd.DataFrame, path: Path, before: int) -> None:
    """DataError naming the row (counted from 1 after ``before`` rows already written) and column of the first
    value of ``frame`` that unquoted TSV cannot hold: a tab or line break (it would split the row), or an empty
    value in a one-column table (a blank line, which readers skip)."""
    for name in frame.columns:
        if TSV_BREAKS.search(str(name)):
            raise DataError(
                f"{path}: column name {str(name)!r} holds a tab or line break, which a .tsv file cannot hold; {ADVICE}"
            )
        column = frame[name]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufcmM":
            continue  # numbers, booleans and dates hold neither
        text = column.astype(object).map(lambda v: "" if _is_null(v) else str(v))
        hits = text.str.contains(TSV_BREAKS, na=False).to_numpy(dtype=bool)
        if hits.any():
            row = int(np.argmax(hits))
            what = "a tab" if "\t" in text.iloc[row] else "a line break"
            raise DataError(
                f"{path} row {before + row + 1}, column {str(name)!r}: the value holds {what}, which a .tsv file "
                f"cannot hold (TSV is written unquoted, as GLUE-style readers read it); {ADVICE}"
            )
        if frame.shape[1] == 1 and (text == "").any():
            row = int(np.argmax((text == "").to_numpy(dtype=bool)))
            raise DataError(
                f"{path} row {before + row + 1}, column {str(name)!r}: the value is empty, which a one-column .tsv "
                f"file cannot hold (it would be a blank line); {ADVICE}"
            )


def json_lines(frame: pd.DataFrame, path: Path, before: int) -> list[str]:
    """One JSON object per row of ``frame``, each ending in a newline: floats exact (their shortest round-trip
    form; a float32 score as 0.7, not 0.699999988), NaN and other missing values as null, dates and times in ISO
    8601, nested lists and objects kept. Bytes that are not UTF-8 are a DataError naming the row (counted from 1
    after ``before`` rows already written) and column."""
    names = [str(name) for name in frame.columns]
    columns = []
    for name, (_, column) in zip(names, frame.items(), strict=True):
        if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            if column.dtype.itemsize < 8:  # via its text, the shortest decimal that reads back as this float32
                column = column.astype(str).astype("float64")
            columns.append([v if math.isfinite(v) else None for v in column.tolist()])
            continue
        values = column.tolist()
        for row, value in enumerate(values):
            try:
                values[row] = _json_value(value)
            except UnicodeDecodeError:
                raise DataError(
                    f"{path} row {before + row + 1}, column {name!r}: the value is bytes that are not UTF-8 text, "
                    "which JSON cannot hold; write the output as .parquet"
                ) from None
        columns.append(values)
    rows = zip(*columns, strict=True)
    return [json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) + "\n" for row in rows]


def _is_null(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA: a missing value, whatever the column's type."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _json_value(value: Any) -> Any:
    """``value`` as the Python value ``json.dumps`` writes as the JSON for it (see :func:`json_lines`); a
    value JSON has no type for (a Decimal) as its text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        return _json_value(pd.Timestamp(value))
    if isinstance(value, np.timedelta64):
        return _json_value(pd.Timedelta(value))
    if isinstance(value, np.floating):
        return _json_value(float(str(value)))  # a float32's shortest decimal, not its float64 expansion
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(item) for item in value]
    if isinstance(value, datetime.timedelta):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return str(value)


def arrow_table(frame: pd.DataFrame) -> Any:
    """``frame`` as a pyarrow Table. A column pyarrow cannot type (values of several types, integers above int64)
    is written as integers if it holds only non-negative integers below 2**64 (uint64), else as text: lists and
    objects in JSON, anything else as ``str`` gives it; missing values stay null."""
    import pyarrow as pa

    errors = (pa.ArrowException, OverflowError)
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except errors:
        pass
    arrays = []
    for _, column in frame.items():
        try:
            arrays.append(pa.Table.from_pandas(column.to_frame("c"), preserve_index=False).column(0))
            continue
        except errors:
            pass
        values = [None if _is_null(v) else v for v in column.tolist()]
        present = [v for v in values if v is not None]
        integers = present and all(isinstance(v, int) and not isinstance(v, bool) for v in present)
        if integers and min(present) >= 0 and max(present) < 2**64:
            arrays.append(pa.array(values, pa.uint64()))
            continue
        arrays.append(pa.array([None if v is None else _as_text(v) for v in values], pa.string()))
    return pa.Table.from_arrays(arrays, names=[str(name) for name in frame.columns])


def _as_text(value: Any) -> str:
    """A value of a mixed Parquet column as text: lists and objects as JSON, bytes decoded, others as ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple, np.ndarray)):
        return json.dumps(_json_value(value), ensure_ascii=False, default=str)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    return str(value)
