"""Experiment tracking of a training run (``--track mlflow[:URI]``): the options, per-epoch metrics, the
validation report's plots and the model folder, logged to an MLflow tracking store.

MLflow is imported only when a run asks for tracking (``pip install 'bertkit[track]'``). The training loop knows
nothing of it: :func:`tracked` gives :func:`bertkit.runs.fit_and_save` a :class:`Tracker` whose ``log_epoch`` is
the estimator's ``on_epoch`` hook and whose ``finish`` logs the saved folder. ``--track mlflow`` uses
``MLFLOW_TRACKING_URI`` when set, else MLflow's own default store (MLflow 3: ``./mlflow.db``, SQLite, with
artifacts under ``./mlruns``; ``mlflow ui`` in the same folder shows the runs); ``--track mlflow:URI`` names the
store (``sqlite:///path.db``, ``http://host:5000``, ...). The experiment is ``MLFLOW_EXPERIMENT_NAME`` or
``bertkit``; the run is named after the output folder. A resumed run (``--resume DIR``) continues the MLflow run
that DIR's interrupted training started (found by its ``bertkit.output`` tag), so one training is one MLflow run
however often it was interrupted.

A run of several trainings (``bertkit cv``'s folds, ``bertkit train --seeds N``) is one parent MLflow run
(:func:`tracked_group`: the options, and at the end the metrics' mean and std) with one nested run per training
(``tracked(..., parent=group)``, MLflow's ``mlflow.parentRunId`` tag), which logs what a single training logs.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bertkit.config import TrainConfig
from bertkit.exceptions import ConfigError

EXPERIMENT = "bertkit"
RESOLVED = ("batch_size", "learning_rate", "rdrop", "classifier_pooling")
"""Options the run resolves from the data (TrainConfig.resolved, the model's pooling): logged once known."""
NOT_LOGGED = ("extra", "track")
INSTALL = "pip install 'bertkit[track]'"


def tracking_uri(track: str) -> str | None:
    """The store a ``--track`` value names: None for plain ``mlflow`` (MLflow's default or the environment's)."""
    if track == "mlflow":
        return None
    if track.startswith("mlflow:") and track[len("mlflow:") :]:
        return track[len("mlflow:") :]
    raise ConfigError(f"--track must be 'mlflow' or 'mlflow:URI' (e.g. mlflow:sqlite:///mlflow.db) (got {track!r})")


class Tracker:
    """One MLflow run: ``log_epoch`` takes each epoch's history record, ``finish`` the fitted classifier and the
    folder it was saved to. The default tracker (``client=None``) does nothing."""

    def __init__(self, client: Any = None, run_id: str | None = None, experiment_id: str | None = None) -> None:
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id
        self.logged_epochs: set[int] = set()

    def log_metrics(self, values: Mapping[str, Any], step: int = 0) -> None:
        """The finite numbers of ``values`` at ``step`` (a group's summary, a fold's final scores)."""
        if self.client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, value in values.items()
            if isinstance(value, int | float) and math.isfinite(value)
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_files(self, paths: list[Path]) -> None:
        """Those files (that exist) as artifacts at the run's top level."""
        if self.client is None:
            return
        for path in paths:
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path))

    def log_params(self, values: Mapping[str, Any]) -> None:
        if self.client is None or not values:
            return
        from mlflow.entities import Param

        # MLflow caps a parameter value at 6,000 characters; bertkit's are far shorter (a long --model path at most)
        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in values.items()])

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        """The record's numbers (train loss, learning rate, ``val_*`` metrics, throughput) at step = epoch."""
        if self.client is None:
            return
        from mlflow.entities import Metric

        epoch, now = int(record["epoch"]), int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, epoch)
            for key, value in record.items()
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value)
        ]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.logged_epochs.add(epoch)

    def finish(self, classifier: Any, output: Path | None) -> None:
        """The options resolved from the data, the epochs not logged live (those of a resumed run's
        checkpoint), the kept epoch, and the saved folder: the report under ``report/``, the model under
        ``model/``."""
        if self.client is None:
            return
        config = classifier.config_.to_dict()
        self.log_params({k: config[k] for k in RESOLVED})
        for record in classifier.history_:
            if int(record["epoch"]) not in self.logged_epochs:
                self.log_epoch(record)
        for key in ("best_epoch", "kept_epoch"):
            self.client.set_tag(self.run_id, f"bertkit.{key}", str(getattr(classifier, f"{key}_")))
        if output is not None:
            if (output / "report").is_dir():
                self.client.log_artifacts(self.run_id, str(output / "report"), "report")
            self.client.log_artifacts(self.run_id, str(output), "model")


