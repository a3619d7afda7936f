"""bertkit.runs: the one place a training run is read, fitted and saved (used by `bertkit train` and train_seeds)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import sentiment_examples

from bertkit import DataError, TextClassifier, TrainConfig
from bertkit.read_options import ReadOptions
from bertkit.runs import fit_and_save, read_data, read_run_data


def write_rows(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text", "label"], *rows])
    return path


def test_fit_and_save_writes_the_model_the_report_and_the_run_options(tiny_bert, tmp_path):
    texts, labels = sentiment_examples(48)
    rows = [[t, y] for t, y in zip(texts, labels, strict=True)] + [["", "positive"]]
    options = ReadOptions(train=str(write_rows(tmp_path / "train.csv", rows)), skip_bad_rows=True)
    train, validation = read_run_data(options)
    assert validation is None and len(train) == 48 and len(train.skipped) == 1
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=16, learning_rate=2e-3, max_length=24)
    out = tmp_path / "model"
    classifier = fit_and_save(config, train, None, out, progress=False, run_options=options.to_dict())
    assert isinstance(classifier, TextClassifier)
    meta = json.loads((out / "bertkit.json").read_text())
    assert meta["skipped_rows"] == 1 and meta["run_options"] == options.to_dict()
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["train"] == options.train and saved["skip_bad_rows"] is True and saved["max_length"] == 24
    assert (out / "report" / "report.json").is_file()


def test_read_data_checks_the_label_names_file(tmp_path):
    path = write_rows(tmp_path / "d.csv", [["a good film", 1], ["a bad film", 0]])
    with pytest.raises(DataError, match=r"missing.txt: --label-names file not found"):
        read_data(path, ReadOptions(label_names=str(tmp_path / "missing.txt")))
    (tmp_path / "names.txt").write_text("negative\npositive\n")
    data = read_data(path, ReadOptions(label_names=str(tmp_path / "names.txt")))
    assert list(data.labels) == ["positive", "negative"]
