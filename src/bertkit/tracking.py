"""Experiment tracking of a training run (``--track mlflow[:URI]``): the options, per-epoch metrics, the
validation report's plots and the model folder, logged to an MLflow tracking store.

MLflow is imported only when a run asks for tracking (``pip install 'bertkit[track]'``). The training loop knows
nothing of it: :func:`tracked` gives :func:`bertkit.runs.fit_and_save` a :class:`Tracker` whose ``log_epoch`` is
the estimator's ``on_epoch`` hook and whose ``finish`` logs the saved folder. ``--track mlflow`` uses
``MLFLOW_TRACKING_URI`` when set, else MLflow's own default store (MLflow 3: ``./mlflow.db``, SQLite, with
artifacts under ``./mlruns``; ``mlflow ui`` in the same folder shows the runs); ``--track mlflow:URI`` names the
store (``sqlite:///path.db``, ``http://host:5000``, ...). The experiment is ``MLFLOW_EXPERIMENT_NAME`` or
``bertkit``; the run is named after the output folder.
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

    def __init__(self, client: Any = None, run_id: str | None = None) -> None:
        self.client, self.run_id = client, run_id
        self.logged_epochs: set[int] = set()

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
    config: TrainConfig, output: Path, run_options: Mapping[str, Any] | None = None, *, enabled: bool = True
) -> Iterator[Tracker]:
    """A :class:`Tracker` for one training run, logging to the store ``config.track`` names (a no-op tracker
    without ``config.track`` or with ``enabled`` false, e.g. on the other ranks of a torchrun). The MLflow run
    ends FINISHED, or FAILED (KILLED on Ctrl-C) when the block raises."""
    if not config.track or not enabled:
        yield Tracker()
        return
    client, run_id = _start(config, output, run_options or {})
    status = "FAILED"
    try:
        yield Tracker(client, run_id)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(run_id, status)


def _start(config: TrainConfig, output: Path, run_options: Mapping[str, Any]) -> tuple[Any, str]:
    """Open the store, find or create the experiment, create the run and log the options known before fitting."""
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
        tags = {"bertkit.output": str(Path(output).resolve())}
        run_id = client.create_run(experiment_id, run_name=Path(output).name, tags=tags).info.run_id
    except MlflowException as exc:
        store = uri or "MLflow's default store"
        raise ConfigError(f"--track {config.track}: cannot log to {store} ({exc.message.splitlines()[0]})") from None
    tracker = Tracker(client, run_id)
    options = {k: v for k, v in config.to_dict().items() if k not in (*RESOLVED, *NOT_LOGGED)}
    tracker.log_params({**options, **{f"data.{k}": v for k, v in run_options.items() if v is not None}})
    return client, run_id
