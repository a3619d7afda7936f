"""The checks of ``--seeds`` and ``bertkit tune`` that train nothing: argument errors and the summary maths.

The runs that train (several seeds, Optuna trials) are in tests/integration/test_seeds_and_tuning.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import fails, write_sentiment_csvs

from bertkit import ConfigError, TrainConfig, load_data
from bertkit.seeds import summarize


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seeds-data")
    return write_sentiment_csvs(folder, train_rows=96, validation_rows=24)


def test_summarize_gives_mean_and_sample_std():
    runs = [{"metrics": {"accuracy": a, "f1": f}} for a, f in ((0.8, 0.7), (0.9, 0.75), (0.7, 0.8))]
    mean, std = summarize(runs)
    assert mean["accuracy"] == pytest.approx(0.8) and std["accuracy"] == pytest.approx(np.std([0.8, 0.9, 0.7], ddof=1))
    assert summarize(runs[:1])[1] == {"accuracy": 0.0, "f1": 0.0}


def test_seeds_refuse_torchrun(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    line = fails(capsys, "train", "--train", data_dir / "train.csv", "--output", tmp_path / "o", "--seeds", "2")
    assert line == "error: --seeds runs one process per seed; launch it without torchrun"


def test_seeds_must_be_positive(capsys, data_dir, tmp_path):
    line = fails(capsys, "train", "--train", data_dir / "train.csv", "--output", tmp_path / "o", "--seeds", "0")
    assert line == "error: --seeds must be a positive integer (got 0)"


def test_tune_errors(capsys, data_dir, tmp_path):
    base = ["tune", "--train", data_dir / "train.csv"]
    assert fails(capsys, *base) == "error: --study-dir is required: the folder that keeps the study"
    line = fails(capsys, *base, "--study-dir", tmp_path / "s", "--trials", "0", alone=False)
    assert line == "error: --trials must be a positive integer (got 0)"
    line = fails(capsys, *base, "--study-dir", tmp_path / "s", "--timeout", "-5", alone=False)
    assert line == "error: --timeout must be a positive number of seconds (got -5.0)"
    assert fails(capsys, *base, "--study-dir", tmp_path / "s", "--max-epochs", "0") == (
        "error: --max-epochs must be a positive integer (got 0)"
    )
    assert fails(capsys, *base, "--study-dir", tmp_path / "s", "--learning-rate-range", "1e-3", "1e-4") == (
        "error: --learning-rate-range needs 0 < LOW < HIGH < 1 (got 0.001 0.0001)"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORLD_SIZE", "2")
        line = fails(capsys, *base, "--study-dir", tmp_path / "s", alone=False)
    assert line == "error: bertkit tune runs its trials in one process; launch it without torchrun"
    with pytest.raises(ConfigError, match="--selection-metric for classification must be one of"):
        from bertkit import tune

        tune(TrainConfig(selection_metric="bleu"), load_data(data_dir / "train.csv"), None, tmp_path / "s2")


def test_commands_that_cannot_resume_refuse_checkpoint_every_and_resume_is_checked_first(capsys, data_dir, tmp_path):
    train = ["--train", data_dir / "train.csv"]
    for command in (["cv", *train, "--output", tmp_path / "cv"], ["train", *train, "--output", tmp_path / "s",
                                                                   "--seeds", "2"]):  # fmt: skip
        line = fails(capsys, *command, "--checkpoint-every", "epoch", alone=False)
        assert line.endswith("cannot resume, so it keeps no checkpoint; leave it out"), line
    (tmp_path / "empty").mkdir()
    missing = ["train", "--train", tmp_path / "absent.csv", "--output", tmp_path / "o", "--resume", tmp_path / "empty"]
    assert f"{tmp_path / 'empty'}: no checkpoint to resume from" in fails(capsys, *missing, alone=False)  # not the csv


def test_tune_refuses_unlabelled_validation_data_before_it_opens_a_study(data_dir, tmp_path):
    from bertkit import DataError, tune

    texts = tmp_path / "texts.csv"
    texts.write_text("text\na good film\na bad film\n")
    with pytest.raises(DataError, match=r"texts.csv: tuning scores its trials on validation data with labels"):
        tune(TrainConfig(), load_data(data_dir / "train.csv"), load_data(texts, need_label=False), tmp_path / "s")
    assert not (tmp_path / "s" / "study.db").exists()


def test_a_study_from_before_the_search_record_is_still_held_to_its_direction(data_dir, tmp_path):
    """A legacy study (trials, no record) that minimized cannot go on maximizing f1; one whose direction fits
    gets the record, so what it searches is checked from then on."""
    import optuna

    from bertkit import tune

    optuna.logging.set_verbosity(optuna.logging.ERROR)

    def legacy(folder: Path, direction: str) -> optuna.Study:
        folder.mkdir()
        storage = f"sqlite:///{folder / 'study.db'}"
        study = optuna.create_study(storage=storage, study_name="bertkit", direction=direction)
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
        return study

    legacy(tmp_path / "down", "minimize")
    with pytest.raises(ConfigError, match=r"this study minimizes its metric; it cannot tune mcc"):
        tune(TrainConfig(), load_data(data_dir / "train.csv"), None, tmp_path / "down", trials=1)
    up = legacy(tmp_path / "up", "maximize")
    # one finished trial already: trials=1 runs none, and writes the best (the legacy trial) out
    tune(TrainConfig(), load_data(data_dir / "train.csv"), None, tmp_path / "up", trials=1)
    assert optuna.load_study(study_name="bertkit", storage=up._storage).user_attrs["search"]["metric"] == "mcc"


def test_the_api_refuses_several_seeds_and_cross_validation_under_torchrun(data_dir, tmp_path, monkeypatch):
    from bertkit import cross_validate, train_seeds

    monkeypatch.setenv("WORLD_SIZE", "2")
    data = load_data(data_dir / "train.csv")
    with pytest.raises(ConfigError, match=r"^train_seeds runs one process per seed; launch it without torchrun"):
        train_seeds(TrainConfig(), data, None, tmp_path / "seeds", 2)
    with pytest.raises(ConfigError, match=r"^cross-validation trains its folds one after another in one process"):
        cross_validate(TrainConfig(), data, 3)
    assert not (tmp_path / "seeds").exists()


def test_a_continued_study_may_change_how_trials_run_but_not_what_they_search(data_dir):
    from bertkit.tuning import SearchSpace, _search_record

    train = load_data(data_dir / "train.csv")

    def record(**options):
        return _search_record(TrainConfig(**options), train, None, "f1", "classification", SearchSpace())

    assert record() == record(seed=7, precision="fp32", device="cpu", learning_rate=1e-4)
    assert record() != record(label_smoothing=0.1)
    assert record() != record(cuda_graphs=True)  # it turns the default R-Drop off: trials would not compare
