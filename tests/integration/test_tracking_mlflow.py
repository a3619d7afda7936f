"""--track mlflow against a real local MLflow store (SQLite, MLflow 3's default kind) in a temporary folder: the
run, its options, one metric value per epoch and the artifacts (report plots, model folder) are there."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
from helpers import sentiment_examples

from bertkit.config import TrainConfig
from bertkit.data.dataset import from_lists

mlflow = pytest.importorskip("mlflow", reason="pip install 'bertkit[track]'")


def test_a_tracked_run_logs_options_epochs_and_artifacts(tiny_bert, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from bertkit.runs import fit_and_save

    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    texts, labels = sentiment_examples(48)
    config = TrainConfig(model=str(tiny_bert), epochs=2, batch_size=8, max_length=24, track=f"mlflow:{uri}")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit_and_save(config, from_lists(texts, labels, name="train"), None, tmp_path / "model", progress=False,
                     run_options={"text_column": "text"})  # fmt: skip
    # MLflow's own store warns nothing a user would see (its SQLAlchemy deprecation notes are DeprecationWarnings)
    assert not [str(w.message) for w in seen if issubclass(w.category, UserWarning | FutureWarning)]

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("bertkit")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "model"
    params = run.data.params
    assert params["epochs"] == "2" and params["batch_size"] == "8" and params["learning_rate"] == "0.0001"
    assert params["classifier_pooling"] == "cls" and params["data.text_column"] == "text"
    for metric in ("train_loss", "val_mcc", "val_accuracy"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert sorted(m.step for m in history) == [1, 2], metric
    assert run.data.tags["bertkit.kept_epoch"] in ("1", "2")
    report = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert any(p.endswith(".png") for p in report), report
    model = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/model.safetensors", "model/bertkit.json", "model/config.json"} <= model
    assert (tmp_path / "mlruns").is_dir()


def test_a_resumed_run_continues_the_interrupted_mlflow_run(tiny_bert, tmp_path, monkeypatch):
    """Killed in epoch 2 after epoch 1's checkpoint, then resumed (from DIR/checkpoint): one MLflow run,
    FINISHED, each epoch logged once (epoch 1 before the kill, epoch 2 after), the options as first logged. A later
    training into the same folder, killed and resumed, continues its own run, not the finished one."""
    from helpers import Killed, kill_at_micro_batch
    from mlflow.tracking import MlflowClient

    from bertkit.runs import fit_and_save

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    texts, labels = sentiment_examples(32)  # 29 training rows: 4 micro-batches of 8 an epoch
    config = TrainConfig(model=str(tiny_bert), epochs=2, batch_size=8, max_length=24, track=f"mlflow:{uri}",
                         checkpoint_every="epoch")  # fmt: skip
    data, output = from_lists(texts, labels, name="train"), tmp_path / "model"
    client = MlflowClient(tracking_uri=uri)

    def killed_in_epoch_two() -> str:
        with monkeypatch.context() as patch:
            kill_at_micro_batch(patch, 6)
            with pytest.raises(Killed):
                fit_and_save(config, data, None, output, progress=False, replace=True)
        experiment_id = client.get_experiment_by_name("bertkit").experiment_id
        latest = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"])[0]
        assert latest.info.status == "FAILED"
        assert [m.step for m in client.get_metric_history(latest.info.run_id, "train_loss")] == [1]
        return latest.info.run_id

    def assert_finished_once_per_epoch(run_id: str) -> None:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.tags["bertkit.resumed"] == "true"
        assert run.data.params["epochs"] == "2"
        for metric in ("train_loss", "val_mcc"):
            assert sorted(m.step for m in client.get_metric_history(run_id, metric)) == [1, 2], metric

    first = killed_in_epoch_two()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_and_save(config, data, None, output, progress=False, resume=output / "checkpoint")
    experiment_id = client.get_experiment_by_name("bertkit").experiment_id
    assert len(client.search_runs([experiment_id])) == 1
    assert_finished_once_per_epoch(first)

    second = killed_in_epoch_two()
    fit_and_save(config, data, None, output, progress=False, resume=output)
    assert second != first and len(client.search_runs([experiment_id])) == 2
    assert_finished_once_per_epoch(second)
    assert client.get_run(first).info.status == "FINISHED"

    # a tracked run killed, then an untracked one into the same folder killed: the checkpoint is the untracked
    # run's, so resuming it with --track opens a run of its own rather than continuing the tracked one
    third = killed_in_epoch_two()
    with monkeypatch.context() as patch:
        kill_at_micro_batch(patch, 6)
        with pytest.raises(Killed):
            fit_and_save(dataclasses.replace(config, track=None), data, None, output, progress=False, replace=True)
    fit_and_save(config, data, None, output, progress=False, resume=output)
    assert len(client.search_runs([experiment_id])) == 4 and client.get_run(third).info.status == "FAILED"


def test_cross_validation_logs_a_parent_run_with_a_nested_run_per_fold(tiny_bert, tmp_path, monkeypatch):
    """bertkit cv --track: one parent run (mean, std, the result files) and a run per fold under it, found in a
    real store by MLflow's own parent tag."""
    from mlflow.tracking import MlflowClient

    from bertkit.cross_validation import cross_validate

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    texts, labels = sentiment_examples(36)
    config = TrainConfig(model=str(tiny_bert), epochs=2, batch_size=8, max_length=24, track=f"mlflow:{uri}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = cross_validate(config, from_lists(texts, labels, name="train"), 3, output=tmp_path / "cv-folds",
                                progress=False)  # fmt: skip
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.get_experiment_by_name("bertkit").experiment_id
    (parent,) = client.search_runs([experiment_id], filter_string="tags.`bertkit.kind` = 'cv'")
    assert (
        parent.info.status == "FINISHED"
        and parent.info.run_name == "cv-folds"
        and parent.data.params["cv.folds"] == "3"
    )
    assert parent.data.metrics["mean_accuracy"] == pytest.approx(result.mean["accuracy"])
    assert parent.data.metrics["std_accuracy"] == pytest.approx(result.std["accuracy"])
    assert sorted(m.step for m in client.get_metric_history(parent.info.run_id, "fold_accuracy")) == [1, 2, 3]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"cv_report.json", "oof_predictions.csv"}
    query = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    folds = client.search_runs([experiment_id], filter_string=query, order_by=["attributes.run_name ASC"])
    assert [run.info.run_name for run in folds] == ["fold-1", "fold-2", "fold-3"]
    for run in folds:
        assert run.info.status == "FINISHED" and run.data.params["epochs"] == "2"
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")) == [1, 2]
