"""Prediction writers: an OSError while writing or finishing the output (a full disk, a path the system refuses)
is one DataError line naming --output, leaves no partial file, and leaves an earlier output as it was."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from bertkit.data.writers import TableWriter, partial_path, written_file
from bertkit.exceptions import DataError

SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
FRAME = pd.DataFrame({"text": ["a film", "a plot"], "label": ["positive", "negative"]})


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


def _earlier(tmp_path, suffix):
    output = tmp_path / f"out{suffix}"
    output.write_bytes(b"an earlier run's output\n")
    return output


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_table_writer_full_disk_at_the_end_is_a_data_error_and_leaves_no_partial(tmp_path, monkeypatch, suffix):
    output = _earlier(tmp_path, suffix)
    monkeypatch.setattr(os, "replace", _no_space)
    message = rf"^{output}: cannot write the output \(No space left on device\); choose another --output$"
    with pytest.raises(DataError, match=message), TableWriter(output) as writer:
        writer.write(FRAME)
        writer.write(FRAME)
    assert output.read_bytes() == b"an earlier run's output\n"
    assert [p.name for p in tmp_path.iterdir()] == [output.name]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_table_writer_that_cannot_open_its_partial_file_is_a_data_error(tmp_path, suffix):
    output = _earlier(tmp_path, suffix)
    partial_path(output).mkdir()  # root ignores chmod; a folder in the way fails the open for anyone
    message = rf"^{output}: cannot write the output \(.+\); choose another --output$"
    with pytest.raises(DataError, match=message), TableWriter(output) as writer:
        writer.write(FRAME)
    assert output.read_bytes() == b"an earlier run's output\n"
    assert partial_path(output).is_dir()  # not ours to delete
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([output.name, partial_path(output).name])


def test_an_error_in_the_block_is_not_hidden_by_a_failing_finish(tmp_path, monkeypatch):
    output = _earlier(tmp_path, ".csv")
    monkeypatch.setattr(os, "replace", _no_space)
    with pytest.raises(MemoryError), TableWriter(output) as writer:
        writer.write(FRAME)
        raise MemoryError("out of memory")
    assert [p.name for p in tmp_path.iterdir()] == [output.name]


def test_written_file_and_table_writer_say_the_same_line(tmp_path, monkeypatch):
    output = _earlier(tmp_path, ".csv")
    monkeypatch.setattr(os, "replace", _no_space)
    messages = []
    with pytest.raises(DataError) as table_error, TableWriter(output) as writer:
        writer.write(FRAME)
    messages.append(str(table_error.value))
    with pytest.raises(DataError) as file_error, written_file(output) as partial:
        partial.write_text("rows\n")
    messages.append(str(file_error.value))
    assert messages[0] == messages[1]
    assert output.read_bytes() == b"an earlier run's output\n" and [p.name for p in tmp_path.iterdir()] == [output.name]


def test_tsv_output_reads_back_as_written_whatever_its_quotes(tmp_path):
    from bertkit.data.readers import read_table

    texts = ['say "hi" now', '"quoted text"', "it's \"odd", "plain"]
    frame = pd.DataFrame({"text": texts, "label": ["pos", "neg", "pos", "neg"]})
    source = tmp_path / "in.tsv"
    with TableWriter(source) as writer:
        writer.write(frame)
    assert source.read_text(encoding="utf-8").splitlines()[1] == 'say "hi" now\tpos'  # unquoted, as GLUE's files
    for round_trip in range(2):  # the TSV reader reads quotes as text: none added on the way back
        output = tmp_path / f"out{round_trip}.tsv"
        with TableWriter(output) as writer:
            writer.write(read_table(source).frame)
        assert read_table(output).frame["text"].tolist() == texts
        source = output


@pytest.mark.parametrize(("value", "what"), [("a\tb", "a tab"), ("a\nb", "a line break"), ("a\rb", "a line break")])
def test_tsv_output_refuses_a_value_it_cannot_hold_naming_row_and_column(tmp_path, value, what):
    output = _earlier(tmp_path, ".tsv")
    message = (
        rf"^{output} row 4, column 'text': the value holds {what}, which a \.tsv file cannot hold \(TSV is written "
        r"unquoted, as GLUE-style readers read it\); write the output as \.csv, \.jsonl or \.parquet instead$"
    )
    with pytest.raises(DataError, match=message), TableWriter(output) as writer:
        writer.write(FRAME)
        writer.write(pd.DataFrame({"text": ["fine", value], "label": ["positive", "negative"]}))
    assert output.read_bytes() == b"an earlier run's output\n"
    empty = r"row 1, column 'text': the value is empty, which a one-column \.tsv"
    with pytest.raises(DataError, match=empty), TableWriter(tmp_path / "one.tsv") as writer:
        writer.write(pd.DataFrame({"text": [""]}))


def test_jsonl_output_keeps_floats_exact_and_dates_iso(tmp_path):
    import datetime
    import json

    import numpy as np

    floats = [1.2345678901234567, 0.000000000012345, 1e-300, 3.141592653589793]
    frame = pd.DataFrame(
        {
            "x": floats,
            "score": np.array([0.7, 0.1, 0.25, 0.3333], dtype=np.float32),
            "when": [pd.Timestamp("2020-01-01 10:00:00.5"), pd.NaT, pd.Timestamp("2021-06-30"), pd.NaT],
            "day": [datetime.date(2020, 1, 2), None, None, None],
            "meta": [{"a": [1, 2]}, None, [1.5, float("nan")], "text"],
        }
    )
    output = tmp_path / "out.jsonl"
    with TableWriter(output) as writer:
        writer.write(frame)
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["x"] for row in rows] == floats
    assert [row["score"] for row in rows] == [0.7, 0.1, 0.25, 0.3333]  # float32's own digits, not 0.699999988
    assert [row["when"] for row in rows] == ["2020-01-01T10:00:00.500000", None, "2021-06-30T00:00:00", None]
    assert rows[0]["day"] == "2020-01-02"
    assert [row["meta"] for row in rows] == [{"a": [1, 2]}, None, [1.5, None], "text"]


def test_parquet_output_writes_columns_of_mixed_values(tmp_path):
    import pyarrow.parquet as pq

    frame = pd.DataFrame(
        {
            "id": pd.Series([1, "x2", None], dtype=object),
            "big": pd.Series([12345678901234567890, None, 1], dtype=object),
            "huge": pd.Series([2**70, -1, None], dtype=object),
            "label": pd.Series([["a", "b"], "c", None], dtype=object),
            "score": [0.5, 0.25, 0.125],
        }
    )
    output = tmp_path / "out.parquet"
    with TableWriter(output) as writer:
        writer.write(frame)
    table = pq.read_table(output)
    assert [str(t) for t in table.schema.types] == ["string", "uint64", "string", "string", "double"]
    assert table.to_pydict() == {
        "id": ["1", "x2", None],
        "big": [12345678901234567890, None, 1],
        "huge": [str(2**70), "-1", None],
        "label": ['["a", "b"]', "c", None],
        "score": [0.5, 0.25, 0.125],
    }
