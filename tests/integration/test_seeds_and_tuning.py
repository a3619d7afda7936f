"""`bertkit train --seeds N` (mean and spread over seeds) and `bertkit tune` (Optuna, SQLite, pruning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import ONE_EPOCH_FLAGS, fails, ok, sentiment_examples, write_csv, write_sentiment_csvs

from bertkit import TrainConfig, load_data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seeds-data")
    return write_sentiment_csvs(folder, train_rows=96, validation_rows=24)


def test_train_with_three_seeds_reports_each_and_the_spread(capsys, tiny_bert, data_dir, tmp_path):
    out = tmp_path / "seeds"
    _, err = ok(capsys, "train", "--train", data_dir / "train.csv", "--validation", data_dir / "valid.csv",
                "--output", out, "--model", tiny_bert, "--seed", "3", "--seeds", "3", *ONE_EPOCH_FLAGS)  # fmt: skip
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [3, 4, 5]
    runs = summary["runs"]
    for run in runs:
        folder = out / f"seed-{run['seed']}"
        saved = json.loads((folder / "bertkit.json").read_text())
        assert saved["config"]["seed"] == run["seed"] and saved["validation_metrics"] == run["metrics"]
        assert json.loads((folder / "train_config.json").read_text())["seed"] == run["seed"]
    weights = [(out / f"seed-{s}" / "model.safetensors").read_bytes() for s in (3, 4, 5)]
    assert len(set(weights)) == 3  # different seeds, different models
    losses = [r["metrics"]["loss"] for r in runs]
    assert summary["mean"]["loss"] == pytest.approx(np.mean(losses))
    assert summary["std"]["loss"] == pytest.approx(np.std(losses, ddof=1)) and summary["std"]["loss"] > 0
    best = max(runs, key=lambda r: r["metrics"]["mcc"])
    assert summary["selection_metric"] == "mcc" and summary["best_seed"] == best["seed"]
    assert f"loss       {np.mean(losses):.4f} +/- {np.std(losses, ddof=1):.4f}" in err
    assert "seed 4: kept epoch 1 (best 1)" in err


# tuning ------------------------------------------------------------------------------------------------------


def _trials(study_dir: Path) -> list[dict]:
    return json.loads((study_dir / "trials.json").read_text())


def test_tune_writes_a_best_config_that_train_takes_and_resumes(capsys, tiny_bert, data_dir, tmp_path):
    study = tmp_path / "study"
    args = ["tune", "--train", data_dir / "train.csv", "--validation", data_dir / "valid.csv", "--model", tiny_bert,
            "--study-dir", study, "--max-epochs", "1", "--learning-rate-range", "1e-4", "1e-2", "--quiet"]  # fmt: skip
    _, err = ok(capsys, *args, "--trials", "2")
    first = _trials(study)
    assert [t["state"] for t in first] == ["COMPLETE", "COMPLETE"]
    assert set(first[0]["params"]) == {"learning_rate", "batch_size", "epochs", "warmup_ratio", "weight_decay",
                                       "max_length"}  # fmt: skip
    best = json.loads((study / "best_config.json").read_text())
    top = max(first, key=lambda t: t["value"])
    assert best["learning_rate"] == top["params"]["learning_rate"] and best["train"] == str(data_dir / "train.csv")
    assert best["extra"]["tuned"]["trial"] == top["number"]
    assert all(1e-4 <= t["params"]["learning_rate"] <= 1e-2 and t["params"]["epochs"] == 1 for t in first)
    assert "best mcc" in err and f"bertkit train --config {study / 'best_config.json'}" in err

    # rerunning continues the stored study: two finished trials, two more to reach four
    _, err = ok(capsys, *args, "--trials", "4")
    again = _trials(study)
    assert len(again) == 4 and again[:2] == first
    assert "(2 new trials)" in err
    ok(capsys, *args, "--trials", "4")
    assert len(_trials(study)) == 4  # nothing left to do

    # a study is continued only by the same search: other data or another metric would mix incomparable scores
    line = fails(capsys, *args[:2], data_dir / "valid.csv", *args[3:], "--trials", "5", alone=False)
    assert line.startswith(f"error: {study}: this study was run with other training data; its trials' scores")
    line = fails(capsys, *args, "--trials", "5", "--selection-metric", "accuracy", alone=False)
    assert "this study was run with other metric, --selection-metric" in line
    line = fails(capsys, *args, "--trials", "5", "--selection-metric", "loss", alone=False)  # lower is better
    assert "this study was run with other metric, --selection-metric" in line  # named, not only its direction
    assert len(_trials(study)) == 4

    ok(capsys, "train", "--config", study / "best_config.json", "--output", tmp_path / "model", "--quiet")
    saved = json.loads((tmp_path / "model" / "bertkit.json").read_text())["config"]
    assert saved["learning_rate"] == best["learning_rate"] and saved["batch_size"] == best["batch_size"]


def test_tune_prunes_a_trial_worse_than_the_median_before_its_last_epoch(tiny_bert, data_dir, tmp_path):
    import optuna

    from bertkit import tune
    from bertkit.tuning import SearchSpace

    texts, labels = sentiment_examples(320)  # enough steps for the tiny model to learn in one epoch at 1e-2
    write_csv(tmp_path / "train.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    storage = f"sqlite:///{study_dir / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="bertkit", direction="minimize")
    fixed = {"batch_size": 16, "epochs": 2, "warmup_ratio": 0.1, "weight_decay": 0.0, "max_length": 24}
    # two trials that learn in their first epoch, then one whose learning rate is far too small to move at all
    for rate in (1e-2, 1e-2, 1e-7):
        study.enqueue_trial({**fixed, "learning_rate": rate})
    space = SearchSpace(learning_rate=(1e-7, 1e-2), epochs=(1, 2), max_length=(24,))
    train, validation = load_data(tmp_path / "train.csv"), load_data(data_dir / "valid.csv")
    result = tune(TrainConfig(model=str(tiny_bert), selection_metric="loss"), train, validation, study_dir,
                  trials=3, space=space)  # fmt: skip
    assert [t["state"] for t in result.trials] == ["COMPLETE", "COMPLETE", "PRUNED"], result.trials
    assert result.trials[2]["epochs_run"] == 1  # stopped after its first epoch, not run to the second
    assert result.metric == "loss" and result.best_value == min(t["value"] for t in result.trials[:2])
    assert result.best_value < 0.5


def test_a_failed_trial_does_not_use_up_trials_and_a_timeout_counts_what_ran(tiny_bert, data_dir, tmp_path):
    import optuna

    from bertkit import tune
    from bertkit.tuning import SearchSpace

    study_dir = tmp_path / "study"
    study_dir.mkdir()
    study = optuna.create_study(
        storage=f"sqlite:///{study_dir / 'study.db'}", study_name="bertkit", direction="maximize"
    )
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))  # a crashed or interrupted trial
    space = SearchSpace(epochs=(1, 1), max_length=(24,), batch_size=(16,))
    train, validation = load_data(data_dir / "train.csv"), load_data(data_dir / "valid.csv")
    result = tune(TrainConfig(model=str(tiny_bert)), train, validation, study_dir, trials=1, space=space)
    assert [t["state"] for t in result.trials] == ["FAIL", "COMPLETE"] and result.new_trials == 1
    again = tune(TrainConfig(model=str(tiny_bert)), train, validation, study_dir, trials=4, space=space, timeout=1e-3)
    assert again.new_trials == 1  # the timeout stopped it after one trial: said as one, not the three asked
