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

    def __init__(
        self, client: Any = None, run_id: str | None = None, experiment_id: str | None = None, track: str = ""
    ) -> None:
        self.client, self.run_id, self.experiment_id, self.track = client, run_id, experiment_id, track
        self.logged_epochs: set[int] = set()
        self.logged_params: set[str] = set()
        """Parameters the run has: MLflow refuses one logged twice (a resumed run's, a resolved option given)."""

    @contextlib.contextmanager
    def _store_errors(self) -> Iterator[None]:
        """An MLflow error while logging (the store went away, a full disk) as one line naming the store."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            raise _unreachable(self.track, exc) from None

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
            with self._store_errors():
                self.client.log_batch(self.run_id, metrics=metrics)

    def log_spread(self, mean: Mapping[str, float], std: Mapping[str, float]) -> None:
        """A group's summary over its trainings: ``mean_<metric>`` and ``std_<metric>``."""
        self.log_metrics({f"mean_{k}": v for k, v in mean.items()} | {f"std_{k}": v for k, v in std.items()})

    def set_tag(self, key: str, value: str) -> None:
        if self.client is None:
            return
        with self._store_errors():
            self.client.set_tag(self.run_id, key, value)

    def log_files(self, paths: list[Path]) -> None:
        """Those files (that exist) as artifacts at the run's top level."""
        if self.client is None:
            return
        for path in paths:
            if Path(path).is_file():
                with self._store_errors():
                    self.client.log_artifact(self.run_id, str(path))

    def log_params(self, values: Mapping[str, Any]) -> None:
        """The ``values`` the run does not have yet (see :attr:`logged_params`)."""
        values = {k: v for k, v in values.items() if k not in self.logged_params}
        if self.client is None or not values:
            return
        from mlflow.entities import Param

        # MLflow caps a parameter value at 6,000 characters; bertkit's are far shorter (a long --model path at most)
        with self._store_errors():
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in values.items()])
        self.logged_params.update(values)

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        """The record's numbers (train loss, learning rate, ``val_*`` metrics, throughput) at step = epoch."""
        if self.client is None:
            return
        epoch = int(record["epoch"])
        if epoch in self.logged_epochs:  # logged before the interruption: a step checkpoint re-runs its epoch
            return
        self.log_metrics({key: value for key, value in record.items() if key != "epoch"}, step=epoch)
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
        with self._store_errors():
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
    params: Mapping[str, Any] | None = None, stopped: tuple[type[BaseException], ...] = (),
) -> Iterator[Tracker]:  # fmt: skip
    """A :class:`Tracker` for one training run, logging to the store ``config.track`` names (a no-op tracker
    without ``config.track`` or with ``enabled`` false, e.g. on the other ranks of a torchrun). The MLflow run
    ends FINISHED, or FAILED (KILLED on Ctrl-C) when the block raises. ``resume_from``: the folder whose
    checkpoint the run continues; the unfinished MLflow run that trained into it is continued (its epochs logged
    so far are not logged again), else a new run starts. ``parent`` (a :func:`tracked_group` tracker): the run
    is nested under it, named ``run_name`` (``output``: the folder it saves to, None when it saves none).
    ``params``: the options to log instead of ``config``'s (a run that is not a plain training: distillation).
    ``stopped``: exceptions that end the run KILLED, not FAILED (a search's pruned trial), and go on up."""
    if not config.track or not enabled or (parent is not None and parent.client is None):
        yield Tracker()
        return
    options = {**(_options(config) if params is None else dict(params)), **_data_options(run_options or {})}
    if parent is not None:
        tags = {"mlflow.parentRunId": parent.run_id}
        if output is not None:
            tags["bertkit.output"] = str(Path(output).resolve())
        tracker = _create(config, run_name or "run", tags, parent.client, parent.experiment_id or "")
    else:
        if output is None:
            raise ValueError("a tracked run that is not nested names its output folder")
        tracker, resumed = _start(config, output, resume_from)
        if resumed:  # its options were logged when it started (MLflow refuses a parameter logged twice with a
            options = {}  # different value; a resumed run has the same options, its checkpoint's fingerprint says so)
    with _ended(tracker, stopped):  # from here on the run ends FINISHED or FAILED, whatever fails
        tracker.log_params(options)
        yield tracker


