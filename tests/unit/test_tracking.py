"""--track: the accepted forms, the message without MLflow, and what a tracked run hands to MLflow's client
(here a recording stand-in for ``mlflow.tracking.MlflowClient``; tests/integration/test_tracking_mlflow.py logs
to a real store)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest
from helpers import sentiment_examples

from bertkit.config import TrainConfig
from bertkit.data.dataset import from_lists
from bertkit.exceptions import ConfigError
from bertkit.tracking import Tracker, tracked, tracking_uri


@pytest.mark.parametrize("value", ["wandb", "mlflow:", "MLflow", "mlflow-sqlite:///x.db", ""])
def test_an_invalid_track_value_names_the_allowed_forms(value):
    with pytest.raises(ConfigError, match=r"--track must be 'mlflow' or 'mlflow:URI' \(e.g. mlflow:sqlite"):
        TrainConfig(track=value)


def test_the_uri_is_what_follows_mlflow():
    assert tracking_uri("mlflow") is None
    assert tracking_uri("mlflow:sqlite:///runs.db") == "sqlite:///runs.db"
    assert tracking_uri("mlflow:http://host:5000") == "http://host:5000"


def test_without_mlflow_the_error_says_what_to_install(monkeypatch, tmp_path):
    # import mlflow (and its submodules, which earlier tests may have imported already) now raises ImportError
    for name in [name for name in sys.modules if name.startswith("mlflow.")] + ["mlflow"]:
        monkeypatch.setitem(sys.modules, name, None)
    message = r"--track mlflow needs MLflow, which is not installed: pip install 'bertkit\[track\]'"
    with pytest.raises(ConfigError, match=message), tracked(TrainConfig(track="mlflow"), tmp_path):
        pass


def test_no_track_logs_nothing_and_imports_no_mlflow(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with tracked(TrainConfig(), tmp_path) as tracker:
        tracker.log_epoch({"epoch": 1, "train_loss": 0.5})
    assert tracker.client is None


@dataclass
class Recorder:
    """Records what bertkit asks of an MlflowClient."""

    tracking_uri: str | None = None
    params: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)
    tags: dict = field(default_factory=dict)
    artifacts: list = field(default_factory=list)
    status: str | None = None

    def get_experiment_by_name(self, name):
        return None

    def create_experiment(self, name):
        self.experiment = name
        return "7"

    def create_run(self, experiment_id, run_name, tags):
        self.run_name, self.tags = run_name, dict(tags)
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id="run-1"))

    def log_batch(self, run_id, metrics=(), params=()):
        assert run_id == "run-1"
        duplicate = [p.key for p in params if p.key in self.params]
        assert not duplicate, f"MLflow refuses a parameter logged twice: {duplicate}"
        self.params.update({p.key: p.value for p in params})
        self.metrics += [(m.key, m.value, m.step) for m in metrics]

    def set_tag(self, run_id, key, value):
        self.tags[key] = value

    def log_artifacts(self, run_id, local_dir, artifact_path):
        self.artifacts.append((artifact_path, local_dir))

    def set_terminated(self, run_id, status):
        self.status = status


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    made = Recorder()

    def client(tracking_uri=None):
        made.tracking_uri = tracking_uri
        return made

    class MlflowException(Exception):
        message = "unreachable"

    entities = types.SimpleNamespace(
        Param=lambda key, value: types.SimpleNamespace(key=key, value=value),
        Metric=lambda key, value, timestamp, step: types.SimpleNamespace(key=key, value=value, step=step),
    )
    modules = {
        "mlflow": types.SimpleNamespace(), "mlflow.tracking": types.SimpleNamespace(MlflowClient=client),
        "mlflow.exceptions": types.SimpleNamespace(MlflowException=MlflowException), "mlflow.entities": entities,
    }  # fmt: skip
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return made


def test_a_tracked_run_logs_options_each_epoch_and_the_saved_folder(tiny_bert, tmp_path, recorder):
    from bertkit.runs import fit_and_save

    texts, labels = sentiment_examples(40)
    config = TrainConfig(model=str(tiny_bert), epochs=2, batch_size=8, max_length=24, track="mlflow:sqlite:///x.db")
    output = tmp_path / "model"
    fit_and_save(config, from_lists(texts, labels, name="train"), None, output, progress=False,
                 run_options={"text_column": "text", "label_names": None})  # fmt: skip
    assert recorder.tracking_uri == "sqlite:///x.db" and recorder.experiment == "bertkit"
    assert recorder.run_name == "model" and recorder.status == "FINISHED"
    params = recorder.params
    assert params["epochs"] == "2" and params["max_length"] == "24" and params["data.text_column"] == "text"
    assert params["learning_rate"] == "0.0001" and params["classifier_pooling"] == "cls"  # resolved from the data
    assert "track" not in params and "data.label_names" not in params
    for name in ("train_loss", "val_mcc", "learning_rate"):
        assert [step for key, _, step in recorder.metrics if key == name] == [1, 2], name
    assert recorder.tags["bertkit.output"] == str(output.resolve()) and recorder.tags["bertkit.kept_epoch"] in "12"
    assert recorder.artifacts == [("report", str(output / "report")), ("model", str(output))]


def test_a_failed_run_ends_failed(tmp_path, recorder):
    with pytest.raises(RuntimeError), tracked(TrainConfig(track="mlflow"), tmp_path) as tracker:
        assert isinstance(tracker, Tracker) and recorder.tracking_uri is None
        raise RuntimeError("out of memory")
    assert recorder.status == "FAILED"
