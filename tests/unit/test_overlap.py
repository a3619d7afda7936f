"""Training rows that are also validation rows (data/overlap.py): dropped by default, kept or refused on request."""

from __future__ import annotations

import pytest

from bertkit.classification.inputs import prepare_data
from bertkit.config import TrainConfig
from bertkit.data.dataset import from_lists, load_file
from bertkit.data.overlap import resolve_overlap, shared_rows
from bertkit.exceptions import ConfigError, DataError

TRAIN = ["a good film", "a bad film", "great  acting", "dull plot", "fine music", "weak ending"]
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg"]


def test_rows_match_on_text_with_whitespace_collapsed_and_on_both_texts_of_a_pair():
    train = from_lists(TRAIN, LABELS, name="train")
    validation = from_lists(["great acting\n", "a good film!", "weak ending"], ["pos", "pos", "neg"], name="dev")
    assert shared_rows(train, validation).tolist() == [2, 5]  # "a good film!" is another text
    pairs = from_lists([("q", "a"), ("q", "b"), ("r", "a")], [1, 0, 1], name="train")
    assert shared_rows(pairs, from_lists([("q", " b"), ("a", "q")], [0, 1], name="dev")).tolist() == [1]


def test_drop_trains_without_the_shared_rows_and_says_which_and_how_many(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(
        "text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(TRAIN, LABELS, strict=True)), encoding="utf-8"
    )
    train = load_file(path)
    validation = from_lists(["dull plot", "a bad film"], ["neg", "neg"], name="dev.csv")
    kept, overlap = resolve_overlap(train, validation, "drop")
    assert kept.texts == ["a good film", "great  acting", "fine music", "weak ending"]
    assert kept.labels == ["pos", "pos", "pos", "neg"] and kept.rows.tolist() == [0, 2, 4, 5]
    assert overlap.rows == 2 and overlap.metadata() == {
        "validation_overlap": {"rows": 2, "action": "dropped from training"}
    }
    assert overlap.note.startswith(f"2 of 6 training rows of {path} (lines 3, 5) are also rows of the validation")
    assert "dev.csv" in overlap.note and "training on the other 4" in overlap.note


def test_keep_trains_on_them_and_error_refuses_naming_rows_and_fix():
    train = from_lists(TRAIN, LABELS, name="train.csv")
    validation = from_lists(TRAIN[:5], LABELS[:5], name="dev.csv")
    kept, overlap = resolve_overlap(train, validation, "keep")
    assert kept is train and overlap.rows == 5 and "optimistic" in overlap.note
    assert overlap.metadata()["validation_overlap"]["action"] == "kept in training"
    with pytest.raises(DataError) as error:
        resolve_overlap(train, validation, "error")
    message = str(error.value)
    assert message.startswith("5 of 6 training rows of train.csv (items 0, 1, 2 and 2 more) are also rows of")
    assert "dev.csv" in message and "--validation-overlap drop" in message
    with pytest.raises(DataError, match="every training row is a validation row"):
        resolve_overlap(train, from_lists(TRAIN, LABELS, name="dev.csv"), "drop")
    with pytest.raises(ConfigError, match="drop, keep or error"):
        resolve_overlap(train, validation, "ignore")


def test_no_shared_rows_changes_nothing_and_records_nothing():
    train = from_lists(TRAIN, LABELS, name="train")
    kept, overlap = resolve_overlap(train, from_lists(["new text"], ["pos"], name="dev"), "drop")
    assert kept is train and overlap.rows == 0 and overlap.note is None and overlap.metadata() == {}


def test_fit_data_drops_training_copies_of_the_eval_set_by_default():
    eval_set = (["a bad film", "dull plot"], ["neg", "neg"])
    data = prepare_data(TRAIN, LABELS, eval_set, TrainConfig())
    assert len(data.train) == 4 and "a bad film" not in data.train.texts and data.overlap.rows == 2
    assert data.classes == ["neg", "pos"]  # classes come from the whole training file
    data = prepare_data(TRAIN, LABELS, eval_set, TrainConfig(validation_overlap="keep"))
    assert len(data.train) == 6 and data.overlap.rows == 2
    one = prepare_data(TRAIN, LABELS, (["dull plot"], ["neg"]), TrainConfig())
    assert one.overlap.note.startswith("1 of 6 training rows of X (item ")  # one row: "item", not "items"
    with pytest.raises(ConfigError, match="--validation-overlap must be drop, keep or error"):
        TrainConfig(validation_overlap="off")


def test_the_line_before_training_counts_the_rows_left_out():
    from bertkit.runs import describe_rows

    train = from_lists(TRAIN, LABELS, name="train.csv")
    validation = from_lists(["a bad film", "dull plot", "unseen"], ["neg", "neg", "pos"], name="dev.csv")
    line = describe_rows(train, validation, TrainConfig())
    assert line.startswith("training on 4 of 6 rows of train.csv (validation: 3 rows of dev.csv, 2 of them also in")
    assert "training on 6 rows" in describe_rows(train, validation, TrainConfig(validation_overlap="keep"))
