"""Training never replaces or mixes into an existing folder silently (issue 19, item 4).

``bertkit train`` (also ``--seeds``), ``tag train`` and ``qa train`` refuse a non-empty ``--output`` before they
read data or load a model; ``--overwrite`` replaces a model folder bertkit wrote, and only when every file in it
is one bertkit writes: a folder holding anything else is refused even then, and nothing of it is deleted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import fails, ok, sentiment_examples, write_csv

FLAGS = ["--epochs", "1", "--batch-size", "16", "--max-length", "32", "--quiet", "--no-export"]


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> Path:
    texts, labels = sentiment_examples(48)
    folder = tmp_path_factory.mktemp("overwrite-data")
    return write_csv(folder / "train.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if a run gets as far as reading data: the folder check must come first."""
    import bertkit.runs

    def read(*args, **kwargs):
        raise AssertionError("data was read before the output folder was checked")

    monkeypatch.setattr(bertkit.runs, "read_run_data", read)


def _train(capsys, train_csv, output, tiny_bert, *extra):
    return ok(capsys, "train", "--train", train_csv, "--output", output, "--model", tiny_bert, *FLAGS, *extra)


@pytest.mark.parametrize("seeds", [[], ["--seeds", "2"]], ids=["one-run", "seeds"])
def test_train_refuses_a_folder_holding_other_files(capsys, tmp_path, train_csv, tiny_bert, no_training, seeds):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    args = ["train", "--train", train_csv, "--output", output, "--model", tiny_bert, *FLAGS, *seeds]
    error = fails(capsys, *args)
    assert f"error: {output}: folder is not empty (holds 'notes.txt')" in error
    assert "--overwrite" in error
    error = fails(capsys, *args, "--overwrite")
    assert f"error: {output}: --overwrite replaces only a model folder bertkit wrote" in error
    assert "'notes.txt'" in error
    assert [p.name for p in output.iterdir()] == ["notes.txt"]  # nothing deleted


def test_train_refuses_an_output_that_is_a_file(capsys, tmp_path, train_csv, tiny_bert, no_training):
    output = tmp_path / "model"
    output.write_text("a file")
    error = fails(capsys, "train", "--train", train_csv, "--output", output, "--model", tiny_bert, *FLAGS)
    assert f"error: {output}: is a file, not a folder" in error
    assert output.read_text() == "a file"


def test_retraining_needs_overwrite_and_then_replaces_only_the_model(capsys, tmp_path, train_csv, tiny_bert):
    output = tmp_path / "model"
    _train(capsys, train_csv, output, tiny_bert)
    (output / "report" / "stale.png").write_bytes(b"old plot")  # as an older bertkit's report could hold
    (output / "onnx").mkdir()
    (output / "onnx" / "model.onnx").write_bytes(b"old export of the old weights")
    error = fails(capsys, "train", "--train", train_csv, "--output", output, "--model", tiny_bert, *FLAGS)
    assert f"error: {output}: folder is not empty" in error
    assert "holds a model bertkit wrote" in error and "--overwrite" in error
    _train(capsys, train_csv, output, tiny_bert, "--overwrite", "--seed", "7")
    assert json.loads((output / "bertkit.json").read_text())["config"]["seed"] == 7
    assert not (output / "onnx").exists()  # an export of the old weights would answer for the new model
    assert (output / "report" / "report.json").is_file()


def test_empty_folder_needs_no_overwrite(capsys, tmp_path, train_csv, tiny_bert):
    output = tmp_path / "empty"
    output.mkdir()
    _train(capsys, train_csv, output, tiny_bert)
    assert (output / "bertkit.json").is_file()


@pytest.mark.parametrize("command", ["tag", "qa"])
def test_tag_and_qa_train_refuse_a_non_empty_folder_first(capsys, tmp_path, tiny_bert, monkeypatch, command):
    import bertkit

    def loader(*args, **kwargs):
        raise AssertionError("data was read before the output folder was checked")

    monkeypatch.setattr(bertkit, "load_tagged_data" if command == "tag" else "read_squad", loader)
    output = tmp_path / "out"
    output.mkdir()
    (output / "thesis.tex").write_text("x")
    data = tmp_path / ("train.conll" if command == "tag" else "train.json")
    data.write_text("x")
    args = [
        command,
        "train",
        "--train",
        data,
        "--output",
        output,
        "--model",
        tiny_bert,
        "--max-length",
        "64",
        "--quiet",
    ]
    args += ["--doc-stride", "8"] if command == "qa" else []  # flags that fit the tiny model: checked first
    assert f"error: {output}: folder is not empty (holds 'thesis.tex')" in fails(capsys, *args)
    assert "--overwrite replaces only a model folder bertkit wrote" in fails(capsys, *args, "--overwrite")
    assert (output / "thesis.tex").read_text() == "x"


def test_usage_errors_exit_2_and_data_errors_exit_1(capsys, tmp_path, tiny_bert, train_csv):
    from helpers import run_cli

    args = ["train", "--train", train_csv, "--output", tmp_path / "o", "--model", tiny_bert]
    assert run_cli(*args, "--epochs", "abc") == 2
    assert "Invalid value for '--epochs'" in capsys.readouterr().err
    assert run_cli("train", "--train", tmp_path / "missing.csv", "--output", tmp_path / "o") == 1
    assert "file not found" in capsys.readouterr().err


def test_a_run_that_fails_while_training_keeps_the_old_model(capsys, tmp_path, train_csv, tiny_bert, monkeypatch):
    """--overwrite deletes the old model only once the new one is trained, just before it is saved."""
    from bertkit import DataError, TextClassifier

    output = tmp_path / "model"
    _train(capsys, train_csv, output, tiny_bert)
    before = (output / "model.safetensors").read_bytes()

    def broken_fit(self, *args, **kwargs):
        raise DataError("training stopped part-way (a stand-in for any failure or Ctrl-C)")

    monkeypatch.setattr(TextClassifier, "fit", broken_fit)
    error = fails(capsys, "train", "--train", train_csv, "--output", output, "--model", tiny_bert, "--overwrite",
                  *FLAGS, alone=False)  # fmt: skip
    assert "training stopped part-way" in error
    assert (output / "model.safetensors").read_bytes() == before
    assert (output / "bertkit.json").is_file() and (output / "report" / "report.json").is_file()


def test_an_interrupted_run_without_a_checkpoint_is_named_and_overwrite_starts_afresh(
    capsys, tmp_path, train_csv, tiny_bert
):
    output = tmp_path / "model"
    output.mkdir()
    # what a run stopped in epoch 3 left
    (output / "history.jsonl").write_text('{"epoch": 1, "train_loss": 0.7}\n{"epoch": 2, "train_loss": 0.6}\n')
    error = fails(capsys, "train", "--train", train_csv, "--output", output, "--model", tiny_bert, *FLAGS)
    assert f"error: {output}: folder holds an interrupted run (history.jsonl; no checkpoint to resume" in error
    _train(capsys, train_csv, output, tiny_bert, "--overwrite")
    history = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1] and (output / "bertkit.json").is_file()
