"""Config files drive whole training runs: the saved train_config.json repeats a run exactly, YAML works too
(moved from tests/unit/test_config_file.py)."""

from __future__ import annotations

import json

import numpy as np
from helpers import ONE_EPOCH_FLAGS, ok


def test_saved_config_repeats_the_run_exactly(capsys, tiny_bert, config_data_dir, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    ok(capsys, "train", "--train", config_data_dir / "train.csv", "--validation", config_data_dir / "valid.csv",
       "--output", first, "--model", tiny_bert, "--seed", "5", "--warmup-ratio", "0.2", "--label-smoothing", "0.1", "--dropout", "0", "--rdrop", "0.3", *ONE_EPOCH_FLAGS)  # fmt: skip
    saved = json.loads((first / "train_config.json").read_text())
    assert saved["train"] == str(config_data_dir / "train.csv") and saved["validation"] == str(
        config_data_dir / "valid.csv"
    )
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


def test_yaml_config_with_data_options(capsys, tiny_bert, config_data_dir, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"train: {config_data_dir / 'train.csv'}\nmodel: {tiny_bert}\nepochs: 1\nbatch-size: 16\n"
        "learning_rate: 0.002\nmax-length: 24\ntext_column: text\nextra: {note: from yaml}\n"
    )
    ok(capsys, "train", "--config", config, "--output", tmp_path / "out", "--quiet")
    meta = json.loads((tmp_path / "out" / "bertkit.json").read_text())
    assert meta["config"]["extra"] == {"note": "from yaml"} and meta["config"]["max_length"] == 24