@contextlib.contextmanager
def tracked_group(
    config: TrainConfig, output: Path | None, run_options: Mapping[str, Any] | None = None, *, kind: str,
    params: Mapping[str, Any] | None = None, enabled: bool = True, varied: tuple[str, ...] = (),
) -> Iterator[Tracker]:  # fmt: skip
    """The parent MLflow run of several trainings of ``config`` (``kind``: ``cv``, ``seeds`` or ``tune``), named after
    ``output``: the options (less ``varied``, those each training draws for itself, such as a search's), the data
    options and ``params`` (``kind.name``), a ``bertkit.kind`` tag; the trainings are nested under it with
    ``tracked(..., parent=...)``. A no-op tracker without ``config.track`` or with ``enabled`` false (a process
    other than a torchrun's rank 0), and then so are the nested ones."""
    if not config.track or not enabled:
        yield Tracker()
        return
    name = Path(output).name if output is not None else kind
    # not bertkit.output: --resume looks runs up by that tag, and a group is never resumed
    tags = {"bertkit.kind": kind} | ({"bertkit.group_output": str(Path(output).resolve())} if output else {})
    tracker = _create(config, name, tags)
    extra = {f"{kind}.{k}": v for k, v in (params or {}).items()}
    # the options each training resolves from its data (batch size, learning rate...): as given, "auto" if not
    given = {k: "auto" if v is None else v for k, v in config.to_dict().items() if k in RESOLVED}
    options = {k: v for k, v in {**_options(config), **given}.items() if k not in varied}
    with _ended(tracker):
        tracker.log_params({**options, **_data_options(run_options or {}), **extra})
        yield tracker


@contextlib.contextmanager
def _ended(tracker: Tracker, stopped: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Set the run's end status: FINISHED, or FAILED (KILLED on Ctrl-C or a ``stopped`` exception) when the block
    raises."""
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except (KeyboardInterrupt, *stopped):
        status = "KILLED"
        raise
    finally:
        if status == "FINISHED":
            with tracker._store_errors():
                tracker.client.set_terminated(tracker.run_id, status)
        else:  # the block's own error is the one to see: a store that fails now too is not worth masking it
            with contextlib.suppress(Exception):
                tracker.client.set_terminated(tracker.run_id, status)


def _options(config: TrainConfig) -> dict[str, Any]:
    """The options known before fitting: those resolved from the data only when given (a search's trial draws
    its learning rate and batch size), else :meth:`Tracker.finish` logs them, so a run that stops early (a
    pruned trial) still has what it ran with."""
    values = config.to_dict()
    return {k: v for k, v in values.items() if k not in NOT_LOGGED and not (k in RESOLVED and v in (None, "auto"))}


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
        raise _unreachable(config.track, exc) from None
    return client, experiment_id


def _unreachable(track: str, exc: Any) -> ConfigError:
    """An MLflow store error as one line: the --track value, the store, the error's first line."""
    store = (tracking_uri(track) if track else None) or "MLflow's default store"
    first = (str(getattr(exc, "message", "") or exc).splitlines() or [type(exc).__name__])[0]
    return ConfigError(f"--track {track}: cannot log to {store} ({first})")


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
        raise _unreachable(config.track, exc) from None
    return Tracker(client, run_id, experiment_id, config.track)


def _start(config: TrainConfig, output: Path, resume_from: str | Path | None) -> tuple[Tracker, bool]:
    """Open the store, find or create the experiment; continue the interrupted run of ``resume_from`` (its
    tracker knows the epochs that run logged), else create a run. Returns the tracker and whether it resumed."""
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
            tracker = Tracker(client, run_id, experiment_id, config.track)
            tracker.logged_epochs = _logged_epochs(client, interrupted)
            tracker.logged_params = set(interrupted.data.params)
            return tracker, True
    except MlflowException as exc:
        raise _unreachable(config.track, exc) from None
    tags = {"bertkit.output": str(Path(output).resolve())}
    return _create(config, Path(output).name, tags, client, experiment_id), False


def _interrupted_run(client: Any, experiment_id: str, resume_from: str | Path) -> Any:
    """The run that trained into the folder holding ``resume_from``'s checkpoint when the latest such run did not
    finish (FAILED, KILLED, or still RUNNING after its process died), else None (no checkpoint there: the fit
    says so)."""
    from bertkit.engine.checkpoint import META_FILE, locate

    try:
        checkpoint = locate(resume_from)
    except ConfigError:
        return None
    path = str(checkpoint.parent.resolve())  # --resume DIR or DIR/checkpoint: DIR trained
    # MLflow's filter strings have no escape for a quote: a path holding one is matched here instead
    query = "" if "'" in path else f"tags.`bertkit.output` = '{path}'"
    runs = client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time DESC"])
    runs = [run for run in runs if run.data.tags.get("bertkit.output") == path]
    if not runs or runs[0].info.status == "FINISHED":
        return None
    run = runs[0]
    # The checkpoint must be that run's: written while it ran. One written later came from an untracked run into
    # the same folder, and continuing the tracked one would mix two trainings in one run.
    written = (checkpoint / META_FILE).stat().st_mtime * 1000
    # a RUNNING run's end_time (set by an earlier end, then continued) does not bound a process that died later
    ended = None if run.info.status == "RUNNING" else run.info.end_time
    if written < run.info.start_time or (ended is not None and written > ended):
        return None
    return run


def _logged_epochs(client: Any, run: Any) -> set[int]:
    """The epochs (steps) the run logged any metric at: those a resumed run does not log again."""
    return {int(m.step) for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key)}
