"""Read delimited text files (CSV, TSV, TXT) into tables: the separator choice, header detection, fastText and
"label text" lines, and the streaming of rows in chunks.

Cells stay strings; every row is checked against the header's width, and messages name the file and line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path

import pandas as pd

from bertkit.data.decoding import check_not_binary, codec, decode_file
from bertkit.data.table import Source, Table
from bertkit.exceptions import DataError
from bertkit.read_options import delimiter_char

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
LABEL_TEXT = " "
"""The separator that stands for "label text" lines: a label, whitespace, the text (columns label and text)."""
HEADER_SAMPLE = 50
"""Rows looked at to decide whether the first one is a header."""


def text_separator(path: Path, delimiter: str | None, encoding: str) -> str | None:
    """The separator of a text file: ``delimiter``'s, else its extension's (a ``.txt`` of fastText lines reads
    as "label text" lines); None when neither names one."""
    if delimiter is not None:
        return delimiter_char(delimiter)
    suffix = path.suffix.lower()
    if suffix == ".txt" and _starts_with_fasttext_label(path, encoding):
        return LABEL_TEXT
    return TEXT_SUFFIXES.get(suffix)


def _starts_with_fasttext_label(path: Path, encoding: str) -> bool:
    try:
        with path.open(encoding=codec(encoding)) as handle:
            first = next((line for line in handle if line.strip()), "")
    except (UnicodeDecodeError, OSError):
        return False  # the reader proper names the problem
    return first.lstrip().startswith("__label__")


def iter_delimited(
    path: Path, delimiter: str, encoding: str, header: bool | None, chunk_rows: int | None
) -> Iterator[Table]:
    """Tables of at most ``chunk_rows`` data rows (all rows for None), read as a stream."""
    text_codec = codec(encoding)
    check_not_binary(path, encoding)
    # TSV files (GLUE above all) carry unbalanced quote characters inside sentences: read them verbatim.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    end = [0]  # last line read so far: a row (even one with a quoted line break) starts on the next one

    def records(reader) -> Iterator[tuple[int, list[str]]]:
        for row in reader:
            # A blank line (or one of spaces alone; csv reports an empty one as []) is given as [] to _chunked,
            # which knows the width: nothing in a file of columns, an empty text in a one-column file. A quoted
            # "" (csv.writer's spelling of a row holding one empty text) comes as [""]: an empty text wherever it is.
            blank = not row or (len(row) == 1 and row[0] != "" and not row[0].strip())
            yield end[0] + 1, [] if blank else row
            end[0] = reader.line_num

    try:
        with path.open(encoding=text_codec, newline="") as handle:
            if delimiter == LABEL_TEXT:
                # "label text" lines have no header unless told: their first text may be as short as one.
                yield from _chunked(path, _label_text_records(path, handle), bool(header), chunk_rows, delimiter)
            else:
                reader = csv.reader(handle, delimiter=delimiter, quoting=quoting, strict=True)
                yield from _chunked(path, records(reader), header, chunk_rows, delimiter)
    except csv.Error as exc:
        raise DataError(f"{path} line {end[0] + 1}: malformed row ({exc}); fix the quoting on that line") from None
    except UnicodeDecodeError:
        decode_file(path, encoding, lone_cr_breaks=True)  # raises the exact message (line and byte)
        raise


def _chunked(
    path: Path, records: Iterator[tuple[int, list[str]]], header: bool | None, chunk_rows: int | None, delimiter: str
) -> Iterator[Table]:
    """Tables of ``records`` (line, cells), the first one taken as the header if ``header`` says so (None:
    decided on the first :data:`HEADER_SAMPLE` rows, so files of one layout get one answer)."""
    records = _blank_lines_placed(records)
    head: list[tuple[int, list[str]]] = []  # the records read to decide on the header, blank lines in place
    for record in records:
        if head or record[1]:  # blank lines before the first row are nothing
            head.append(record)
        if sum(1 for _, row in head if row) >= HEADER_SAMPLE:
            break
    sample = [record for record in head if record[1]]
    if not sample:
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    first = sample[0][1]
    if header is None and first == [""]:
        has_header = False  # a file that starts with a quoted empty text has no header line
    else:
        has_header = _looks_like_header([row for _, row in sample]) if header is None else header
    names = [c.strip() for c in first]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if (
        delimiter != LABEL_TEXT
        and repeated
        and (has_header or (header is None and _looks_like_header([row for _, row in sample], allow_repeats=True)))
    ):
        raise DataError(
            f"{path} line {sample[0][0]}: the header names column {repeated[0]!r} more than once; give each column "
            "its own name (or pass --no-header if that line is data)"
        )
    if delimiter == LABEL_TEXT:
        columns = ["label", "text"]
    else:
        columns = [c.strip() for c in first] if has_header else [str(i) for i in range(len(first))]
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    emitted = started = False
    for line, row in chain(head[1:] if has_header else head, records):
        if not row or (row == [""] and len(columns) > 1):
            if len(columns) > 1 or not started:
                # a blank line (or a lone "") between rows of several columns, or a blank line before the first
                # row, is no data; a quoted "" in a file of texts alone never comes here
                continue
            row = [""]  # in a file of texts alone, a blank line between texts is an empty text: said, not lost
        started = True
        rows.append(row)
        line_numbers.append(line)
        if chunk_rows is not None and len(rows) >= chunk_rows:
            yield _table(path, columns, rows, line_numbers, has_header, delimiter)
            emitted, rows, line_numbers = True, [], []
    if rows or not emitted:
        if not rows:
            raise DataError(f"{path}: file has a header line but no data rows")
        yield _table(path, columns, rows, line_numbers, has_header, delimiter)


def _blank_lines_placed(records: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """``records`` with the blank ones ([]) that come after the last row left out (a file's trailing empty lines
    are not rows); the others stay, in place."""
    pending: list[tuple[int, list[str]]] = []
    for record in records:
        if not record[1]:
            pending.append(record)
            continue
        yield from pending
        pending = []
        yield record


FASTTEXT_LINE = re.compile(r"((?:__label__\S+\s+)+)(\S.*)$")
LABEL_TEXT_LINE = re.compile(r"(\S+)\s+(\S.*)$")


def _label_text_records(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line, [label, text]) of "label text" lines; fastText's ``__label__`` prefixes are dropped and several
    labels on one line joined with commas (a multi-label row)."""
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        fasttext = FASTTEXT_LINE.match(stripped)
        if fasttext:
            labels = [label[len("__label__") :] for label in fasttext.group(1).split()]
            yield number, [",".join(labels), fasttext.group(2)]
            continue
        plain = LABEL_TEXT_LINE.match(stripped)
        if plain is None:
            raise DataError(
                f"{path} line {number}: expected a label, whitespace and the text (--delimiter space), "
                f"got {stripped[:80]!r}"
            )
        yield number, [plain.group(1), plain.group(2)]


