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
