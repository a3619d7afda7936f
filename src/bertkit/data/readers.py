"""Read tabular text data (CSV, TSV, JSONL, Parquet, Hugging Face datasets) into a pandas DataFrame.

All readers return a DataFrame plus a :class:`Source` that knows how to name a row in error messages
("train.csv line 12", "data.parquet row 7"). Cells from text formats stay strings: type inference of labels
happens later, in one place (``bertkit.data.labels``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bertkit.exceptions import DataError

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
SUPPORTED = ".csv, .tsv, .jsonl (or .json lines), .parquet, or hf:NAME[:SPLIT] for a Hugging Face dataset"


@dataclass(frozen=True)
class Source:
    """Where a table came from; ``where(i)`` names DataFrame row ``i`` as an editor shows it."""

    name: str
    lines: tuple[int, ...]
    """Line (or row) number of each DataFrame row, e.g. 2 for the first data line under a header."""
    unit: str = "line"

    def where(self, row: int) -> str:
        return f"{self.name} {self.unit} {self.lines[row]}"


@dataclass
class Table:
    frame: pd.DataFrame
    source: Source


def read_table(path: str | Path, *, encoding: str = "utf-8", header: bool | None = None) -> Table:
    """Read ``path`` into a :class:`Table`.

    ``header=None`` detects whether a CSV/TSV file has a header line (GLUE's CoLA has none); header-less
    columns are named "0", "1", ... so flags can name them by position.
    """
    spec = str(path)
    if spec.startswith("hf:"):
        return _read_hf(spec[3:])
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path (looked in {Path.cwd()})")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file; pass a data file ({SUPPORTED})")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(path, encoding)
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix in TEXT_SUFFIXES:
        return _read_delimited(path, TEXT_SUFFIXES[suffix], encoding, header)
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use {SUPPORTED}")


def _decode(path: Path, encoding: str) -> str:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    try:
        # utf-8-sig drops a byte-order mark (GLUE's MRPC starts with one); any spelling of utf-8 does.
        return raw.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        # exc.start counts from after a dropped byte-order mark: count lines in the bytes actually decoded.
        line = exc.object.count(b"\n", 0, exc.start) + 1
        byte = len(raw) - len(exc.object) + exc.start
        raise DataError(
            f"{path} line {line}: bytes are not valid {encoding} ({exc.reason} at byte {byte}); "
            f"pass the file's encoding, e.g. --encoding latin-1 or --encoding cp1252"
        ) from None
    except LookupError:
        raise DataError(f"--encoding {encoding!r} is not a known text encoding (try utf-8, latin-1)") from None


def _read_delimited(path: Path, delimiter: str, encoding: str, header: bool | None) -> Table:
    text = _decode(path, encoding)
    # TSV files (GLUE above all) carry unbalanced quote characters inside sentences: read them verbatim.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    end = 0  # last line read so far: a row (even one with a quoted line break) starts on the next one
    try:
        for row in reader:
            if row:  # blank lines carry no data; csv reports them as []
                rows.append(row)
                line_numbers.append(end + 1)
            end = reader.line_num
    except csv.Error as exc:
        raise DataError(f"{path} line {end + 1}: malformed row ({exc}); fix the quoting on that line") from None
    if not rows:
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    has_header = _looks_like_header(rows) if header is None else header
    if has_header:
        columns = [c.strip() for c in rows[0]]
        body, body_lines = rows[1:], line_numbers[1:]
    else:
        columns = [str(i) for i in range(len(rows[0]))]
        body, body_lines = rows, line_numbers
    if not body:
        raise DataError(f"{path}: file has a header line but no data rows")
    width = len(columns)
    for row, line in zip(body, body_lines, strict=True):
        if len(row) != width:
            raise DataError(
                f"{path} line {line}: malformed row with {len(row)} fields, the header has {width} "
                f"({', '.join(columns)}); check the delimiter and quoting on that line"
            )
    frame = pd.DataFrame(body, columns=columns, dtype=object)
    return Table(frame, Source(str(path), tuple(body_lines), "line"))


def _looks_like_header(rows: list[list[str]]) -> bool:
    """A header line has distinct, non-empty, non-numeric, short cells; data lines usually do not."""
    first = [c.strip() for c in rows[0]]
    # "2,15" (GoEmotions' label id lists) counts as a number too: no header cell looks like that.
    if any(not c or _is_number(c.replace(",", "")) for c in first) or len(set(first)) != len(first):
        return False
    return all(len(c) <= 40 for c in first)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _read_jsonl(path: Path, encoding: str) -> Table:
    text = _decode(path, encoding)
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
    frame = pd.DataFrame.from_records(records)
    return Table(frame, Source(str(path), tuple(lines), unit))


def _read_parquet(path: Path) -> Table:
    try:
        frame = pd.read_parquet(path)
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
    return Table(frame, Source(f"hf:{spec}", tuple(range(len(frame))), "row"))