# Separators a one-column file's lines may hold, as --delimiter spells them.
SEPARATOR_FLAGS = (("\t", "tab"), (";", "';'"), ("|", "'|'"), (",", "','"))


def separator_in(lines: Sequence[str], used: str | None) -> str | None:
    """The ``--delimiter`` spelling of a separator other than ``used`` that each of ``lines`` holds equally
    often (at least once), as csv.Sniffer judges; None if none does. One in a single line of several (a comma
    inside a question) is not taken for a separator."""
    for char, flag in SEPARATOR_FLAGS:
        counts = {line.count(char) for line in lines}
        if char != used and len(counts) == 1 and counts != {0}:
            return flag
    return None


def _table(
    path: Path, columns: list[str], rows: list[list[str]], line_numbers: list[int], header: bool, delimiter: str
) -> Table:
    width = len(columns)
    for row, line in zip(rows, line_numbers, strict=True):
        if len(row) != width:
            other = separator_in(columns, delimiter) if header and width == 1 else None
            advice = (
                f"its header looks {other}-separated: pass --delimiter {other}"
                if other is not None
                else "check the delimiter and quoting on that line"
            )
            raise DataError(
                f"{path} line {line}: malformed row with {len(row)} fields, the header has {width} "
                f"({', '.join(columns)}); {advice}"
            )
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    return Table(frame, Source(str(path), tuple(line_numbers), "line", header), delimiter)


def _looks_like_header(rows: list[list[str]], *, allow_repeats: bool = False) -> bool:
    """Whether ``rows[0]`` is a header, judged against the rows under it: a header line has distinct,
    non-empty, non-numeric, short cells, and none of them recurs below in its column (a label does: TREC's
    test file starts "NUM,How far is it from Denver to Aspen ?", short enough to pass for names, but NUM recurs).
    """
    first = [c.strip() for c in rows[0]]
    # "2,15" (GoEmotions' label id lists) counts as a number too: no header cell looks like that.
    if any(not c or _is_number(c.replace(",", "")) for c in first):
        return False
    if len(set(first)) != len(first) and not allow_repeats:
        return False
    if any(len(c) > 40 for c in first):
        return False
    for column, cell in enumerate(first):
        if any(len(row) > column and row[column].strip() == cell for row in rows[1:]):
            return False
    return True


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
