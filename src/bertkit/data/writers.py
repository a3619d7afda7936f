"""Append prediction tables to CSV, TSV, JSONL or Parquet output, chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bertkit.exceptions import DataError

OUTPUT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


class TableWriter:
    """Write DataFrames with the same columns one after another into one file; close() finishes it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in OUTPUT_SUFFIXES:
            raise DataError(f"{self.path}: --output must end in {', '.join(OUTPUT_SUFFIXES)}")
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a folder; --output must name a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self._parquet = None

    def write(self, frame: pd.DataFrame) -> None:
        first = self.rows == 0
        if self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        elif self.suffix == ".jsonl":
            with self.path.open("w" if first else "a", encoding="utf-8") as handle:
                frame.to_json(handle, orient="records", lines=True, force_ascii=False)
        else:
            sep = "\t" if self.suffix == ".tsv" else ","
            frame.to_csv(self.path, mode="w" if first else "a", header=first, index=False, sep=sep)
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
