"""`bertkit train --checkpoint-every N` killed part-way, then `--resume`: the folder checks, the refusal of a
checkpoint of other options, and a saved model equal to the uninterrupted run's (the CLI and runs.fit_and_save
path of tests/integration/test_resume.py; three full CLI runs, so here)."""

from __future__ import annotations

import pytest
from helpers import Killed, assert_same_weights, kill_at_micro_batch


def test_bertkit_train_resume_continues_in_the_output_folder(tiny_bert, config_data_dir, tmp_path, monkeypatch,
                                                            capsys):  # fmt: skip
    from helpers import fails, ok, run_cli
    from safetensors.torch import load_file

    args = ["train", "--train", config_data_dir / "train.csv", "--validation", config_data_dir / "valid.csv",
            "--model", tiny_bert, "--epochs", 2, "--batch-size", 8, "--max-length", 24, "--quiet"]  # fmt: skip
    ok(capsys, *args, "--output", tmp_path / "whole")
    output = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_at_micro_batch(patch, 11)  # 8 micro-batches an epoch: killed after the checkpoint at step 10
        with pytest.raises(Killed):
            run_cli(*args, "--output", output, "--checkpoint-every", 5)
    capsys.readouterr()
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint", "history.jsonl"]
    assert "holds the checkpoint of an interrupted run; pass --resume" in fails(capsys, *args, "--output", output)
    message = fails(capsys, *args, "--output", output, "--resume", output, "--learning-rate", 1e-3, alone=False)
    assert "the checkpoint belongs to another run (learning_rate: checkpoint 0.0001, this run 0.001)" in message

    ok(capsys, *args, "--output", output, "--resume", output)
    assert not (output / "checkpoint").exists() and (output / "bertkit.json").is_file()
    got, expected = load_file(output / "model.safetensors"), load_file(tmp_path / "whole" / "model.safetensors")
    assert_same_weights(got, expected)
