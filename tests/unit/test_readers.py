"""read_table: every supported format, GLUE-style quirks, and one clear DataError per kind of bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from bertkit.data.dataset import load_file
from bertkit.data.readers import Source, read_table
from bertkit.exceptions import DataError

MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def at(path: Path, line: int, unit: str = "line") -> str:
    """Regex for the start of a located message: '<path> line 3'."""
    return re.escape(f"{path} {unit} {line}")


# ---------------------------------------------------------------------------------------------- good input


def test_csv_with_quoted_commas_and_quotes(tmp_path):
    path = write(tmp_path / "train.csv", 'text,label\n"Hello, world",pos\n"She said ""hi"", then left",neg\n')
    table = read_table(path)
    assert list(table.frame.columns) == ["text", "label"]
    assert table.frame["text"].tolist() == ["Hello, world", 'She said "hi", then left']
    assert table.frame["label"].tolist() == ["pos", "neg"]
    assert table.source == Source(str(path), (2, 3), "line")
    assert table.source.where(1) == f"{path} line 3"


def test_csv_cells_stay_strings(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,1\nb,0.5\n")
    frame = read_table(path).frame
    assert frame["label"].tolist() == ["1", "0.5"]
    assert all(isinstance(v, str) for v in frame["label"])


def test_csv_record_with_quoted_line_break_is_numbered_by_its_first_line(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\n"first part\nsecond part",pos\nnext,neg\n')
    table = read_table(path)
    assert table.frame["text"].tolist() == ["first part\nsecond part", "next"]
    assert table.source.lines == (2, 4)


def test_header_cells_are_stripped(tmp_path):
    path = write(tmp_path / "d.csv", " text , label \nhello,pos\n")
    assert list(read_table(path).frame.columns) == ["text", "label"]


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\r\nhello,pos\r\nbye,neg\r\n")
    table = read_table(path)
    assert table.frame.values.tolist() == [["hello", "pos"], ["bye", "neg"]]
    assert table.source.lines == (2, 3)


def test_tsv_keeps_stray_quotes_verbatim(tmp_path):
    # GLUE's SST-2 and MRPC: unbalanced quotes inside sentences must not swallow the following lines.
    content = (
        "sentence\tlabel\n"
        "it 's a \"charming journey \t1\n"
        '" opens with a quote\t0\n'
        'ends with a quote "\t1\n'
        'a ""doubled"" one\t0\n'
    )
    table = read_table(write(tmp_path / "train.tsv", content))
    assert table.frame["sentence"].tolist() == [
        "it 's a \"charming journey ",
        '" opens with a quote',
        'ends with a quote "',
        'a ""doubled"" one',
    ]
    assert table.frame["label"].tolist() == ["1", "0", "1", "0"]
    assert table.source.lines == (2, 3, 4, 5)


def test_txt_is_read_as_tsv(tmp_path):
    table = read_table(write(tmp_path / "d.txt", "text\tlabel\na, b\tx\n"))
    assert table.frame.values.tolist() == [["a, b", "x"]]


@pytest.mark.parametrize("encoding", ["utf-8", "UTF-8", "utf8", "utf_8"])
def test_utf8_byte_order_mark_is_dropped(tmp_path, encoding):
    content = (
        f"{MRPC_HEADER}\n"
        '1\t702876\t702977\tAmrozi accused his brother , whom he called " the witness " .\tReferring to him .\n'
        "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n"
    )
    table = read_table(write(tmp_path / "train.tsv", b"\xef\xbb\xbf" + content.encode()), encoding=encoding)
    assert list(table.frame.columns) == ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    assert table.frame["Quality"].tolist() == ["1", "0"]
    assert table.frame["#1 String"][0] == 'Amrozi accused his brother , whom he called " the witness " .'
    assert table.source.lines == (2, 3)


def test_headerless_tsv_cola_style(tmp_path):
    content = (
        "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n"
        "gj04\t0\t*\tThey drank the pub.\n"
        "\n"
        "gj04\t1\t\tThe more we study verbs, the crazier they get.\n"
    )
    table = read_table(write(tmp_path / "in_domain_train.tsv", content))
    assert list(table.frame.columns) == ["0", "1", "2", "3"]
    assert table.frame["1"].tolist() == ["1", "0", "1"]
    assert table.frame["2"].tolist() == ["", "*", ""]
    assert table.frame["3"][1] == "They drank the pub."
    assert table.source.lines == (1, 2, 4)
    assert table.source.where(0) == f"{tmp_path / 'in_domain_train.tsv'} line 1"


def test_headerless_csv_ag_news_style(tmp_path):
    content = '"Wall St. Bears Claw Back Into the Black (Reuters)",2\n"Oil, prices soar",2\n"Phelps wins gold",1\n'
    table = read_table(write(tmp_path / "train.csv", content))
    assert list(table.frame.columns) == ["0", "1"]
    assert table.frame["0"].tolist() == [
        "Wall St. Bears Claw Back Into the Black (Reuters)",
        "Oil, prices soar",
        "Phelps wins gold",
    ]
    assert table.frame["1"].tolist() == ["2", "2", "1"]
    assert table.source.lines == (1, 2, 3)


def test_header_can_be_forced_either_way(tmp_path):
    path = write(tmp_path / "d.csv", "great,pos\nawful,neg\n")
    detected = read_table(path)
    assert list(detected.frame.columns) == ["great", "pos"]  # short distinct words look like a header
    forced = read_table(path, header=False)
    assert list(forced.frame.columns) == ["0", "1"]
    assert forced.frame["0"].tolist() == ["great", "awful"]
    numeric = write(tmp_path / "n.csv", "1,2\n3,4\n")
    assert list(read_table(numeric, header=True).frame.columns) == ["1", "2"]


def test_blank_lines_are_skipped_and_lines_still_count(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n\nhello,pos\n\n\nbye,neg\n\n")
    table = read_table(path)
    assert table.frame["text"].tolist() == ["hello", "bye"]
    assert table.source.lines == (3, 6)


def test_a_blank_line_between_texts_of_a_one_column_file_is_an_empty_text_not_a_lost_row(tmp_path):
    # Embeddings are written in row order without ids: a dropped row would shift every vector after it.
    path = write(tmp_path / "texts.csv", "text\n\ngood\n\nbad\n   \nfine\n\n\n")
    table = read_table(path)
    assert table.frame["text"].tolist() == ["good", "", "bad", "", "fine"]  # leading and trailing blanks: nothing
    assert table.source.lines == (3, 4, 5, 6, 7)
    with pytest.raises(DataError, match=r"texts.csv line 4: column 'text' is empty; every row needs a text"):
        load_file(path, need_label=False)
    headerless = write(tmp_path / "plain.csv", "good\n\nbad\n")
    assert read_table(headerless, header=False).frame["0"].tolist() == ["good", "", "bad"]


def test_jsonl(tmp_path):
    lines = [
        json.dumps({"text": "hello", "label": 1}),
        "",
        json.dumps({"text": "bye", "label": 0, "extra": [1, 2]}),
        "   ",
        json.dumps({"text": "line\u2028separator and \x85 next-line inside a string", "label": 1}, ensure_ascii=False),
    ]
    table = read_table(write(tmp_path / "d.jsonl", "\n".join(lines) + "\n"))
    assert table.frame["text"].tolist()[:2] == ["hello", "bye"]
    assert table.frame["text"][2] == "line\u2028separator and \x85 next-line inside a string"
    assert table.frame["label"].tolist() == [1, 0, 1]  # JSON values keep their types
    assert table.source == Source(str(tmp_path / "d.jsonl"), (1, 3, 5), "line")


def test_json_array(tmp_path):
    records = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]
    path = write(tmp_path / "d.json", "\n" + json.dumps(records, indent=2))
    table = read_table(path)
    assert table.frame.to_dict("records") == records
    assert table.source.unit == "record"
    assert table.source.where(1) == f"{path} record 2"


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 1]}, index=[10, 11, 12]).to_parquet(path)
    table = read_table(path)
    assert table.frame["text"].tolist() == ["a", "b", "c"]
    assert table.frame["label"].tolist() == [0, 1, 1]
    assert list(table.frame.index) == [0, 1, 2]
    assert table.source.unit == "row"
    assert table.source.where(0) == f"{path} row 1"


# ----------------------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=re.escape(f"{path}: file not found; check the path")):
        read_table(path)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: is a folder, not a file; pass a data file (.csv")):
        read_table(tmp_path)


@pytest.mark.parametrize("name", ["empty.csv", "empty.tsv", "empty.jsonl"])
@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError, match=re.escape(f"{path}: file is empty; it needs at least one row of data")):
        read_table(path)


def test_file_with_only_a_byte_order_mark_is_empty(tmp_path):
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbf\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: file is empty")):
        read_table(path)


def test_header_only_file(tmp_path):
    path = write(tmp_path / "head.csv", "text,label\n\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: file has a header line but no data rows")):
        read_table(path)


def test_empty_parquet(tmp_path):
    path = tmp_path / "empty.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=object)}).to_parquet(path)
    with pytest.raises(DataError, match=re.escape(f"{path}: file is empty")):
        read_table(path)


def test_empty_parquet_streamed_is_the_same_error(tmp_path):
    from bertkit.data.readers import iter_tables

    path = tmp_path / "empty.parquet"
    pd.DataFrame({"foo": pd.Series([], dtype=object)}).to_parquet(path)
    with pytest.raises(DataError, match=re.escape(f"{path}: file is empty; it needs at least one row of data")):
        list(iter_tables(path, chunk_rows=10))


def test_parquet_integer_column_with_a_null_keeps_exact_integers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bertkit.data.readers import iter_tables

    path = tmp_path / "ids.parquet"
    ids = [1234567890123456789, None, 3]
    big = [2**63 + 5, None, 1]
    pq.write_table(
        pa.table({"id": pa.array(ids, pa.int64()), "u": pa.array(big, pa.uint64()), "text": [1, None, 2]}), path
    )
    for frame in (read_table(path).frame, pd.concat([t.frame for t in iter_tables(path, chunk_rows=2)])):
        assert frame["id"].tolist() == ids
        assert frame["u"].tolist() == big
        assert frame["text"].tolist() == [1, None, 2]
    data = load_file(path, need_label=False, skip_bad_rows=True)
    assert data.texts == ["1", "2"]  # not "1.0": the model reads the integer as written


def test_corrupt_parquet(tmp_path):
    path = write(tmp_path / "bad.parquet", b"this is not parquet at all")
    with pytest.raises(DataError, match=re.escape(f"{path}: not a readable Parquet file")):
        read_table(path)


BAD_BYTE = b"\xe9"
LATIN1 = "text,label\nfine,pos\ncaf\xe9 au lait,neg\n".encode("latin-1")


def test_non_utf8_bytes_name_the_line_and_suggest_encoding(tmp_path):
    path = write(tmp_path / "latin.csv", LATIN1)
    with pytest.raises(DataError, match=at(path, 3) + r": bytes are not valid utf-8 .*--encoding latin-1") as info:
        read_table(path)
    assert f"at byte {LATIN1.index(BAD_BYTE)}" in str(info.value)


def test_non_utf8_line_is_right_after_a_byte_order_mark(tmp_path):
    raw = b"\xef\xbb\xbf" + LATIN1
    path = write(tmp_path / "bom_latin.csv", raw)
    with pytest.raises(DataError, match=at(path, 3) + r": bytes are not valid utf-8") as info:
        read_table(path)
    assert f"at byte {raw.index(BAD_BYTE)}" in str(info.value)


def test_non_utf8_jsonl_names_the_line(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"text": "ok"}\n\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=at(path, 3) + r": bytes are not valid utf-8.*--encoding"):
        read_table(path)


def test_latin1_encoding_reads_the_same_file(tmp_path):
    path = write(tmp_path / "latin.csv", LATIN1)
    table = read_table(path, encoding="latin-1")
    assert table.frame["text"].tolist() == ["fine", "café au lait"]
    assert table.source.lines == (2, 3)


def test_unknown_encoding(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,b\n")
    with pytest.raises(DataError, match=r"--encoding 'klingon' is not a known text encoding \(try utf-8, latin-1\)"):
        read_table(path, encoding="klingon")


def test_csv_row_with_wrong_number_of_fields(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ngood,pos\n\nhello, world,neg\nbye,neg\n")
    expected = at(path, 4) + re.escape(
        ": malformed row with 3 fields, the header has 2 (text, label); check the delimiter"
    )
    with pytest.raises(DataError, match=expected):
        read_table(path)


def test_headerless_row_with_wrong_number_of_fields(tmp_path):
    path = write(tmp_path / "cola.tsv", "gj04\t1\t\tfine .\ngj04\t0\tbroken .\n")
    with pytest.raises(DataError, match=at(path, 2) + r": malformed row with 3 fields, the header has 4"):
        read_table(path)


def test_csv_bad_quoting_names_the_line(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\nok,pos\n\n"quoted"tail,neg\n')
    with pytest.raises(DataError, match=at(path, 4) + r": malformed row \(.*\); fix the quoting on that line"):
        read_table(path)


def test_csv_unclosed_quote_names_the_line_where_it_opens(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\nok,pos\n"never closed,neg\nmore,pos\n')
    with pytest.raises(DataError, match=at(path, 3) + r": malformed row \(unexpected end of data\)"):
        read_table(path)


def test_malformed_jsonl_line(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a"}\n\n{"text": "b",}\n')
    with pytest.raises(DataError, match=at(path, 3) + r": malformed JSON \(.*\); each line must be one JSON object"):
        read_table(path)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a"}\n["b", 1]\n')
    with pytest.raises(DataError, match=at(path, 2) + r": expected a JSON object, got list"):
        read_table(path)


def test_json_array_item_that_is_not_an_object(tmp_path):
    path = write(tmp_path / "d.json", '[{"text": "a"}, "b"]')
    with pytest.raises(DataError, match=at(path, 2, "record") + r": expected a JSON object, got str"):
        read_table(path)


def test_invalid_json_array_names_the_line(tmp_path):
    path = write(tmp_path / "d.json", '\n\n[\n  {"text": "a"},\n  {"text": }\n]\n')
    with pytest.raises(DataError, match=at(path, 5) + r": invalid JSON"):
        read_table(path)


@pytest.mark.parametrize(("name", "shown"), [("d.xlsx", "'.xlsx'"), ("README", "'(none)'")])
def test_unsupported_suffix(tmp_path, name, shown):
    path = write(tmp_path / name, "text,label\na,b\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: unsupported file type {shown}; use .csv, .tsv, .jsonl")):
        read_table(path)


def test_headerless_tsv_goemotions_style_with_an_id_list_first(tmp_path):
    content = "So happy for you!\t2,15\teeb1\nWhat\t27\teeb2\n"
    table = read_table(write(tmp_path / "train.tsv", content))
    assert list(table.frame.columns) == ["0", "1", "2"]
    assert table.frame["1"].tolist() == ["2,15", "27"]
    assert table.source.lines == (1, 2)


def test_jsonl_integers_beside_a_null_stay_integers(tmp_path):
    """A column of ints with one null must not come back as floats (label 1 as 1.0, text 5 as "5.0")."""
    from bertkit import load_data

    rows = [
        {"text": 5, "label": 1},
        {"text": None, "label": 0},
        {"text": "ok", "label": None},
        {"text": "a", "label": 2},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    data = load_data(path, skip_bad_rows=True)
    assert data.texts == ["5", "a"]
    assert data.labels == [1, 2] and all(type(label) is int for label in data.labels)
    assert len(data.skipped) == 2


def test_a_quoted_empty_first_text_of_a_one_column_file_is_a_row_not_nothing(tmp_path):
    # csv.writer (and pandas) write a row holding one empty text as "": unlike a blank line it is always a row,
    # first or not, and a file that starts with one has no header line.
    path = write(tmp_path / "texts.csv", '""\ngood\n""\nbad\n')
    table = read_table(path)
    assert table.frame["0"].tolist() == ["", "good", "", "bad"]
    assert table.source.lines == (1, 2, 3, 4)
    with pytest.raises(DataError, match=r"texts.csv line 1: column '0' is empty; every row needs a text"):
        load_file(path, need_label=False)
    headed = write(tmp_path / "headed.csv", 'text\n""\ngood\n')
    assert read_table(headed).frame["text"].tolist() == ["", "good"]
    columns = write(tmp_path / "columns.csv", 'text,label\n""\ngood,pos\n')  # a lone "" among columns: a blank line
    assert read_table(columns).frame["text"].tolist() == ["good"]
