"""Read settings (issue 19, items 5, 6 and 8): the delimiter, header decisions that depend on a file's layout,
1-based label ids, and the settings of training reused by ``evaluate`` and ``predict``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import CLI_TRAIN_FLAGS, fails, ok, read_csv, run_cli, sentiment_examples

from bertkit.data.dataset import load_file
from bertkit.data.readers import read_table
from bertkit.exceptions import ConfigError, DataError
from bertkit.read_options import ReadOptions

# TREC's train and test files have one layout; the test file's first question is short enough to look like a
# header cell, the train file's is not.
TREC_TRAIN = (
    "DESC,How did serfdom develop in and then leave Russia ?\n"
    "ENTY,What films featured the character Popeye Doyle ?\n"
    "DESC,How can I find a list of celebrities ' real names ?\n"
    "HUM,What team did baseball 's St. Louis Browns become ?\n"
)
TREC_TEST = (
    "NUM,How far is it from Denver to Aspen ?\n"
    "LOC,What county is Modesto in ?\n"
    "HUM,Who was Galileo ?\n"
    "NUM,When did Hawaii become a state ?\n"
)


def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding))
    return path


# item 5: header detection depends on the layout ------------------------------------------------------------


def test_trec_train_and_test_files_get_the_same_header_decision(tmp_path):
    train = read_table(write(tmp_path / "train.csv", TREC_TRAIN))
    test = read_table(write(tmp_path / "test.csv", TREC_TEST))
    assert list(train.frame.columns) == list(test.frame.columns) == ["0", "1"]
    assert test.frame["1"][0] == "How far is it from Denver to Aspen ?"
    assert train.source.header is False and test.source.header is False


def test_a_real_header_is_still_detected(tmp_path):
    table = read_table(write(tmp_path / "d.csv", "label,text\nNUM,How far ?\nLOC,Where ?\nNUM,How many ?\n"))
    assert list(table.frame.columns) == ["label", "text"] and table.source.header is True


# item 6: --delimiter -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("delimiter", "sep"), [(";", ";"), ("|", "|"), (",", ","), ("tab", "\t"), ("\\t", "\t")])
def test_delimiter_option(tmp_path, delimiter, sep):
    path = write(tmp_path / "d.txt", f"text{sep}label\na b{sep}pos\nc{sep}neg\n")
    table = read_table(path, delimiter=delimiter)
    assert list(table.frame.columns) == ["text", "label"]
    assert table.frame["text"].tolist() == ["a b", "c"]


def test_semicolon_csv_keeps_commas_in_text(tmp_path):
    path = write(tmp_path / "d.csv", "text;label\nwell, well;pos\nbad;neg\n")
    assert read_table(path, delimiter=";").frame["text"].tolist() == ["well, well", "bad"]


def test_space_delimiter_reads_trec_label_text_lines(tmp_path):
    path = write(
        tmp_path / "trec.txt",
        "DESC:manner How did serfdom develop in and then leave Russia ?\n\nNUM:dist How far is it from Denver ?\n",
    )
    table = read_table(path, delimiter="space")
    assert list(table.frame.columns) == ["label", "text"]
    assert table.frame["label"].tolist() == ["DESC:manner", "NUM:dist"]
    assert table.frame["text"].tolist() == [
        "How did serfdom develop in and then leave Russia ?",
        "How far is it from Denver ?",
    ]
    assert table.source.lines == (1, 3)


def test_fasttext_lines_are_read_without_a_flag(tmp_path):
    path = write(tmp_path / "ft.txt", "__label__positive great film\n__label__negative  dull , long\n")
    data = load_file(path)
    assert data.texts == ["great film", "dull , long"] and data.labels == ["positive", "negative"]
    multi = write(tmp_path / "multi.txt", "__label__a __label__b some text\n__label__c other\n")
    assert read_table(multi, delimiter="space").frame["label"].tolist() == ["a,b", "c"]


def test_unknown_delimiter_lists_the_allowed_ones(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,b\n")
    with pytest.raises(ConfigError, match=r"--delimiter must be one of .*space.* \(got ':'\)"):
        read_table(path, delimiter=":")
    with pytest.raises(ConfigError, match=r"--delimiter"):
        ReadOptions(delimiter="::")


def test_unsupported_suffix_says_what_txt_means(tmp_path):
    path = write(tmp_path / "d.xlsx", "text,label\na,b\n")
    with pytest.raises(
        DataError,
        match=r"\.txt is read as tab-separated columns.*__label__.*--delimiter.*'space' for 'label text' lines",
    ):
        read_table(path)


def test_label_text_lines_read_as_tsv_say_to_pass_the_delimiter(tmp_path):
    path = write(tmp_path / "trec.txt", "DESC:manner How did serfdom develop ?\nNUM:dist How far is it ?\n")
    with pytest.raises(DataError, match=r"trec.txt: .*1 column.*tab-separated.*--delimiter space"):
        load_file(path)


def test_a_text_column_without_its_label_column_is_not_told_to_change_the_delimiter(tmp_path):
    # One column headed "text": the split was right and the label column is missing; the delimiter hint would mislead.
    path = write(tmp_path / "valid.csv", "text\na fine film\na dull film\n")
    with pytest.raises(DataError) as caught:
        load_file(path)
    assert str(caught.value) == f"{path}: no label column found; name it with --label-column (columns found: 'text')"
    with pytest.raises(DataError, match=r"--text-pair-column 'text2' is not a column; columns found: 'text'$"):
        load_file(path, pair_column="text2", need_label=False)


def test_a_one_column_file_whose_lines_hold_another_separator_is_told_that_one(tmp_path):
    path = write(tmp_path / "semi.csv", "text;label\na fine film;positive\na dull film;negative\n")
    with pytest.raises(DataError, match=r"semi.csv: 1 column found reading it split at ','; its lines look "
                       r"';'-separated: pass --delimiter ';' \(.*no text column found"):  # fmt: skip
        load_file(path)
    assert load_file(path, delimiter=";").texts == ["a fine film", "a dull film"]
    # A comma inside a text splits that row into more fields than the one-column header: the reader says it too.
    path = write(tmp_path / "semi.csv", "text;label\na fine film, truly;positive\na dull film;negative\n")
    with pytest.raises(DataError, match=r"semi.csv line 2: malformed row with 2 fields, the header has 1 "
                       r"\(text;label\); its header looks ';'-separated: pass --delimiter ';'$"):  # fmt: skip
        load_file(path)


def test_texts_alone_read_with_a_header_are_told_to_pass_no_header(tmp_path):
    path = write(tmp_path / "texts.csv", "good film\nbad film\nok\n")
    with pytest.raises(DataError, match=r"texts.csv: 1 column found reading it split at ','; if its first line "
                       r"'good film' is a text, not a header, pass --no-header \("):  # fmt: skip
        load_file(path, need_label=False)
    assert load_file(path, need_label=False, header=False).texts == ["good film", "bad film", "ok"]


def test_a_separator_in_one_line_only_is_not_advice(tmp_path):
    # TREC's 'label text' lines read as tab-separated; one question holds a comma, the others do not.
    path = write(tmp_path / "trec.txt", "DESC:manner How, then ?\nNUM:dist How far is it ?\nHUM:ind Who ?\n")
    with pytest.raises(DataError) as caught:
        load_file(path)
    assert "--delimiter space" in str(caught.value) and "look" not in str(caught.value)


def test_a_named_text_column_missing_from_a_headerless_file_is_pointed_to_the_text(tmp_path):
    # A header-less model (text in column 1, label in 0) given a file of texts alone: column 0 holds them.
    path = write(tmp_path / "texts.csv", "a fine film about a dog\na dull film\n")
    with pytest.raises(DataError) as caught:
        load_file(path, header=False, text_column="1", need_label=False)
    assert str(caught.value) == (
        f"{path}: --text-column '1' is not a column; columns found: '0'; the text looks to be in '0': "
        "pass --text-column 0"
    )


def test_predict_on_a_file_with_another_separator_is_told_the_delimiter(capsys, tiny_classifier, tmp_path):
    # The predict reader goes through the same column choice as evaluate's and says the same.
    path = write(tmp_path / "semi.csv", "text;id\na fine film;1\na dull film;2\n")
    error = fails(capsys, "predict", tiny_classifier, "--data", path, "--output", tmp_path / "out.csv", alone=False)
    assert "its lines look ';'-separated: pass --delimiter ';'" in error
    assert not (tmp_path / "out.csv").exists()


def test_a_saved_text_column_that_does_not_fit_says_where_it_came_from(headerless, tmp_path, capsys):
    model, _ = headerless
    path = write(tmp_path / "texts.csv", "great \u00e4\nawful dull film\n", "latin-1")
    hint = "'1' is not a column; columns found: '0'; the text looks to be in '0': pass --text-column 0"
    error = fails(capsys, "evaluate", model, "--data", path, "--label-column", "0")
    assert error.endswith(
        f"{hint} (--text-column 1: the setting of the model's training, used as no flag gave another)"
    )
    # predict says the settings it takes before it reads (it streams the file)
    assert run_cli("predict", model, "--data", path, "--output", tmp_path / "out.csv") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert "as the model was trained: --text-column 1" in lines[-2] and lines[-1].endswith(hint)


# item 8: 1-based label ids ------------------------------------------------------------------------------------

AG_NAMES = ["World", "Sports", "Business", "Sci/Tech"]
AG_ONE_BASED = '"Stocks fall",3\n"Team wins",2\n"New chip",4\n"Summit opens",1\n'


def test_one_based_ids_are_detected_and_said(tmp_path):
    data = load_file(write(tmp_path / "ag.csv", AG_ONE_BASED), label_names=AG_NAMES)
    assert data.labels == ["Business", "Sports", "Sci/Tech", "World"]
    assert data.label_offset == 1
    assert len(data.notes) == 1 and "1-based" in data.notes[0] and "--label-offset" in data.notes[0]


def test_label_offset_forces_the_first_id(tmp_path):
    path = write(tmp_path / "ag.csv", '"Stocks fall",3\n"Team wins",2\n')
    assert load_file(path, label_names=AG_NAMES, label_offset=1).labels == ["Business", "Sports"]
    assert load_file(path, label_names=AG_NAMES, label_offset=0).labels == ["Sci/Tech", "Business"]
    with pytest.raises(DataError, match=r"label '4' is not an index into the 4 label names given.*--label-offset 1"):
        load_file(write(tmp_path / "one.csv", AG_ONE_BASED), label_names=AG_NAMES, label_offset=0)


def test_zero_based_ids_stay_zero_based(tmp_path):
    path = write(tmp_path / "ag.csv", '"Stocks fall",2\n"Team wins",1\n"New chip",3\n"Summit",0\n')
    data = load_file(path, label_names=AG_NAMES)
    assert data.labels == ["Business", "Sports", "Sci/Tech", "World"] and data.notes == []


# item 5: the settings of training are reused at evaluation and prediction --------------------------------------


@pytest.fixture(scope="module")
def headerless(tiny_bert, tmp_path_factory) -> tuple[Path, Path]:
    """A model trained on a header-less latin-1 CSV (label, text); returns (model, test file of the same layout
    whose first row, on its own, looks like a header: short distinct words)."""
    folder = tmp_path_factory.mktemp("read-settings")
    texts, labels = sentiment_examples(64)
    rows = "".join(f"{label},{text} \u00e4\n" for text, label in zip(texts, labels, strict=True))
    write(folder / "train.csv", rows, "latin-1")
    test = write(folder / "test.csv", "positive,great \u00e4\nnegative,awful dull film\n", "latin-1")
    model = folder / "model"
    code = run_cli(
        "train", "--train", folder / "train.csv", "--output", model, "--model", tiny_bert, "--no-header",
        "--encoding", "latin-1", "--text-column", "1", "--label-column", "0", *CLI_TRAIN_FLAGS,
    )  # fmt: skip
    assert code == 0
    return model, test


def test_training_saves_the_read_settings(headerless):
    model, _ = headerless
    saved = json.loads((model / "bertkit.json").read_text())["run_options"]
    assert saved["header"] is False and saved["encoding"] == "latin-1"
    assert saved["text_column"] == "1" and saved["label_column"] == "0"


def test_evaluate_reuses_the_read_settings_of_training(headerless, capsys):
    model, test = headerless
    out, err = ok(capsys, "evaluate", model, "--data", test, "--json")
    assert json.loads(out)["n_examples"] == 2
    assert "as the model was trained:" in err and "--encoding latin-1" in err and "--no-header" in err


def test_predict_reuses_the_read_settings_of_training(headerless, tmp_path, capsys):
    model, test = headerless
    out = tmp_path / "p.csv"
    ok(capsys, "predict", model, "--data", test, "--output", out)
    rows = read_csv(out)
    assert len(rows) == 2 and rows[0]["1"] == "great \u00e4"


def test_a_flag_overrides_the_saved_setting(headerless, capsys):
    model, test = headerless
    error = fails(capsys, "evaluate", model, "--data", test, "--encoding", "utf-8", alone=False)
    assert "not valid utf-8" in error


@pytest.fixture(scope="module")
def semicolon(tiny_bert, tmp_path_factory) -> tuple[Path, Path]:
    """A model trained on a ';'-separated .txt file with 1-based label ids and a --label-names file that is then
    deleted; returns (model, test file)."""
    folder = tmp_path_factory.mktemp("delimiter")

    def table(n: int, seed: int) -> str:
        texts, labels = sentiment_examples(n, seed=seed)
        ids = ["1" if label == "negative" else "2" for label in labels]
        return "text;label\n" + "".join(f"{t};{y}\n" for t, y in zip(texts, ids, strict=True))

    train = write(folder / "train.txt", table(64, 0))
    test = write(folder / "test.txt", table(12, 2))
    names = write(folder / "names.txt", "negative\npositive\n")
    model = folder / "model"
    assert run_cli("train", "--train", train, "--output", model, "--model", tiny_bert, "--delimiter", ";",
                   "--label-names", names, *CLI_TRAIN_FLAGS) == 0  # fmt: skip
    names.unlink()
    return model, test


def test_delimiter_is_saved_and_reused(semicolon, capsys):
    model, test = semicolon
    saved = json.loads((model / "bertkit.json").read_text())["run_options"]
    assert saved["delimiter"] == ";" and saved["label_names"] == ["negative", "positive"]
    assert saved["label_offset"] == 1
    assert json.loads((model / "config.json").read_text())["label2id"] == {"negative": 0, "positive": 1}
    out, _ = ok(capsys, "evaluate", model, "--data", test, "--json")
    assert json.loads(out)["n_examples"] == 12
    error = fails(capsys, "evaluate", model, "--data", test, "--delimiter", "tab", alone=False)
    assert re.search(r"test.txt: .*(column|--delimiter)", error), error


def test_predict_takes_any_extension_with_a_delimiter_given(headerless, tmp_path, capsys):
    """The check made before the model loads accepts what the reader accepts: a .dat file read with --delimiter."""
    model, test = headerless
    data = tmp_path / "test.dat"
    data.write_bytes(test.read_bytes())
    out = tmp_path / "p.csv"
    ok(capsys, "predict", model, "--data", data, "--output", out, "--delimiter", ",", "--no-header")
    assert len(read_csv(out)) == 2
