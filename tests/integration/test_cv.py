"""``bertkit cv`` / :func:`bertkit.cross_validate`: folds that cover every row once (stratified by label), the
out-of-fold file, the report's mean and std, fold models kept only when asked, the output-folder rules of train,
and cv's flags being train's."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from helpers import fails, run_cli, sentiment_examples, write_csv

from bertkit import ConfigError, DataError, TrainConfig, cross_validate, load_data
from bertkit.cli import app
from bertkit.cross_validation import check_folds, check_unseen, fold_indices

FLAGS = ["--epochs", "1", "--batch-size", "8", "--max-length", "16", "--quiet"]


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> Path:
    """18 sentiment rows and one empty text (skipped with --skip-bad-rows): input rows 0..18."""
    texts, labels = sentiment_examples(18)
    rows = [list(r) for r in zip(texts, labels, strict=True)]
    rows.insert(5, ["", "positive"])
    return write_csv(tmp_path_factory.mktemp("cv-data") / "train.csv", ["text", "label"], rows)


@pytest.fixture(scope="module")
def runs(train_csv, tiny_bert, tmp_path_factory) -> dict[str, object]:
    """Two 3-fold runs of `bertkit cv` on the same data: one with --keep-models, then one without it that
    replaces (--overwrite) a copy of the first; "out" holds what the second printed on stdout."""
    base = tmp_path_factory.mktemp("cv-runs")
    args = ["cv", "--train", train_csv, "--model", tiny_bert, "--folds", "3", "--skip-bad-rows", *FLAGS]
    assert run_cli(*args, "--output", base / "kept", "--keep-models") == 0
    shutil.copytree(base / "kept", base / "plain")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        assert run_cli(*args, "--output", base / "plain", "--overwrite") == 0
    return {"kept": base / "kept", "plain": base / "plain", "out": printed.getvalue()}


def test_stratified_folds_cover_every_row_once_and_keep_label_shares():
    labels = ["a"] * 30 + ["b"] * 15 + ["c"] * 5
    splits = fold_indices(labels, "classification", 5, seed=1)
    validated = np.concatenate([validation for _, validation in splits])
    assert sorted(validated.tolist()) == list(range(50))
    for train_rows, validation in splits:
        assert not set(train_rows) & set(validation) and len(train_rows) + len(validation) == 50
        assert Counter(labels[i] for i in validation) == {"a": 6, "b": 3, "c": 1}
    assert [v.tolist() for _, v in splits] == [v.tolist() for _, v in fold_indices(labels, "classification", 5, 1)]
    assert [v.tolist() for _, v in splits] != [v.tolist() for _, v in fold_indices(labels, "classification", 5, 2)]


def test_regression_gets_shuffled_plain_folds():
    splits = fold_indices([float(i) for i in range(23)], "regression", 4, seed=0)
    validated = np.concatenate([validation for _, validation in splits])
    assert sorted(validated.tolist()) == list(range(23)) and validated.tolist() != list(range(23))
    assert sorted(len(v) for _, v in splits) == [5, 6, 6, 6]


def test_multi_label_folds_spread_each_rows_rarest_label():
    labels = [["common", "rare"] if i % 6 == 0 else ["common"] for i in range(24)]  # 4 rows carry "rare"
    splits = fold_indices(labels, "multi-label", 4, seed=0)
    validated = np.concatenate([validation for _, validation in splits])
    assert sorted(validated.tolist()) == list(range(24))
    assert [sum("rare" in labels[i] for i in validation) for _, validation in splits] == [1, 1, 1, 1]


def test_fold_counts_the_data_cannot_give():
    data = load_data_of(["a", "a", "b", "b", "b"])
    labels = data.labels
    with pytest.raises(ConfigError, match=r"--folds must be an integer of at least 2 \(got 1\)"):
        check_folds(data, labels, "classification", 1)
    with pytest.raises(ConfigError, match="--folds 6 is more than the 5 training rows of input"):
        check_folds(data, labels, "classification", 6)
    with pytest.raises(ConfigError, match="--folds 4 is more than the 3 rows of the most common label"):
        check_folds(data, labels, "classification", 4)
    assert check_folds(data, labels, "classification", 3) == [
        "label 'a' has 2 rows, fewer than the 3 folds: some folds validate without it"
    ]
    lone = load_data_of(["a", "a", "b", "b", "c"])
    with pytest.raises(DataError, match="input: label 'c' has a single row; .* at least 2 rows of each label"):
        check_folds(lone, lone.labels, "classification", 2)


def load_data_of(labels):
    from bertkit.data.dataset import from_lists

    return from_lists([f"text {i}" for i in range(len(labels))], labels)


def test_a_multi_label_fold_validating_an_unseen_label_is_refused():
    data = load_data_of(["x"] * 4)
    labels = [[1], [1], [1], [2]]
    splits = [(np.array([0, 1, 2]), np.array([3])), (np.array([1, 2, 3]), np.array([0]))]
    with pytest.raises(DataError, match=r"input item 3: label 2 is in fold 1's validation rows only"):
        check_unseen(data, labels, splits)
    check_unseen(data, labels, splits[1:])


def test_oof_file_has_every_input_row_once_with_its_label_and_probabilities(runs, train_csv):
    oof = pd.read_csv(runs["plain"] / "oof_predictions.csv")
    source = pd.read_csv(train_csv, keep_default_na=False)
    assert sorted(oof["input_row"]) == [i for i in range(19) if i != 5]  # row 5 (empty text) skipped
    assert list(oof["text"]) == [source["text"][i] for i in oof["input_row"]]
    assert list(oof["label"]) == [source["label"][i] for i in oof["input_row"]]
    assert sorted(Counter(oof["fold"]).values()) == [6, 6, 6] and set(oof["fold"]) == {1, 2, 3}
    proba = oof[["proba_negative", "proba_positive"]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert list(oof["predicted"]) == [("negative", "positive")[i] for i in proba.argmax(axis=1)]


def test_report_holds_per_fold_metrics_with_mean_and_std(runs):
    report = json.loads((runs["plain"] / "cv_report.json").read_text())
    assert report["folds"] == 3 and report["task"] == "classification" and len(report["per_fold"]) == 3
    assert report["data"]["rows"] == 18 and report["oof_predictions"] == "oof_predictions.csv"
    assert [f["validation_rows"] for f in report["per_fold"]] == [6, 6, 6]
    assert {"accuracy", "mcc", "loss"} <= set(report["mean"]) and set(report["mean"]) == set(report["std"])
    for name, mean in report["mean"].items():
        values = [f["metrics"][name] for f in report["per_fold"]]
        assert mean == pytest.approx(np.mean(values)) and report["std"][name] == pytest.approx(np.std(values, ddof=1))
    oof = pd.read_csv(runs["plain"] / "oof_predictions.csv")
    assert report["oof_metrics"]["accuracy"] == pytest.approx((oof["label"] == oof["predicted"]).mean())


def test_fold_models_are_kept_only_when_asked(runs):
    assert sorted(p.name for p in runs["plain"].iterdir()) == ["cv_report.json", "oof_predictions.csv"]
    kept = sorted(p.name for p in runs["kept"].iterdir())
    assert kept == ["cv_report.json", "fold-1", "fold-2", "fold-3", "oof_predictions.csv"]
    from bertkit import TextClassifier

    fold = TextClassifier.load(runs["kept"] / "fold-2")
    assert list(fold.classes_) == ["negative", "positive"] and (runs["kept"] / "fold-2" / "README.md").is_file()
    report = json.loads((runs["kept"] / "cv_report.json").read_text())
    assert report["per_fold"][1]["folder"] == str(runs["kept"] / "fold-2")
    assert report["mean"] == pytest.approx(json.loads((runs["plain"] / "cv_report.json").read_text())["mean"])


def test_output_folder_rules(capsys, runs, train_csv, tiny_bert, tmp_path, monkeypatch):
    import bertkit.runs

    def never(*args, **kwargs):
        raise AssertionError("data was read before the output folder was checked")

    monkeypatch.setattr(bertkit.runs, "read_data", never)
    args = ["cv", "--train", train_csv, "--model", tiny_bert, "--folds", "3", *FLAGS]
    error = fails(capsys, *args, "--output", runs["kept"])
    assert error == (f"error: {runs['kept']}: folder is not empty (holds a cross-validation run bertkit wrote); "
                     "choose a new --output folder, or pass --overwrite to replace it")  # fmt: skip
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    error = fails(capsys, *args, "--output", mine, "--overwrite")
    assert f"error: {mine}: --overwrite replaces only a model folder bertkit wrote" in error
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_overwrite_replaced_the_earlier_run_and_the_table_was_printed(runs):
    assert sorted(p.name for p in runs["plain"].iterdir()) == ["cv_report.json", "oof_predictions.csv"]  # folds gone
    out = runs["out"]
    assert "3-fold cross-validation" in out and "fold 3" in out and "pooled" in out and "accuracy" in out


def test_flags_train_has_but_cv_refuses(capsys, train_csv, tmp_path):
    error = fails(capsys, "cv", "--train", train_csv, "--validation", train_csv, "--output", tmp_path / "o")
    assert error == "error: --validation: cv validates each fold on its own held-out rows; leave --validation out"
    error = fails(capsys, "cv", "--train", train_csv, "--output", tmp_path / "o", "--folds", "1")
    assert error == "error: --folds must be an integer of at least 2 (got 1)"
    error = fails(capsys, "cv", "--train", train_csv)
    assert error == "error: --output is required"


def test_cv_takes_every_train_option_but_seeds_and_export():
    commands = typer.main.get_command(app).commands
    train = {p.name: p for p in commands["train"].params}
    cv = {p.name: p for p in commands["cv"].params}
    assert set(cv) == (set(train) - {"seeds", "export"}) | {"folds", "keep_models"}
    for name in set(train) - {"seeds", "export", "output", "validation"}:
        assert (cv[name].opts, cv[name].default, cv[name].help) == (
            train[name].opts,
            train[name].default,
            train[name].help,
        )


def test_the_api_writes_nothing_without_an_output(tiny_bert, train_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = load_data(train_csv, skip_bad_rows=True)
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=8, max_length=16)
    seen = []
    result = cross_validate(config, data, folds=2, progress=False, on_fold=seen.append)
    assert [run["fold"] for run in seen] == [1, 2] and list(tmp_path.iterdir()) == []
    assert len(result.oof) == 18 and result.selection_metric == "mcc" and result.classes == ["negative", "positive"]
    with pytest.raises(ConfigError, match="keep_models needs an output folder"):
        cross_validate(config, data, folds=2, keep_models=True)
