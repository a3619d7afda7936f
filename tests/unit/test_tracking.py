"""--track: the accepted forms, the message without MLflow, and what a tracked run hands to MLflow's client
(here a recording stand-in for ``mlflow.tracking.MlflowClient``; tests/integration/test_tracking_mlflow.py logs
to a real store)."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field

import pytest
from helpers import sentiment_examples

from bertkit.config import TrainConfig
from bertkit.data.dataset import from_lists
from bertkit.exceptions import ConfigError, ModelLoadError
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


def test_a_model_that_cannot_load_opens_no_run(tiny_bert, tmp_path, recorder):
    from bertkit.runs import fit_and_save

    texts, labels = sentiment_examples(8)
    for config, error in (
        (TrainConfig(model=str(tmp_path / "missing"), track="mlflow"), ModelLoadError),
        (TrainConfig(model=str(tiny_bert), max_length=4096, track="mlflow"), ConfigError),
    ):
        with pytest.raises(error):
            fit_and_save(config, from_lists(texts, labels), None, tmp_path / "model", progress=False)
    assert recorder.tracking_uri is None and recorder.status is None  # no client made, no run opened


def test_an_epoch_logged_before_an_interruption_is_not_logged_again(recorder):
    tracker = Tracker(recorder, "run-1", "7", "mlflow")
    tracker.logged_epochs = {1}  # a resumed run's: epoch 1 ended (and was logged) after the step checkpoint
    tracker.log_epoch({"epoch": 1, "train_loss": 0.5})
    tracker.log_epoch({"epoch": 2, "train_loss": 0.4})
    assert recorder.metrics == [("train_loss", 0.4, 2)]


def test_a_failed_run_ends_failed(tmp_path, recorder):
    with pytest.raises(RuntimeError), tracked(TrainConfig(track="mlflow"), tmp_path) as tracker:
        assert isinstance(tracker, Tracker) and recorder.tracking_uri is None
        raise RuntimeError("out of memory")
    assert recorder.status == "FAILED"


@dataclass
class RecordedRun:
    name: str
    tags: dict
    params: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)
    artifacts: list = field(default_factory=list)
    status: str | None = None

    def steps(self, key: str) -> list[int]:
        return [step for name, _, step in self.metrics if name == key]


@dataclass
class Store:
    """Records several runs, as a group of trainings (cv, --seeds) asks an MlflowClient for them."""

    runs: dict = field(default_factory=dict)

    def get_experiment_by_name(self, name):
        return types.SimpleNamespace(experiment_id="3")

    def create_run(self, experiment_id, run_name, tags):
        assert experiment_id == "3"
        run_id = f"run-{len(self.runs) + 1}"
        self.runs[run_id] = RecordedRun(run_name, dict(tags))
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id))

    def log_batch(self, run_id, metrics=(), params=()):
        run = self.runs[run_id]
        assert run.status is None, "logged to an ended run"
        duplicate = [p.key for p in params if p.key in run.params]
        assert not duplicate, f"MLflow refuses a parameter logged twice: {duplicate}"
        run.params.update({p.key: p.value for p in params})
        run.metrics += [(m.key, m.value, m.step) for m in metrics]

    def set_tag(self, run_id, key, value):
        self.runs[run_id].tags[key] = value

    def log_artifacts(self, run_id, local_dir, artifact_path):
        self.runs[run_id].artifacts.append((artifact_path, local_dir))

    def log_artifact(self, run_id, local_path):
        self.runs[run_id].artifacts.append((None, local_path))

    def set_terminated(self, run_id, status):
        self.runs[run_id].status = status


@pytest.fixture
def store(recorder, monkeypatch) -> Store:
    made = Store()
    monkeypatch.setattr(sys.modules["mlflow.tracking"], "MlflowClient", lambda tracking_uri=None: made)
    return made


def _children(store: Store, parent_id: str) -> list[RecordedRun]:
    return [run for run in store.runs.values() if run.tags.get("mlflow.parentRunId") == parent_id]


@pytest.mark.parametrize("keep_models", [False, True])
def test_cross_validation_is_one_run_with_a_nested_run_per_fold(tiny_bert, tmp_path, store, keep_models):
    from bertkit.cross_validation import cross_validate

    texts, labels = sentiment_examples(24)
    config = TrainConfig(model=str(tiny_bert), epochs=2, batch_size=8, max_length=24, track="mlflow")
    output = tmp_path / "cv-run"
    result = cross_validate(config, from_lists(texts, labels, name="train"), 2, output=output,
                            keep_models=keep_models, progress=False, run_options={"text_column": "text"})  # fmt: skip
    parent = store.runs["run-1"]
    assert parent.name == "cv-run" and parent.tags["bertkit.kind"] == "cv" and parent.status == "FINISHED"
    # not bertkit.output, which --resume looks runs up by
    assert parent.tags["bertkit.group_output"] == str(output.resolve()) and "bertkit.output" not in parent.tags
    assert parent.params["cv.folds"] == "2" and parent.params["epochs"] == "2"
    assert parent.params["learning_rate"] == "auto" and parent.params["batch_size"] == "8"  # as given
    assert parent.params["data.text_column"] == "text" and "track" not in parent.params
    folds = _children(store, "run-1")
    assert [run.name for run in folds] == ["fold-1", "fold-2"] and len(store.runs) == 3
    for k, run in enumerate(folds, 1):
        assert run.status == "FINISHED" and run.params["epochs"] == "2" and run.params["learning_rate"] == "0.0001"
        assert run.steps("train_loss") == [1, 2] and run.steps("val_accuracy") == [1, 2]
        assert run.tags["bertkit.kept_epoch"] == str(result.per_fold[k - 1]["kept_epoch"])
        if keep_models:
            assert run.tags["bertkit.output"] == str((output / f"fold-{k}").resolve())
            assert ("model", str(output / f"fold-{k}")) in run.artifacts
        else:
            assert "bertkit.output" not in run.tags and run.artifacts == []
    # each fold's final scores at step k, the mean, std and pooled scores, and the two result files
    fold_accuracy = [(value, step) for key, value, step in parent.metrics if key == "fold_accuracy"]
    assert fold_accuracy == [(run["metrics"]["accuracy"], k) for k, run in enumerate(result.per_fold, 1)]
    logged = {key: value for key, value, _ in parent.metrics}
    assert logged["mean_accuracy"] == pytest.approx(result.mean["accuracy"])
    assert logged["std_accuracy"] == pytest.approx(result.std["accuracy"])
    assert logged["pooled_accuracy"] == pytest.approx(result.oof_metrics["accuracy"])
    assert parent.artifacts == [(None, str(output / "oof_predictions.csv")), (None, str(output / "cv_report.json"))]


def test_a_failing_fold_ends_its_run_and_the_group_failed(tiny_bert, tmp_path, store, monkeypatch):
    from bertkit.classification.estimator import TextClassifier
    from bertkit.cross_validation import cross_validate

    fit = TextClassifier.fit
    calls = []

    def fit_then_fail_on_the_second_fold(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(TextClassifier, "fit", fit_then_fail_on_the_second_fold)
    texts, labels = sentiment_examples(24)
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=8, max_length=24, track="mlflow")
    with pytest.raises(RuntimeError, match="out of memory"):
        cross_validate(config, from_lists(texts, labels, name="train"), 2, output=tmp_path / "cv", progress=False)
    assert [(run.name, run.status) for run in store.runs.values()] == [
        ("cv", "FAILED"),
        ("fold-1", "FINISHED"),
        ("fold-2", "FAILED"),
    ]


def test_seeds_are_one_run_with_a_nested_run_per_seed(tiny_bert, tmp_path, store):
    from bertkit.seeds import train_seeds

    texts, labels = sentiment_examples(24)
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=8, max_length=24, track="mlflow", seed=5)
    output = tmp_path / "seeded"
    result = train_seeds(config, from_lists(texts, labels, name="train"), None, output, 2, progress=False,
                         export=False)  # fmt: skip
    parent = store.runs["run-1"]
    assert parent.tags["bertkit.kind"] == "seeds" and parent.params["seeds.seeds"] == "5,6"
    assert parent.status == "FINISHED" and parent.artifacts == [(None, str(output / "seeds.json"))]
    runs = _children(store, "run-1")
    assert [(run.name, run.params["seed"], run.status) for run in runs] == [
        ("seed-5", "5", "FINISHED"),
        ("seed-6", "6", "FINISHED"),
    ]
    assert all(("model", str(output / run.name)) in run.artifacts for run in runs)
    logged = {key: value for key, value, _ in parent.metrics}
    assert logged["mean_accuracy"] == pytest.approx(result.mean["accuracy"])
    assert [step for key, _, step in parent.metrics if key == "seed_accuracy"] == [5, 6]


def test_without_track_a_group_logs_nothing_and_imports_no_mlflow(tiny_bert, tmp_path, monkeypatch):
    from bertkit.cross_validation import cross_validate

    # any import of mlflow or a submodule (some may be loaded by earlier tests) now raises ImportError
    for name in [name for name in sys.modules if name.startswith("mlflow.")] + ["mlflow"]:
        monkeypatch.setitem(sys.modules, name, None)
    texts, labels = sentiment_examples(24)
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=8, max_length=24)
    result = cross_validate(config, from_lists(texts, labels, name="train"), 2, output=tmp_path / "cv",
                            progress=False)  # fmt: skip
    assert len(result.per_fold) == 2 and (tmp_path / "cv" / "cv_report.json").is_file()


def test_a_store_that_fails_after_training_says_so_in_one_line(tiny_bert, tmp_path, store, recorder):
    """The artifact store refuses the result files once every fold has trained: one ConfigError naming the
    store, the group ends FAILED, the folds FINISHED, and the results are on disk all the same."""
    from bertkit.cross_validation import cross_validate

    exception = sys.modules["mlflow.exceptions"].MlflowException

    def refuse(run_id, local_path):
        raise exception("disk full")

    store.log_artifact = refuse
    texts, labels = sentiment_examples(24)
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=8, max_length=24, track="mlflow:file:///x")
    with pytest.raises(ConfigError, match=r"^--track mlflow:file:///x: cannot log to file:///x \(unreachable\)$"):
        cross_validate(config, from_lists(texts, labels, name="train"), 2, output=tmp_path / "cv", progress=False)
    assert [run.status for run in store.runs.values()] == ["FAILED", "FINISHED", "FINISHED"]
    assert (tmp_path / "cv" / "oof_predictions.csv").is_file()


def test_a_search_is_one_run_with_a_nested_run_per_trial(tiny_bert, tmp_path, store):
    pytest.importorskip("optuna", reason="pip install 'bertkit[tune]'")
    from bertkit.tuning import tune

    texts, labels = sentiment_examples(24)
    config = TrainConfig(model=str(tiny_bert), max_length=24, track="mlflow")
    study = tmp_path / "study"
    result = tune(config, from_lists(texts, labels, name="train"), None, study, trials=2, max_epochs=1)
    parent = store.runs["run-1"]
    assert parent.name == "study" and parent.tags["bertkit.kind"] == "tune" and parent.params["tune.trials"] == "2"
    assert parent.status == "FINISHED" and parent.tags["bertkit.best_trial"] in ("0", "1")
    # the parent logs the ranges searched, not the base values the trials replaced
    assert "max_length" not in parent.params and "epochs" not in parent.params
    assert parent.params["tune.range.epochs"] == "(1, 1)" and "tune.range.learning_rate" in parent.params
    trials = _children(store, "run-1")
    assert [(run.name, run.status) for run in trials] == [("trial-0", "FINISHED"), ("trial-1", "FINISHED")]
    for run, row in zip(trials, result.trials, strict=True):  # each trial's own options, as it trained
        assert run.params["epochs"] == "1" and run.params["batch_size"] == str(row["params"]["batch_size"])
        assert run.steps(f"val_{result.metric}") == [1]
    logged = {key: value for key, value, _ in parent.metrics}
    assert logged[f"best_{result.metric}"] == pytest.approx(result.best_value)
    assert [step for key, _, step in parent.metrics if key == f"trial_{result.metric}"] == [0, 1]
    assert parent.artifacts == [(None, str(study / "best_config.json")), (None, str(study / "trials.json"))]
    # the search's --track is not part of the recipe it found
    assert json.loads((study / "best_config.json").read_text())["track"] is None


def test_a_stopped_run_ends_killed_and_the_exception_goes_on(tmp_path, store):
    class Pruned(Exception):
        pass

    config = TrainConfig(track="mlflow", learning_rate=3e-5, batch_size=16)  # as a search's trial draws them
    with pytest.raises(Pruned), tracked(config, tmp_path, stopped=(Pruned,)):
        raise Pruned
    run = store.runs["run-1"]
    assert run.status == "KILLED"
    # stopped before Tracker.finish: the options it ran with are there all the same; those resolved later are not
    assert run.params["learning_rate"] == "3e-05" and run.params["batch_size"] == "16"
    assert "classifier_pooling" not in run.params and "rdrop" not in run.params


def test_resume_continues_only_the_unfinished_run_that_wrote_the_checkpoint(tmp_path):
    from types import SimpleNamespace

    from bertkit.engine import checkpoint
    from bertkit.tracking import _interrupted_run

    checkpoint.write(tmp_path / "checkpoint", {"n": 1}, {"fingerprint": {}})
    written = (tmp_path / "checkpoint" / checkpoint.META_FILE).stat().st_mtime * 1000

    def found(status: str, start: float, end: float | None) -> bool:
        tags = {"bertkit.output": str(tmp_path.resolve())}
        run = SimpleNamespace(info=SimpleNamespace(status=status, start_time=start, end_time=end),
                              data=SimpleNamespace(tags=tags))  # fmt: skip
        client = SimpleNamespace(search_runs=lambda *args, **kwargs: [run])
        return _interrupted_run(client, "0", tmp_path) is run

    assert found("FAILED", written - 10, written + 10) and found("RUNNING", written - 10, None)
    assert not found("FINISHED", written - 10, written + 10)  # nothing to continue
    assert not found("KILLED", written - 10, written - 5)  # written after that run ended: an untracked run's
    assert not found("RUNNING", written + 5, None)  # written before that run began
    # a run ended once, then continued (RUNNING again) and killed: its end_time bounds nothing
    assert found("RUNNING", written - 10, written - 5)
