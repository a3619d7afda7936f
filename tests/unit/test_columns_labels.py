"""Column inference, label normalisation and encoding, and validation of files and in-memory lists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bertkit.data.columns import Columns, choose_columns
from bertkit.data.dataset import from_lists, load_file
from bertkit.data.labels import (
    class_order,
    encode_labels,
    is_missing,
    normalize_labels,
    sorted_classes,
    unseen_labels,
)
from bertkit.exceptions import ConfigError, DataError


def frame(columns: list[str], *rows: list[str]) -> pd.DataFrame:
    return pd.DataFrame([list(r) for r in rows], columns=columns, dtype=object)


def write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ choose_columns


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["text", "label"], Columns("text", None, "label")),
        (["id", "sentence", "label"], Columns("sentence", None, "label")),
        (["review", "sentiment"], Columns("review", None, "sentiment")),
        (["Review", "Rating"], Columns("Review", None, "Rating")),  # case-insensitive, original spelling kept
        (["tweet", "target"], Columns("tweet", None, "target")),
        (["content", "stars"], Columns("content", None, "stars")),
        (["index", "sentence1", "sentence2", "label"], Columns("sentence1", "sentence2", "label")),  # RTE
        (["genre", "sentence1", "sentence2", "score"], Columns("sentence1", "sentence2", "score")),  # STS-B
        (
            ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],  # MRPC
            Columns("#1 String", "#2 String", "Quality"),
        ),
        (["premise", "hypothesis", "gold_label"], Columns("premise", "hypothesis", "gold_label")),
        (["question1", "question2", "is_duplicate", "label"], Columns("question1", "question2", "label")),
        (["index", "question", "sentence", "label"], Columns("question", "sentence", "label")),  # QNLI
        (["text", "text_pair", "labels"], Columns("text", "text_pair", "labels")),
    ],
)
def test_well_known_names(columns, expected):
    data = frame(columns, [f"v{i}" for i in range(len(columns))])
    assert choose_columns(data, "f.csv") == expected


def test_sentence1_without_sentence2_is_a_single_text():
    assert choose_columns(frame(["sentence1", "label"], ["a", "b"]), "f") == Columns("sentence1", None, "label")


COLA_ROWS = [
    ["gj04", "1", "", "Our friends won't buy this analysis, let alone the next one we propose."],
    ["gj04", "0", "*", "They drank the pub."],
    ["bc01", "1", "", "The more we study verbs, the crazier they get."],
]


def test_headerless_cola_shape():
    assert choose_columns(frame(["0", "1", "2", "3"], *COLA_ROWS), "cola.tsv") == Columns("3", None, "1")


def test_headerless_ag_news_shape():
    rows = [["Wall St. Bears Claw Back Into the Black", "2"], ["Phelps wins gold", "1"], ["New chip", "3"]]
    assert choose_columns(frame(["0", "1"], *rows), "ag.csv") == Columns("0", None, "1")


def test_headerless_goemotions_shape():
    rows = [
        ["My favourite food is anything I didn't cook myself.", "27", "eebbqej"],
        ["WHY THE FUCK", "2,15", "ed00q6i"],
    ]
    assert choose_columns(frame(["0", "1", "2"], *rows), "go.tsv") == Columns("0", None, "1")


def test_explicit_flags_win():
    data = frame(["text", "title", "label", "stars"], ["a", "b", "c", "d"])
    assert choose_columns(data, "f", text="title", label="stars") == Columns("title", None, "stars")
    assert choose_columns(data, "f", text="title", pair="text") == Columns("title", "text", "label")
    cola = frame(["0", "1", "2", "3"], *COLA_ROWS)
    assert choose_columns(cola, "f", text="0", label="2") == Columns("0", None, "2")


def test_label_is_optional_when_not_needed():
    assert choose_columns(frame(["text", "id"], ["a", "1"]), "f", need_label=False) == Columns("text", None, None)


def test_no_text_column_lists_the_columns():
    with pytest.raises(
        DataError,
        match=re.escape("f.csv: no text column found; name it with --text-column (columns found: 'foo', 'label')"),
    ):
        choose_columns(frame(["foo", "label"], ["a", "b"]), "f.csv")


def test_no_label_column_lists_the_columns():
    with pytest.raises(
        DataError,
        match=re.escape("f.csv: no label column found; name it with --label-column (columns found: 'text', 'foo')"),
    ):
        choose_columns(frame(["text", "foo"], ["a", "b"]), "f.csv")


@pytest.mark.parametrize(
    ("flags", "flag_name", "value"),
    [
        ({"text": "body"}, "--text-column", "body"),
        ({"pair": "sentence2"}, "--text-pair-column", "sentence2"),
        ({"label": "Label"}, "--label-column", "Label"),
    ],
)
def test_flag_naming_a_missing_column(flags, flag_name, value):
    expected = f"f.csv: {flag_name} '{value}' is not a column; columns found: 'text', 'label'"
    with pytest.raises(DataError, match=re.escape(expected)):
        choose_columns(frame(["text", "label"], ["a", "b"]), "f.csv", **flags)


def test_label_cannot_be_the_text():
    with pytest.raises(DataError, match=re.escape("f.csv: column 'text' cannot be both the text and the label")):
        choose_columns(frame(["text", "label"], ["a", "b"]), "f.csv", label="text")


# ---------------------------------------------------------------------------------------- normalize_labels


def test_string_labels_are_classification_kept_as_strings():
    task, labels = normalize_labels(["positive", " negative ", "positive"], "auto")
    assert task == "classification"
    assert labels == ["positive", "negative", "positive"]


def test_integer_strings_become_ints():
    task, labels = normalize_labels(["0", "1", " 2", "-1"], "auto")
    assert (task, labels) == ("classification", [0, 1, 2, -1])
    assert all(type(v) is int for v in labels)


def test_float_strings_with_decimals_are_regression():
    task, labels = normalize_labels(["0.5", "3", "4.75"], "auto")
    assert (task, labels) == ("regression", [0.5, 3.0, 4.75])
    assert all(type(v) is float for v in labels)


def test_whole_float_strings_are_regression():
    assert normalize_labels(["1.0", "2.0"], "auto") == ("regression", [1.0, 2.0])


def test_python_lists_are_multi_label():
    task, labels = normalize_labels([["b", "a", "b"], [], ("c",)], "auto")
    assert (task, labels) == ("multi-label", [["a", "b"], [], ["c"]])


def test_numpy_arrays_are_multi_label_with_python_ints():
    task, labels = normalize_labels([np.array([3, 1]), np.array([2])], "auto")
    assert (task, labels) == ("multi-label", [[1, 3], [2]])
    assert type(labels[0][0]) is int


def test_comma_separated_id_lists_are_multi_label():
    task, labels = normalize_labels(["2,15", "27", " 3 , 4 ", "4,3,3"], "auto")
    assert (task, labels) == ("multi-label", [[2, 15], [27], [3, 4], [3, 4]])


def test_single_ids_without_any_comma_are_classification():
    assert normalize_labels(["27", "3"], "auto") == ("classification", [27, 3])


def test_commas_in_words_are_not_id_lists():
    assert normalize_labels(["good, really", "bad"], "auto") == ("classification", ["good, really", "bad"])


def test_mixing_lists_and_values_is_an_error():
    with pytest.raises(DataError, match="labels mix lists and single values; a multi-label column needs a list"):
        normalize_labels([["a"], "b"], "auto")


def test_non_string_values():
    assert normalize_labels([1, 0, 1], "auto") == ("classification", [1, 0, 1])
    task, labels = normalize_labels([np.int64(2), np.int64(0)], "auto")
    assert (task, labels) == ("classification", [2, 0]) and type(labels[0]) is int
    assert normalize_labels([0.25, 1.5], "auto") == ("regression", [0.25, 1.5])
    assert normalize_labels([1, 2.5], "auto") == ("regression", [1.0, 2.5])
    assert normalize_labels([1.0, 0.0], "auto") == ("regression", [1.0, 0.0])


def test_forced_classification():
    assert normalize_labels(["0.5", "1.5", "0.5"], "classification") == ("classification", [0.5, 1.5, 0.5])
    task, labels = normalize_labels([1.0, 0.0], "classification")
    assert (task, labels) == ("classification", [1, 0]) and type(labels[0]) is int
    assert normalize_labels(["2,15", "3"], "classification") == ("classification", ["2,15", "3"])


def test_forced_regression_on_numbers():
    task, labels = normalize_labels(["1", "2", "5"], "regression")
    assert (task, labels) == ("regression", [1.0, 2.0, 5.0])
    assert all(type(v) is float for v in labels)


def test_forced_multi_label():
    assert normalize_labels(["a, b", "c", "b,a"], "multi-label") == ("multi-label", [["a", "b"], ["c"], ["a", "b"]])
    assert normalize_labels(["1,2", "3"], "multi-label") == ("multi-label", [[1, 2], [3]])
    assert normalize_labels(["3"], "multi-label") == ("multi-label", [[3]])


@pytest.mark.parametrize("labels", [["pos", "neg"], ["1", "x"]])
def test_forced_regression_on_words_is_a_config_error(labels):
    with pytest.raises(ConfigError, match=rf"^label '{labels[-1] if labels[0] == '1' else labels[0]}' is not a number; "
                       r"--task regression needs numeric labels \(leave --task out"):  # fmt: skip
        normalize_labels(labels, "regression")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_forced_single_label_task_on_lists_is_a_config_error(task):
    with pytest.raises(ConfigError, match=f"--task {task} needs one label per row.*use --task multi-label"):
        normalize_labels([["a"], ["a", "b"]], task)


def test_is_missing():
    assert [is_missing(v) for v in (None, float("nan"), "", "  \t", np.nan)] == [True] * 5
    assert [is_missing(v) for v in (0, "0", " x ", [], False)] == [False] * 5


# ------------------------------------------------------------------------- sorted_classes / encode / unseen


def test_sorted_classes():
    assert sorted_classes([10, 2, 1, 2], "classification") == [1, 2, 10]
    assert sorted_classes(["pos", "neg", "pos"], "classification") == ["neg", "pos"]
    assert sorted_classes([[3, 1], [], [2, 1]], "multi-label") == [1, 2, 3]
    assert sorted_classes([2, "a", 10], "classification") == [10, 2, "a"]  # mixed types: by text


def test_encode_classification():
    target = encode_labels(["pos", "neg", "pos"], ["neg", "pos"], "classification")
    assert target.dtype == np.int64
    assert target.tolist() == [1, 0, 1]


def test_encode_multi_label():
    target = encode_labels([["b"], [], ["a", "c"]], ["a", "b", "c"], "multi-label")
    assert target.dtype == np.float32
    assert target.tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 1]]


def test_encode_regression():
    target = encode_labels([0.5, 4.25], [], "regression")
    assert target.dtype == np.float32
    assert target.tolist() == [0.5, 4.25]


def test_unseen_labels():
    assert unseen_labels(["a", "x", "b", "y"], ["a", "b"], "classification") == [(1, "x"), (3, "y")]
    assert unseen_labels([["a"], ["a", "z"]], ["a", "b"], "multi-label") == [(1, "z")]
    assert unseen_labels([9.5], [], "regression") == []


# --------------------------------------------------------------------------------------------- load_file


def test_load_file_resolves_columns_and_keeps_rows(tmp_path):
    path = write(
        tmp_path / "mrpc.tsv",
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA man .\tA person .\n0\t3\t4\tIt rains .\tIt's \"dry .\n",
    )
    data = load_file(path)
    assert data.columns == Columns("#1 String", "#2 String", "Quality")
    assert data.texts == ["A man .", "It rains ."]
    assert data.pairs == ["A person .", "It's \"dry ."]
    assert data.labels == ["1", "0"]  # still strings: typing happens in normalize_labels
    assert data.rows.tolist() == [0, 1]
    assert len(data) == 2 and data.skipped == []


def test_load_file_without_labels(tmp_path):
    data = load_file(write(tmp_path / "p.csv", "text,id\nhello,1\n"), need_label=False)
    assert data.labels is None and data.columns.label is None and data.texts == ["hello"]


BAD_ROWS = "text,label\ngood,pos\n,neg\n\nfine,\n   ,pos\nok,neg\n"


def test_empty_text_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "bad.csv", BAD_ROWS)
    expected = re.escape(f"{path} line 3: column 'text' is empty; every row needs a text (") + ".*--skip-bad-rows"
    with pytest.raises(DataError, match=expected):
        load_file(path)


def test_empty_label_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "bad.csv", "text,label\ngood,pos\n\nfine,\n")
    expected = re.escape(f"{path} line 4: column 'label' is empty; every row needs a label (") + ".*--skip-bad-rows"
    with pytest.raises(DataError, match=expected):
        load_file(path)


def test_empty_pair_is_reported(tmp_path):
    path = write(tmp_path / "rte.tsv", "sentence1\tsentence2\tlabel\na\tb\tentailment\nc\t \tentailment\n")
    with pytest.raises(
        DataError, match=re.escape(f"{path} line 3: column 'sentence2' is empty; every row needs a text")
    ):
        load_file(path)


def test_a_jsonl_record_without_a_key_is_told_so_and_a_null_is_empty(tmp_path):
    records = [{"text": "a", "label": 1}, {"text": "b"}, {"text": None, "label": 0}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in records))
    with pytest.raises(DataError, match=re.escape(f"{path} line 2: the record has no key 'label'; every row needs a")):
        load_file(path)
    data = load_file(path, skip_bad_rows=True)
    assert data.texts == ["a"]
    assert data.skipped[0].startswith(f"{path} line 2: the record has no key 'label'")
    assert data.skipped[1].startswith(f"{path} line 3: column 'text' is empty")


def test_skip_bad_rows_skips_and_counts(tmp_path):
    path = write(tmp_path / "bad.csv", BAD_ROWS)
    data = load_file(path, skip_bad_rows=True)
    assert data.texts == ["good", "ok"]
    assert data.labels == ["pos", "neg"]
    assert data.rows.tolist() == [0, 4]
    assert len(data.skipped) == 3
    assert data.skipped[0].startswith(f"{path} line 3: column 'text' is empty")
    assert data.skipped[1].startswith(f"{path} line 5: column 'label' is empty")
    assert data.skipped[2].startswith(f"{path} line 6: column 'text' is empty")


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    path = write(tmp_path / "bad.csv", "text,label\n,pos\nx,\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: no usable rows (2 skipped as empty)")):
        load_file(path, skip_bad_rows=True)


def test_subset_keeps_provenance(tmp_path):
    data = load_file(write(tmp_path / "d.csv", BAD_ROWS), skip_bad_rows=True)
    part = data.subset(np.array([1]))
    assert part.texts == ["ok"] and part.labels == ["neg"] and part.rows.tolist() == [4]
    assert part.source.where(int(part.rows[0])) == f"{tmp_path / 'd.csv'} line 7"


AG_NAMES = ["World", "Sports", "Business", "Sci/Tech"]


def test_label_names_map_single_ids(tmp_path):
    path = write(tmp_path / "ag.csv", '"Stocks fall",2\n"Team wins",1\n"New chip",3\n')
    data = load_file(path, label_names=AG_NAMES)
    assert data.columns == Columns("0", None, "1")
    assert data.labels == ["Business", "Sports", "Sci/Tech"]


def test_label_names_order_the_classes_so_that_class_i_is_id_i(tmp_path):
    from bertkit.classification.inputs import prepare_data
    from bertkit.config import TrainConfig

    rows = "".join(f'"story {i}",{i % 3}\n' for i in range(30))  # ids 0-2: Sci/Tech (3) is never a label
    data = load_file(write(tmp_path / "ag.csv", rows), label_names=AG_NAMES)
    assert data.subset(np.arange(5)).label_names == AG_NAMES  # held-out and capped parts keep them
    fit = prepare_data(data, None, None, TrainConfig())
    assert fit.classes == AG_NAMES  # not sorted (Business, Sci/Tech, Sports, World): id 0 stays World
    assert class_order(["b", "a"], "classification", ["a", "b", "c"]) == ["a", "b", "c"]
    assert class_order(["b", "x"], "classification", ["a", "b"]) == ["b", "x"]  # a label beyond the names: sorted


def test_label_names_map_comma_lists(tmp_path):
    names = [f"emotion{i}" for i in range(28)]
    path = write(tmp_path / "go.tsv", "I love it\t2,15\teeb1\nfine I guess\t27\teeb2\n")
    data = load_file(path, label_names=names)
    assert data.texts == ["I love it", "fine I guess"]
    assert data.labels == [["emotion2", "emotion15"], ["emotion27"]]
    assert normalize_labels(data.labels, "auto") == ("multi-label", [["emotion15", "emotion2"], ["emotion27"]])


@pytest.mark.parametrize(
    ("bad", "advice"),
    [
        ("4", "pass --label-offset 1 if ids count from 1"),  # 4 of 1..4: the other offset would place it
        ("5", "fix the label, or give label names that cover it"),  # no offset places it: not advised
        ("-1", "fix the label, or give label names that cover it"),
        ("x", "fix the label, or give label names that cover it"),
    ],
)
def test_label_id_outside_the_names(tmp_path, bad, advice):
    path = write(tmp_path / "ag.csv", f"text,label\nStocks fall,2\n\nTeam wins,{bad}\n")
    expected = re.escape(
        f"{path} line 4: label '{bad}' is not an index into the 4 label names given (ids 0..3); {advice}"
    )
    with pytest.raises(DataError, match=expected + "$"):
        load_file(path, label_names=AG_NAMES)


def test_regression_names_the_first_label_that_is_not_a_number(tmp_path):
    path = write(tmp_path / "sts.csv", "text,label\nA man plays,4.2\n\nA dog runs,high\n")
    data = load_file(path)
    expected = f"{path} line 4: label 'high' is not a number; --task regression needs numeric labels (leave --task"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        normalize_labels(data.labels, "regression", where=data.where)
    assert normalize_labels(data.labels[:1], "regression", where=data.where) == ("regression", [4.2])


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
def test_a_label_that_is_not_finite_is_refused_with_its_line(tmp_path, bad):
    path = write(tmp_path / "sts.csv", f"text,label\nA man plays,4.2\nA dog runs,{bad}\n")
    data = load_file(path)
    expected = f"{path} line 3: label {float(bad)!r} is not a finite number; regression trains on finite values"
    for task in ("auto", "regression"):  # auto: 4.2 makes the column a regression target
        with pytest.raises(DataError, match=re.escape(expected)):
            normalize_labels(data.labels, task, where=data.where)
    with pytest.raises(DataError, match=r"^label nan is not a finite number"):
        normalize_labels([1.5, float("nan")], "auto", as_written=True)  # a missing value from pandas


# -------------------------------------------------------------------------------------------- from_lists


def test_from_lists_single_texts():
    data = from_lists(["a", "b"], [1, "x"])
    assert data.texts == ["a", "b"] and data.pairs is None
    assert data.labels == [1, "x"]  # as given
    assert data.columns == Columns("text", None, "label")


def test_from_lists_pairs_and_multi_label():
    data = from_lists([("a", "b"), ["c", "d"]], [["x", "y"], []])
    assert data.texts == ["a", "c"] and data.pairs == ["b", "d"]
    assert data.labels == [["x", "y"], []]
    assert data.columns == Columns("text", "text_pair", "label")


def test_from_lists_without_labels():
    data = from_lists(["a"])
    assert data.labels is None and data.columns.label is None


def test_from_lists_single_string():
    with pytest.raises(DataError, match="input: expected a list of texts, got a single string; wrap it in a list"):
        from_lists("just one text", ["pos"])


def test_from_lists_empty():
    with pytest.raises(DataError, match="train: no texts given"):
        from_lists([], name="train")


def test_from_lists_length_mismatch():
    with pytest.raises(DataError, match="input: 2 texts but 3 labels; give one label per text"):
        from_lists(["a", "b"], ["x", "y", "z"])


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["ok", 3], "input item 1: expected a string, got int"),
        (["ok", None], "input item 1: expected a string, got NoneType"),
        (["ok", ("a", "b")], "input item 1: expected a string, got tuple"),
        ([("a", "b"), ("c", 5)], "input item 1: expected a string, got int"),
    ],
)
def test_from_lists_non_string_text(texts, expected):
    with pytest.raises(DataError, match=re.escape(expected)):
        from_lists(texts)


@pytest.mark.parametrize("texts", [[("a", "b"), "c"], [("a", "b"), 5], [("a", "b"), ("c", "d", "e")], [(), ("a", "b")]])
def test_from_lists_mixed_pairs(texts):
    with pytest.raises(DataError, match=re.escape("input: text pairs must all be (text, text_pair) tuples")):
        from_lists(texts)


def test_from_lists_empty_text_is_named():
    # issue 19: named by its position in the list, not as a file's "item" and "column"
    with pytest.raises(DataError, match=re.escape("input[1]: empty text; every item needs a non-empty text")):
        from_lists(["a", " "], ["x", "y"])


def test_a_missing_value_of_a_nullable_parquet_column_is_named_with_its_row(tmp_path):
    import pandas as pd

    path = tmp_path / "sts.parquet"
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": pd.array([4.2, None, 1.0], dtype="Float64")})
    frame.to_parquet(path)
    with pytest.raises(DataError, match=r"row 2: column 'label' is empty; every row needs a label"):
        load_file(path)