@contextlib.contextmanager
def tracked(
    config: TrainConfig, output: Path | None, run_options: Mapping[str, Any] | None = None, *, enabled: bool = True,
    resume_from: str | Path | None = None, parent: Tracker | None = None, run_name: str | None = None,
) -> Iterator[Tracker]:  # fmt: skip
    """A :class:`Tracker` for one training run, logging to the store ``config.track`` names (a no-op tracker
    without ``config.track`` or with ``enabled`` false, e.g. on the other ranks of a torchrun). The MLflow run
    ends FINISHED, or FAILED (KILLED on Ctrl-C) when the block raises. ``resume_from``: the folder whose
    checkpoint the run continues; the unfinished MLflow run that trained into it is continued (its epochs logged
    so far are not logged again), else a new run starts. ``parent`` (a :func:`tracked_group` tracker): the run
    is nested under it, named ``run_name`` (``output``: the folder it saves to, None when it saves none)."""
    if not config.track or not enabled or (parent is not None and parent.client is None):
        yield Tracker()
        return
    if parent is not None:
        tracker = _start_nested(config, parent, output, run_name or "run", run_options or {})
    else:
        if output is None:
            raise ValueError("a tracked run that is not nested names its output folder")
        tracker = _start(config, output, run_options or {}, resume_from)
    with _ended(tracker):
        yield tracker


@contextlib.contextmanager
def tracked_group(
    config: TrainConfig, output: Path | None, run_options: Mapping[str, Any] | None = None, *, kind: str,
    params: Mapping[str, Any] | None = None,
) -> Iterator[Tracker]:  # fmt: skip
    """The parent MLflow run of several trainings of ``config`` (``kind``: ``cv`` or ``seeds``), named after
    ``output``: the options, the data options and ``params`` (``kind.name``), a ``bertkit.kind`` tag; the
    trainings are nested under it with ``tracked(..., parent=...)``. A no-op tracker without ``config.track``."""
    if not config.track:
        yield Tracker()
        return
    name = Path(output).name if output is not None else kind
    tags = {"bertkit.kind": kind} | ({"bertkit.output": str(Path(output).resolve())} if output is not None else {})
    tracker = _create(config, name, tags)
    extra = {f"{kind}.{k}": v for k, v in (params or {}).items()}
    tracker.log_params({**_options(config), **_data_options(run_options or {}), **extra})
    with _ended(tracker):
        yield tracker


@contextlib.contextmanager
def _ended(tracker: Tracker) -> Iterator[None]:
    """Set the run's end status: FINISHED, or FAILED (KILLED on Ctrl-C) when the block raises."""
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.client.set_terminated(tracker.run_id, status)


def _options(config: TrainConfig) -> dict[str, Any]:
    """The options known before fitting (those resolved from the data are logged by :meth:`Tracker.finish`)."""
    return {k: v for k, v in config.to_dict().items() if k not in (*RESOLVED, *NOT_LOGGED)}


def _data_options(run_options: Mapping[str, Any]) -> dict[str, Any]:
    return {f"data.{k}": v for k, v in run_options.items() if v is not None}


def _client(config: TrainConfig) -> tuple[Any, str]:
    """An MlflowClient on the store ``config.track`` names, and the experiment's id (created when missing)."""
    uri = tracking_uri(config.track)
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(f"--track {config.track} needs MLflow, which is not installed: {INSTALL}") from None
    try:
        client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(name)
    except MlflowException as exc:
        raise _unreachable(config, exc) from None
    return client, experiment_id


