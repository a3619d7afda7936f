"""Append prediction tables to CSV, TSV, JSONL or Parquet output, chunk by chunk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
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
        elif self.suffix == ".jsonl":
            with self._partial.open("w" if first else "a", encoding="utf-8") as handle:
                frame.to_json(handle, orient="records", lines=True, force_ascii=False)
        else:
            sep = "\t" if self.suffix == ".tsv" else ","
            frame.to_csv(self._partial, mode="w" if first else "a", header=first, index=False, sep=sep)
