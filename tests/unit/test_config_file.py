"""Config files: keys map 1:1 to `bertkit train` flags, and the saved train_config.json repeats a run exactly.

The training runs are in tests/integration/test_config_file_runs.py.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from helpers import fails

from bertkit import ConfigError, TrainConfig
from bertkit.cli.classify import train as train_command


def test_every_config_field_is_a_train_flag():
    flags = set(inspect.signature(train_command).parameters)
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}  # extra: free-form notes, file only
    assert fields <= flags, sorted(fields - flags)


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ('{"epochs": 1, "learnin_rate": 0.1}', ".json", r"unknown keys \['learnin_rate'\]; allowed: .*learning_rate"),
        ("{ nope", ".json", "not valid JSON"),
        ("epochs = = 1", ".toml", "not valid TOML"),
        ("epochs: [1", ".yaml", "not valid YAML"),
        ("[1, 2]", ".json", "one table of options"),
        (
            '{"epochs": 1, "no-export": true, "overwrite": true}',
            ".json",
            r"\['no_export', 'overwrite'\] act on this command, not on the run a config file repeats; give them as "
            r"flags \(--no-export, --overwrite\) and remove them from the file",
        ),
    ],
    ids=["unknown-key", "bad-json", "bad-toml", "bad-yaml", "not-a-table", "command-flags"],
)
def test_bad_config_files_name_the_file_and_the_problem(capsys, config_data_dir, tmp_path, text, suffix, expected):
    config = tmp_path / f"run{suffix}"
    config.write_text(text)
    line = fails(
        capsys, "train", "--train", config_data_dir / "train.csv", "--output", tmp_path / "o", "--config", config
    )
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


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('epochs = "three"', "--epochs must be an integer (got 'three'; config key 'epochs')"),
        ("epochs = 1.5", "--epochs must be an integer (got 1.5"),
        ("epochs = true", "--epochs must be an integer (got True"),
        ('learning-rate = "1e-3"', "--learning-rate must be a number (got '1e-3'"),
        ("freeze-encoder = 1", "--freeze-encoder must be true or false (got 1"),
    ],
)
def test_config_values_of_the_wrong_type_are_one_error_before_anything_runs(
    capsys, config_data_dir, tmp_path, line, expected
):
    config = tmp_path / "run.toml"
    config.write_text(line + "\n")
    output = tmp_path / "o"
    error = fails(capsys, "train", "--train", config_data_dir / "train.csv", "--output", output, "--config", config)
    assert expected in error
    assert not output.exists()


def test_numpy_numbers_are_numbers():
    import numpy as np

    config = TrainConfig(epochs=np.int64(2), learning_rate=np.float32(1e-4), checkpoint_every=100)
    assert config.epochs == 2 and config.checkpoint_every == "100"


def test_label_names_of_the_wrong_type_are_one_error():
    from bertkit.read_options import read_label_names

    with pytest.raises(ConfigError, match=r"--label-names must be a file of names or a list of them \(got 5\)"):
        read_label_names(5)