def _unreachable(config: TrainConfig, exc: Any) -> ConfigError:
    store = tracking_uri(config.track) or "MLflow's default store"
    return ConfigError(f"--track {config.track}: cannot log to {store} ({exc.message.splitlines()[0]})")


def _create(
    config: TrainConfig, name: str, tags: Mapping[str, str], client: Any = None, experiment_id: str = ""
) -> Tracker:
    """A new run named ``name`` with ``tags`` (on a new client unless one is given)."""
    if client is None:
        client, experiment_id = _client(config)  # first: it says what to install when MLflow is missing
    from mlflow.exceptions import MlflowException

    try:
        run_id = client.create_run(experiment_id, run_name=name, tags=dict(tags)).info.run_id
    except MlflowException as exc:
        raise _unreachable(config, exc) from None
    return Tracker(client, run_id, experiment_id)


def _start_nested(
    config: TrainConfig, parent: Tracker, output: Path | None, name: str, run_options: Mapping[str, Any]
) -> Tracker:
    """A run under ``parent`` (MLflow's ``mlflow.parentRunId`` tag) with the options known before fitting."""
    tags = {"mlflow.parentRunId": parent.run_id}
    if output is not None:
        tags["bertkit.output"] = str(Path(output).resolve())
    tracker = _create(config, name, tags, parent.client, parent.experiment_id or "")
    tracker.log_params({**_options(config), **_data_options(run_options)})
    return tracker


def _start(
    config: TrainConfig, output: Path, run_options: Mapping[str, Any], resume_from: str | Path | None
) -> Tracker:
    """Open the store, find or create the experiment; continue the interrupted run of ``resume_from`` (its
    tracker knows the epochs that run logged), else create a run and log the options known before fitting."""
    client, experiment_id = _client(config)  # first: it says what to install when MLflow is missing
    from mlflow.exceptions import MlflowException

    try:
        interrupted = None if resume_from is None else _interrupted_run(client, experiment_id, resume_from)
        if interrupted is not None:
            run_id = interrupted.info.run_id
            client.update_run(run_id, status="RUNNING")
            client.set_tag(run_id, "bertkit.resumed", "true")
            # where it trains now: a second interruption, resumed from this output, finds the run again
            client.set_tag(run_id, "bertkit.output", str(Path(output).resolve()))
            # the options were logged when the run started (MLflow refuses a parameter logged twice with a
            # different value; a resumed run has the same options, its checkpoint's fingerprint says so)
            tracker = Tracker(client, run_id, experiment_id)
            tracker.logged_epochs = _logged_epochs(client, interrupted)
            return tracker
    except MlflowException as exc:
        raise _unreachable(config, exc) from None
    tracker = _create(config, Path(output).name, {"bertkit.output": str(Path(output).resolve())}, client, experiment_id)
    tracker.log_params({**_options(config), **_data_options(run_options)})
    return tracker


def _interrupted_run(client: Any, experiment_id: str, resume_from: str | Path) -> Any:
    """The run that trained into the folder holding ``resume_from``'s checkpoint when the latest such run did not
    finish (FAILED, KILLED, or still RUNNING after its process died), else None (no checkpoint there: the fit
    says so)."""
    from bertkit.engine.checkpoint import locate

    try:
        path = str(locate(resume_from).parent.resolve())  # --resume DIR or DIR/checkpoint: DIR trained
    except ConfigError:
        return None
    # MLflow's filter strings have no escape for a quote: a path holding one is matched here instead
    query = "" if "'" in path else f"tags.`bertkit.output` = '{path}'"
    runs = client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time DESC"])
    runs = [run for run in runs if run.data.tags.get("bertkit.output") == path]
    return runs[0] if runs and runs[0].info.status != "FINISHED" else None


def _logged_epochs(client: Any, run: Any) -> set[int]:
    """The epochs (steps) the run logged any metric at: those a resumed run does not log again."""
    return {int(m.step) for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key)}
