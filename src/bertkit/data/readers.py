"""Read tabular text data (CSV, TSV, JSONL, Parquet, Hugging Face datasets) into a pandas DataFrame.

All readers return a DataFrame plus a :class:`Source` that knows how to name a row in error messages
("train.csv line 12", "data.parquet row 7"). Cells from text formats stay strings: type inference of labels
happens later, in one place (``bertkit.data.labels``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bertkit.data.decoding import check_not_binary, decode_file
from bertkit.data.delimited import (
    HEADER_SAMPLE,
    LABEL_TEXT,
    TEXT_SUFFIXES,
    iter_delimited,
    separator_in,
    text_separator,
)
from bertkit.data.table import Source, Table, concat
from bertkit.exceptions import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "HEADER_SAMPLE",
    "JSON_SUFFIXES",
    "LABEL_TEXT",
    "SUPPORTED",
    "TEXT_SUFFIXES",
    "TXT_MEANS",
    "Source",
    "Table",
    "check_data_path",
    "iter_tables",
    "read_table",
    "separator_in",
]

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
SUPPORTED = ".csv, .tsv, .jsonl (or .json lines), .parquet, or hf:NAME[:SPLIT] for a Hugging Face dataset"
TXT_MEANS = (
    ".txt is read as tab-separated columns, or as fastText lines ('__label__X text') when its first line starts "
    "with __label__; for other layouts pass --delimiter: ',', ';', '|', 'tab', or 'space' for 'label text' lines "
    "such as TREC's 'DESC:manner How did ...'"
)


def read_table(
    path: str | Path, *, encoding: str = "utf-8", header: bool | None = None, delimiter: str | None = None
) -> Table:
    """Read ``path`` into a :class:`Table`.

    ``header=None`` detects whether a CSV/TSV file has a header line (GLUE's CoLA has none) from its first rows
    (:func:`bertkit.data.delimited._looks_like_header`); header-less columns are named "0", "1", ... so flags can
    name them by position. ``delimiter`` (a ``--delimiter`` spelling) replaces the separator the extension implies, and lets
    a file of any other extension be read as delimited text (see :data:`TXT_MEANS`).
    """
    spec = str(path)
    if spec.startswith("hf:"):
        return _read_hf(spec[3:])
    path = Path(path)
    check_data_path(path, any_suffix=True)  # the suffix decides below, with the delimiter
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        return _read_jsonl(path, encoding)
    if suffix == ".parquet":
        return _read_parquet(path)
    separator = text_separator(path, delimiter, encoding)
    if separator is not None:
        return concat(list(iter_delimited(path, separator, encoding, header, chunk_rows=None)))
    raise _unsupported(path)


def check_data_path(path: Path, *, any_suffix: bool = False) -> None:
    """The checks of a data file that cost nothing: it exists, is a file, can be read and, unless ``any_suffix``
    (a delimiter makes any extension delimited text), has an extension bertkit reads. The readers make them
    first; ``evaluate`` and ``predict`` make them before loading the model, with the same messages."""
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path (looked in {Path.cwd()})")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file; pass a data file ({SUPPORTED})")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot be read (permission denied); check the file's permissions")
    if not any_suffix and path.suffix.lower() not in (*JSON_SUFFIXES, ".parquet", *TEXT_SUFFIXES):
        raise _unsupported(path)


def _unsupported(path: Path) -> DataError:
    return DataError(f"{path}: unsupported file type {path.suffix.lower() or '(none)'!r}; use {SUPPORTED}; {TXT_MEANS}")


def iter_tables(
    path: str | Path,
    *,
    chunk_rows: int = 50_000,
    encoding: str = "utf-8",
    header: bool | None = None,
    delimiter: str | None = None,
) -> Iterator[Table]:
    """Yield a data file as tables of at most ``chunk_rows`` rows, for prediction in bounded memory.

    CSV/TSV, JSON lines and Parquet are streamed; other sources are read whole and yielded once. Checks and
    messages are those of :func:`read_table`; line numbers stay those of the whole file."""
    spec = str(path)
    suffix = Path(spec).suffix.lower()
    separator = None
    if not spec.startswith("hf:") and Path(spec).is_file() and suffix not in (*JSON_SUFFIXES, ".parquet"):
        separator = text_separator(Path(spec), delimiter, encoding)
    if separator is None and (suffix != ".parquet" or spec.startswith("hf:") or not Path(spec).is_file()):
        yield read_table(path, encoding=encoding, header=header, delimiter=delimiter)  # read whole
        return
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    if separator is None:
        yield from _iter_parquet(path, chunk_rows)
    else:
        yield from iter_delimited(path, separator, encoding, header, chunk_rows)


def _iter_parquet(path: Path, chunk_rows: int) -> Iterator[Table]:
    import pyarrow.parquet as pq

    start = 0
    try:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(batch_size=chunk_rows):
            if batch.num_rows == 0:
                continue
            frame = _arrow_to_frame(batch)
            yield Table(frame, Source(str(path), tuple(range(start + 1, start + len(frame) + 1)), "row"))
            start += len(frame)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if start == 0:  # a file of no rows yields no batch: said as read_table says it, not predicted as nothing
        raise DataError(f"{path}: file is empty; it needs at least one row of data")


def _arrow_to_frame(data: pa.Table | pa.RecordBatch) -> pd.DataFrame:
    """A pyarrow Table or RecordBatch as a DataFrame whose integer columns with a null hold Python ints and None
    (object dtype), as the JSON lines reader keeps them: pandas' default turns them into floats, so an id
    1234567890123456789 became 1.2345678901234568e+18 in the output and a text 1 reached the model as "1.0"."""
    return data.to_pandas(integer_object_nulls=True)


def _read_jsonl(path: Path, encoding: str) -> Table:
    check_not_binary(path, encoding)
    text = decode_file(path, encoding)
    if text.lstrip().startswith("["):
        # A JSON array of objects is accepted too.
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from None
        lines = list(range(1, len(records) + 1))
        unit = "record"
    else:
        records, lines = [], []
        # Split on "\n" only: str.splitlines() also breaks at U+2028, U+0085 and others, which JSON strings may hold.
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path} line {number}: malformed JSON ({exc.msg} at column {exc.colno}); "
                    "each line must be one JSON object"
                ) from None
            records.append(record)
            lines.append(number)
        unit = "line"
    for record, number in zip(records, lines, strict=True):
        if not isinstance(record, dict):
            raise DataError(f"{path} {unit} {number}: expected a JSON object, got {type(record).__name__}")
    if not records:
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    # Built column by column as Python objects: from_records would turn a column of ints with one null into
    # floats (label 1 read back as 1.0, text 5 as "5.0"), a silent change of what the file says.
    columns = list(dict.fromkeys(key for record in records for key in record))
    frame = pd.DataFrame({c: pd.Series([record.get(c) for record in records], dtype=object) for c in columns})
    absent = {c: frozenset(i for i, record in enumerate(records) if c not in record) for c in columns}
    return Table(frame, Source(str(path), tuple(lines), unit, absent={c: a for c, a in absent.items() if a}))


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        frame = _arrow_to_frame(pq.read_table(path))
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if frame.empty:
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    frame = frame.reset_index(drop=True)
    return Table(frame, Source(str(path), tuple(range(1, len(frame) + 1)), "row"))


def _read_hf(spec: str) -> Table:
    name, _, split = spec.partition(":")
    try:
        import datasets
    except ImportError:
        raise DataError(f"hf:{spec}: reading Hugging Face datasets needs `pip install bertkit[hf]`") from None
    try:
        dataset = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:  # network, missing dataset or split: all end the same way for the user
        raise DataError(
            f"hf:{spec}: could not load the dataset ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "check the name and split, or that the hub is reachable, or download it to a local file"
        ) from None
    frame = dataset.to_pandas()
    return Table(frame, Source(f"hf:{spec}", tuple(range(1, len(frame) + 1)), "row"))
