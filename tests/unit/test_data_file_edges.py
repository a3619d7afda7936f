"""Unusual data files: each one a single clear DataError, never a traceback or a silent wrong answer."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from bertkit.data.dataset import load_file
from bertkit.data.readers import read_table
from bertkit.data.writers import TableWriter
from bertkit.exceptions import DataError
from bertkit.qa.squad import read_squad
from bertkit.runs import clear_output_folder
from bertkit.tagging.conll import load_tagged


def test_repeated_header_name_is_named(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("text,text,label\ngreat film,x,pos\nbad film,y,neg\n")
    for header in (None, True):
        with pytest.raises(DataError, match=r"line 1: the header names column 'text' more than once"):
            read_table(path, header=header)


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (gzip.compress(b"text,label\na,b\n"), "gzip-compressed"),
        (b"PAR1\x15\x04\x15", "a Parquet file"),
        ("text,label\ngreat film,pos\n".encode("utf-16-le"), "--encoding utf-16-le"),
        ("text,label\ngreat film,pos\n".encode("utf-16"), r"is UTF-16 text \(it starts with a byte-order mark\)"),
    ],
    ids=["gzip", "parquet", "utf16", "utf16-bom"],
)
def test_binary_or_utf16_file_read_as_text_says_what_it_is(tmp_path, raw, said):
    for name in ("data.csv", "data.jsonl"):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(DataError, match=said):
            read_table(tmp_path / name)


@pytest.mark.parametrize("value", [{"a": "great film"}, ["great", "film"]])
def test_nested_value_as_text_is_refused(tmp_path, value):
    path = tmp_path / "nested.jsonl"
    path.write_text(json.dumps({"text": value, "label": "pos"}) + "\n")
    with pytest.raises(DataError, match=r"nested.jsonl line 1: column 'text' holds a (dict|list), not a text"):
        load_file(path, need_label=False)
    frame = pd.DataFrame({"text": [np.array(["a", "b"])], "label": ["pos"]})
    frame.to_parquet(tmp_path / "list.parquet")
    with pytest.raises(DataError, match="row 1: column 'text' holds a ndarray"):
        load_file(tmp_path / "list.parquet", need_label=False)


def test_output_below_a_file_is_a_data_error(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        TableWriter(tmp_path / "plain" / "out.csv")


def test_squad_answer_start_outside_context_and_bom(tmp_path):
    context = "the film was great and the plot was dull"
    qa = {"id": "q", "question": "how?", "answers": [{"text": "was", "answer_start": -8}]}
    squad = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]}
    (tmp_path / "neg.json").write_text(json.dumps(squad))
    with pytest.raises(DataError, match="answer_start"):
        read_squad(tmp_path / "neg.json")
    qa["answers"][0]["answer_start"] = 9
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(squad).encode())
    assert len(read_squad(tmp_path / "bom.json")) == 1
    with pytest.raises(DataError, match="is a folder"):
        read_squad(tmp_path)


def test_conll_with_byte_order_mark_and_docstart(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_bytes(b"\xef\xbb\xbf-DOCSTART- -X- -X- O\n\nParis NNP I-NP B-LOC\nis VBZ I-VP O\n")
    data = load_tagged(path)
    assert data.tokens == [["Paris", "is"]]
    with pytest.raises(DataError, match="is a folder"):
        load_tagged(tmp_path)


def test_overwrite_into_a_new_folder_keeps_this_runs_history(tmp_path):
    (tmp_path / "history.jsonl").write_text("{}\n")
    clear_output_folder(tmp_path, keep=("history.jsonl",))  # raised ConfigError: "holds 'history.jsonl'"
    assert (tmp_path / "history.jsonl").exists()
