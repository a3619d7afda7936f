"""The table every reader returns: a DataFrame plus the :class:`Source` that names its rows in messages.

Kept apart from the readers so that any module (the delimited-text reader, the readers, the dataset) can import
these types without a circular import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Source:
    """Where a table came from; ``where(i)`` names DataFrame row ``i`` as an editor shows it."""

    name: str
    lines: tuple[int, ...]
    """Line (or row) number of each DataFrame row, e.g. 2 for the first data line under a header."""
    unit: str = "line"
    header: bool | None = field(default=None, compare=False)
    """Whether the first line was read as a header (given or detected); None for files without headers."""
    absent: dict[str, frozenset[int]] = field(default_factory=dict, compare=False)
    """For JSON records: the DataFrame rows whose record has no such key (their cells hold None, as a null does)."""

    def where(self, row: int) -> str:
        return f"{self.name} {self.unit} {self.lines[row]}"


@dataclass
class Table:
    frame: pd.DataFrame
    source: Source
    delimiter: str | None = None
    """The column separator a text file was read with; None for JSON lines, Parquet and datasets."""


def concat(tables: list[Table]) -> Table:
    """One table of ``tables`` (chunks of one file), in order, line numbers kept."""
    if len(tables) == 1:
        return tables[0]
    frame = pd.concat([t.frame for t in tables], ignore_index=True)
    lines = tuple(n for t in tables for n in t.source.lines)
    first = tables[0]
    return Table(frame, Source(first.source.name, lines, first.source.unit, first.source.header), first.delimiter)
