"""Property-based tests of the file readers (Hypothesis): generated CSV, TSV and JSON lines files with odd
quoting, delimiters and line breaks inside cells, empty cells, control characters, non-ASCII text, long cells,
numbers and strings as labels, in several encodings, some deliberately broken.

Whatever the content, ``load_data`` either returns exactly the rows written (texts as written; a row without
text or label counted in ``skipped``, never lost) or raises a DataError naming the file, and the line when one
line is at fault. Any other exception is a bug. Fixed seed (``derandomize``) and a bounded number of examples,
so the test is repeatable and takes seconds in the fast subset.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the property tests need hypothesis (the dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bertkit import DataError, load_data  # noqa: E402

ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]
# Quotes, delimiters, line breaks, NUL and other control characters, spaces, letters beyond ASCII, an emoji.
SPECIAL = list(",;\"'\t\n\r \x00\x01\x0b\x0c\x1b\x7f\x85\xa0\u2028\u00e9\u00df\u20ac\u4e2d\U0001f600") + ["\\"]
PLAIN = list("abcXYZ019.-_")
SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
    database=None,
)  # fmt: skip


def _alphabet(encoding: str, *, tsv: bool) -> list[str]:
    chars = [c for c in PLAIN + SPECIAL if _encodable(c, encoding)]
    # TSV is read verbatim (no quoting: GLUE's sentences hold stray quotes), so a cell cannot hold a tab or a
    # line break; such a file is not "valid TSV" to write.
    return [c for c in chars if not (tsv and c in "\t\n\r")]


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def tables(draw) -> tuple[str, str, list[tuple[object, object]]]:
    """(format, encoding, rows of (text, label)): texts of odd characters (sometimes empty, sometimes long)."""
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl"]))
    encoding = draw(st.sampled_from(ENCODINGS))
    alphabet = _alphabet(encoding, tsv=fmt == "tsv")
    text = st.one_of(
        st.text(st.sampled_from(alphabet), max_size=12),
        st.text(st.sampled_from(alphabet), min_size=1, max_size=4).map(lambda s: s * 2000),  # a long line
        st.sampled_from(["", " ", "text", "label", "NaN", "null", "None", "1", '"', '""']),
    )
    label = st.one_of(
        st.sampled_from(["pos", "neg", "1", "0", "2.5", "-3", "", " ", "a,b", "NA"]),
        st.integers(-5, 5) if fmt == "jsonl" else st.nothing(),
    )
    rows = draw(st.lists(st.tuples(text, label), min_size=1, max_size=12))
    return fmt, encoding, rows


def _physical_lines(text: str) -> int:
    """Lines as the csv reader counts them (any of \\n, \\r, \\r\\n ends one)."""
    return len(io.StringIO(text, newline="").readlines())


def _write(path: Path, fmt: str, encoding: str, rows, broken: str | None) -> int | None:
    """Write ``rows`` under a header ``text,label``; with ``broken``, spoil one extra last line and return its
    line number (None when the file is valid)."""
    out = io.StringIO(newline="")
    if fmt == "jsonl":
        for text, label in rows:
            out.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        # csv's own line ending, \r\n: with "\n" alone a cell's bare "\r" goes unquoted (not valid CSV).
        writer = csv.writer(out)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    else:
        out.write("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))
    body = out.getvalue()
    bad_line = None
    if broken is not None:
        bad_line = _physical_lines(body) + 1
        body += {
            ("csv", "fields"): "a,b,c\n",
            ("csv", "quote"): '"abc"d,pos\n',
            ("tsv", "fields"): "a\tb\tc\n",
            ("jsonl", "fields"): '{"text": "a", "label": \n',
            ("jsonl", "quote"): '["not", "an object"]\n',
        }.get((fmt, broken), "x\tpos\n" if fmt == "tsv" else "x,pos\n")
    data = body.encode(encoding)
    if broken == "bytes":  # bytes that are no UTF-8 text, on the last line (only asked of UTF-8 files)
        data = data[: -len(b"pos\n")] + b"\xff\xfe\xff"
    path.write_bytes(data)
    return bad_line


def _missing(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@SETTINGS
@given(table=tables(), broken=st.sampled_from([None, None, "fields", "quote", "bytes"]))
def test_readers_return_every_row_or_name_the_file_and_line(tmp_path_factory, table, broken):
    fmt, encoding, rows = table
    if (broken == "bytes" and "utf-8" not in encoding) or (broken == "quote" and fmt == "tsv"):
        broken = None  # latin-1 has no invalid bytes, utf-16 is not spoilt this way; TSV reads quotes verbatim
    path = tmp_path_factory.mktemp("prop") / f"data.{fmt}"
    bad_line = _write(path, fmt, encoding, rows, broken)
    read = lambda: load_data(path, encoding=encoding, header=None if fmt == "jsonl" else True,  # noqa: E731
                             skip_bad_rows=True)  # fmt: skip
    kept = [(t, lab) for t, lab in rows if not _missing(t) and not _missing(lab)]
    if bad_line is not None or not kept:
        with pytest.raises(DataError) as error:
            read()
        message = str(error.value)
        assert str(path) in message
        if bad_line is not None:
            assert f"line {bad_line}" in message, message
        return
    data = read()
    assert len(data.texts) + len(data.skipped) == len(rows)  # nothing silently lost
    assert data.texts == [t for t, _ in kept]
    assert [str(v) for v in data.labels] == [str(lab) for _, lab in kept]
    assert all(str(path) in message and " line " in message for message in data.skipped)


def test_a_decoding_error_counts_lines_as_the_csv_reader_does(tmp_path):
    # Found by the property test: a quoted cell holding a lone "\r" is two lines to the csv reader (so to its
    # "malformed row" messages) but was one line to the decoding error, which then named the wrong line.
    path = tmp_path / "data.csv"
    path.write_bytes(b'text,label\r\n"a\rb",pos\r\nok,neg\r\nx,\xff\r\n')
    with pytest.raises(DataError, match=r"data.csv line 5: bytes are not valid utf-8"):
        load_data(path)
    path.write_bytes(b'text,label\r\n"a\rb",pos\r\nok,neg\r\nx,y,z\r\n')
    with pytest.raises(DataError, match=r"data.csv line 5: malformed row with 3 fields"):
        load_data(path)
