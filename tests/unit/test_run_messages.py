"""What a run prints agrees with what it did (issue 19, items 9 and 10): the rows that train, per-epoch
multi-label scores equal to the final report's, empty texts named in the caller's terms, and a data file
checked before a model is loaded."""

from __future__ import annotations

import random

import pytest
from helpers import NEGATIVE, NEUTRAL, POSITIVE, fails, ok, sentiment_examples, write_csv

from bertkit import BertkitWarning, TextClassifier
from bertkit.exceptions import DataError


def test_train_says_how_many_rows_train_and_how_many_are_held_out(capsys, tmp_path, tiny_bert):
    texts, labels = sentiment_examples(96)
    train = write_csv(tmp_path / "train.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    flags = [
        "--model",
        tiny_bert,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--max-length",
        "32",
        "--quiet",
        "--no-export",
    ]
    _, err = ok(capsys, "train", "--train", train, "--output", tmp_path / "a", "--max-train-rows", "30", *flags)
    assert f"training on 30 of 96 rows of {train} (3 held out for validation;" in err
    _, err = ok(capsys, "train", "--train", train, "--output", tmp_path / "b", "--validation", train, *flags,
                "--validation-overlap", "keep")  # fmt: skip
    assert f"training on 96 rows of {train} (validation: 96 rows of {train};" in err
    # --quiet hides progress, not what the run did with its rows
    assert f"warning: 96 of 96 training rows of {train} (lines 2, 3, 4 and 93 more) are also rows of" in err
    with pytest.warns(BertkitWarning, match=r"^4 of 4 training rows of X \(items 0, 1, 2 and 1 more\) are also"):
        TextClassifier(str(tiny_bert), epochs=1, max_length=32, progress=False, validation_overlap="keep").fit(
            texts[:4], labels[:4], eval_set=(texts[:4], labels[:4])
        )
    error = fails(
        capsys, "train", "--train", train, "--output", tmp_path / "c", "--validation", train, *flags, alone=False
    )
    assert "every training row is a validation row" in error and "--validation-overlap keep" in error


def test_multi_label_epoch_scores_use_the_thresholds_the_final_report_uses(tiny_bert):
    rng = random.Random(5)
    texts, labels = [], []
    for _ in range(120):
        tags = [tag for tag, pool in (("pos", POSITIVE), ("neg", NEGATIVE)) if rng.random() < 0.3]
        words = rng.choices(NEUTRAL, k=3) + [rng.choice(POSITIVE if t == "pos" else NEGATIVE) for t in tags]
        texts.append(" ".join(words))
        labels.append(tags)
    clf = TextClassifier(str(tiny_bert), epochs=2, batch_size=16, learning_rate=1e-4, max_length=32,
                         keep_epoch="last", progress=False).fit(texts, labels)  # fmt: skip
    last = clf.history_[-1]
    for name in ("micro_f1", "macro_f1", "accuracy"):
        assert last[f"val_{name}"] == pytest.approx(clf.validation_report_.metrics[name]), name


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (["good", "  "], None, r"^X\[1\]: empty text; every item needs a non-empty text"),
        ([("good", "film"), ("bad", "")], None, r"^X\[1\]: empty second text of the pair; every pair needs two"),
        (["good", "bad"], ["positive", None], r"^y\[1\]: missing label; every text needs a label"),
    ],
    ids=["text", "pair", "label"],
)
def test_empty_items_of_python_lists_are_named_by_position(X, y, message):
    from bertkit.data.dataset import from_lists

    with pytest.raises(DataError, match=message):
        from_lists(X, y, name="X")


def test_predict_api_names_the_empty_text(tiny_classifier):
    clf = TextClassifier.load(tiny_classifier, device="cpu")
    with pytest.raises(DataError, match=r"^X\[2\]: empty text"):
        clf.predict(["good", "bad", ""])


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("problem", ["missing", "folder", "suffix"])
def test_data_file_is_checked_before_the_model_loads(capsys, monkeypatch, tmp_path, tiny_classifier, command, problem):
    from bertkit.classification.estimator import TextClassifier as Loaded

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before --data was checked")

    monkeypatch.setattr(Loaded, "load", load)
    path = {"missing": tmp_path / "nope.csv", "folder": tmp_path, "suffix": tmp_path / "data.xlsx"}[problem]
    if problem == "suffix":
        path.write_bytes(b"x")
    args = ["evaluate", tiny_classifier, "--data", path]
    if command == "predict":
        args = ["predict", tiny_classifier, "--data", path, "--output", tmp_path / "p.csv"]
    expected = {"missing": "file not found", "folder": "is a folder, not a file", "suffix": "unsupported file type"}
    assert f"error: {path}: {expected[problem]}" in fails(capsys, *args)
