"""Config files: keys map 1:1 to `bertkit train` flags, and the saved train_config.json repeats a run exactly."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import fails, ok, sentiment_examples, write_csv

from bertkit import ConfigError, TrainConfig
from bertkit.cli.classify import train as train_command

FLAGS = ["--epochs", "1", "--batch-size", "16", "--learning-rate", "0.002", "--max-length", "24", "--quiet"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("config-data")
    for name, n, seed in (("train.csv", 64, 0), ("valid.csv", 16, 1)):
        texts, labels = sentiment_examples(n, seed=seed)
        write_csv(folder / name, ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    return folder


def test_every_config_field_is_a_train_flag():
    flags = set(inspect.signature(train_command).parameters)
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}  # extra: free-form notes, file only
    assert fields <= flags, sorted(fields - flags)


@pytest.mark.slow
def test_saved_config_repeats_the_run_exactly(capsys, tiny_bert, data_dir, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    ok(capsys, "train", "--train", data_dir / "train.csv", "--validation", data_dir / "valid.csv",
       "--output", first, "--model", tiny_bert, "--seed", "5", "--warmup-ratio", "0.2", "--label-smoothing", "0.1", "--dropout", "0", "--rdrop", "0.3", *FLAGS)  # fmt: skip
    saved = json.loads((first / "train_config.json").read_text())
    assert saved["train"] == str(data_dir / "train.csv") and saved["validation"] == str(data_dir / "valid.csv")
    assert (saved["seed"], saved["warmup_ratio"], saved["batch_size"], saved["max_length"]) == (5, 0.2, 16, 24)
    assert saved["label_smoothing"] == 0.1 and saved["dropout"] == 0.0 and saved["rdrop"] == 0.3
    # nothing but the output folder on the command line
    ok(capsys, "train", "--config", first / "train_config.json", "--output", second, "--quiet")
    from safetensors.numpy import load_file

    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    meta = [json.loads((d / "bertkit.json").read_text()) for d in (first, second)]
    assert meta[0]["validation_metrics"] == meta[1]["validation_metrics"]
    assert meta[0]["config"] == meta[1]["config"]


@pytest.mark.slow
def test_yaml_config_with_data_options(capsys, tiny_bert, data_dir, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"train: {data_dir / 'train.csv'}\nmodel: {tiny_bert}\nepochs: 1\nbatch-size: 16\n"
        "learning_rate: 0.002\nmax-length: 24\ntext_column: text\nextra: {note: from yaml}\n"
    )
    ok(capsys, "train", "--config", config, "--output", tmp_path / "out", "--quiet")
    meta = json.loads((tmp_path / "out" / "bertkit.json").read_text())
    assert meta["config"]["extra"] == {"note": "from yaml"} and meta["config"]["max_length"] == 24


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ('{"epochs": 1, "learnin_rate": 0.1}', ".json", r"unknown keys \['learnin_rate'\]; allowed: .*learning_rate"),
        ("{ nope", ".json", "not valid JSON"),
        ("epochs = = 1", ".toml", "not valid TOML"),
        ("epochs: [1", ".yaml", "not valid YAML"),
        ("[1, 2]", ".json", "one table of options"),
    ],
    ids=["unknown-key", "bad-json", "bad-toml", "bad-yaml", "not-a-table"],
)
def test_bad_config_files_name_the_file_and_the_problem(capsys, data_dir, tmp_path, text, suffix, expected):
    config = tmp_path / f"run{suffix}"
    config.write_text(text)
    line = fails(capsys, "train", "--train", data_dir / "train.csv", "--output", tmp_path / "o", "--config", config)
    assert str(config) in line
    assert __import__("re").search(expected, line), line


def test_train_needs_data_from_a_flag_or_the_config(capsys, tmp_path):
    assert fails(capsys, "train", "--output", tmp_path / "o") == "error: --train is required"
    config = tmp_path / "run.toml"
    config.write_text("epochs = 1\n")
    line = fails(capsys, "train", "--config", config, "--train", "x.csv")
    assert line == f"error: --output is required or `output` in {config}"


def test_config_values_are_checked_like_flags(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("warmup-ratio = 1.5\n")
    with pytest.raises(ConfigError, match=r"--warmup-ratio must be in \[0, 1\) \(got 1.5\)"):
        TrainConfig.from_file(config)
