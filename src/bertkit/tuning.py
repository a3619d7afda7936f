"""Hyperparameter search with Optuna: TPE sampling, median pruning on per-epoch validation scores, and a
study stored in SQLite so that an interrupted search resumes where it stopped.

The search covers learning rate, batch size, epochs, warm-up, weight decay and max_length. The best trial's
options are written as ``best_config.json``, a file ``bertkit train --config`` takes as it is.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData
from bertkit.ddp import env_world_size
from bertkit.exceptions import ConfigError, DataError
from bertkit.selection import metric_lower_is_better, resolve_selection_metric
from bertkit.tracking import Tracker, tracked, tracked_group

STUDY_NAME = "bertkit"
STORAGE_FILE = "study.db"
BEST_CONFIG_FILE = "best_config.json"


@dataclass
class SearchSpace:
    """Ranges searched; every other option stays as in the base config."""

    learning_rate: tuple[float, float] = (1e-5, 2e-4)
    """Log-uniform range of the peak learning rate."""
    batch_size: tuple[int, ...] = (8, 16, 32)
    epochs: tuple[int, int] = (1, 3)
    """Inclusive range of epochs."""
    warmup_ratio: tuple[float, float] = (0.0, 0.2)
    weight_decay: tuple[float, float] = (0.0, 0.1)
    max_length: tuple[int, ...] = (64, 128, 256)

    def suggest(self, trial) -> dict[str, Any]:
        """One point of the space, drawn by ``trial`` (an ``optuna.Trial``)."""
        return {
            "learning_rate": trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            "batch_size": trial.suggest_categorical("batch_size", list(self.batch_size)),
            "epochs": trial.suggest_int("epochs", *self.epochs),
            "warmup_ratio": trial.suggest_float("warmup_ratio", *self.warmup_ratio),
            "weight_decay": trial.suggest_float("weight_decay", *self.weight_decay),
            "max_length": trial.suggest_categorical("max_length", list(self.max_length)),
        }


@dataclass
class TuneResult:
    """The finished study: every trial and the best configuration."""

    metric: str
    direction: str
    best_value: float
    best_params: dict[str, Any]
    best_config_path: Path
    trials: list[dict[str, Any]] = field(default_factory=list)
    """number, state (COMPLETE, PRUNED, FAIL), value, params, epochs run."""
    new_trials: int = 0
    """Trials run by this call (the rest were already in the study)."""


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("bertkit tune needs Optuna: pip install 'bertkit[tune]'") from None
    return optuna


def tune(
    base: TrainConfig,
    train: TextData,
    validation: TextData | None,
    study_dir: str | Path,
    *,
    trials: int = 20,
    timeout: float | None = None,
    space: SearchSpace | None = None,
    max_epochs: int | None = None,
    learning_rates: tuple[float, float] | None = None,
    run_options: dict[str, Any] | None = None,
    progress: bool = False,
) -> TuneResult:
    """Search hyperparameters of ``base`` on ``train``, scored on ``validation`` (default: the held-out split).

    The study lives in ``study_dir/study.db``: calling again with the same folder continues it until it
    holds ``trials`` finished trials (complete or pruned). ``timeout`` (seconds) stops starting new trials.
    ``max_epochs`` and ``learning_rates`` (low, high) replace those ranges of ``space``. ``run_options`` (data file, columns) are copied into ``best_config.json`` so it reproduces the best run."""
    optuna = _optuna()
    from bertkit.classification.estimator import TextClassifier
    from bertkit.data.labels import normalize_labels

    check_budget(trials, timeout)
    if env_world_size() > 1:
        raise ConfigError("bertkit tune runs its trials in one process; launch it without torchrun")
    if train.labels is None:
        raise DataError(f"{train.source.name}: tuning needs labelled training data (no label column)")
    if validation is not None and validation.labels is None:
        raise DataError(
            f"{validation.source.name}: tuning scores its trials on validation data with labels (no label column)"
        )
    space = space or SearchSpace()
    if max_epochs is not None:
        space = dataclasses.replace(space, epochs=(1, max_epochs))
    if learning_rates is not None:
        space = dataclasses.replace(space, learning_rate=tuple(learning_rates))
    space = _within_positions(space, base.model)
    task, _ = normalize_labels(train.labels, base.task, as_written=train.in_memory, where=train.where)
    metric = resolve_selection_metric(base.selection_metric, task)
    direction = "minimize" if metric_lower_is_better(metric) else "maximize"
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    # ERROR: a trial that fails raises its own one-line error; Optuna would first log its traceback (a WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = f"sqlite:///{(study_dir / STORAGE_FILE).resolve()}"
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction=direction, load_if_exists=True)
    # a study from before the search record says only its direction; one with the record names its metric below
    if "search" not in study.user_attrs and study.direction.name.lower() != direction:
        raise ConfigError(
            f"{study_dir}: this study {study.direction.name.lower()}s its metric; it cannot tune {metric} "
            "(the other way). Give another --study-dir"
        )
    _check_same_search(study, study_dir, _search_record(base, train, validation, metric, task, space))
    # Complete or pruned: a failed or interrupted trial did not search, so it does not use up --trials.
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    before = len(study.trials)
    # Seeded, and offset by the trials already run, so a resumed search does not replay its first proposals.
    study.sampler = optuna.samplers.TPESampler(seed=base.seed + len(study.trials), n_startup_trials=5)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)

    def objective(trial, group: Tracker) -> float:
        params = space.suggest(trial)
        config = dataclasses.replace(base, **params)
        name = f"trial-{trial.number}"
        with tracked(config, None, run_options, parent=group, run_name=name, stopped=(optuna.TrialPruned,)) as tracker:

            def report(record: dict) -> None:
                tracker.log_epoch(record)
                trial.report(record[f"val_{metric}"], record["epoch"])
                if record["epoch"] < config.epochs and trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {record['epoch']}: {metric} {record[f'val_{metric}']:.4f}")

            clf = TextClassifier.from_config(config, progress=progress)
            clf.fit(train, eval_set=validation, on_epoch=report)
            tracker.finish(clf, None)
        trial.set_user_attr("metrics", dict(clf.validation_metrics_))
        trial.set_user_attr("best_epoch", clf.best_epoch_)
        trial.set_user_attr("kept_epoch", clf.kept_epoch_)
        value = float(clf.validation_metrics_[metric])
        group.log_metrics({f"trial_{metric}": value}, step=trial.number)
        return value

    remaining = max(0, trials - len(finished))
    # With --track: one MLflow run for this call's trials, a nested run per trial (a pruned trial ends KILLED)
    ranges = {f"range.{k}": v for k, v in dataclasses.asdict(space).items()}  # what the trials draw from
    with tracked_group(
        base, study_dir, run_options, kind="tune", params={"trials": trials, **ranges}, varied=SEARCHED
    ) as group:
        if remaining:
            study.optimize(lambda trial: objective(trial, group), n_trials=remaining, timeout=timeout, catch=())
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            raise ConfigError(f"{study_dir}: no trial completed; give more --trials or a longer --timeout")
        best = study.best_trial
        path, rows = _write_study(study, base, study_dir, metric, run_options)
        group.log_metrics({f"best_{metric}": float(best.value)})
        group.set_tag("bertkit.best_trial", str(best.number))
        group.log_files([path, study_dir / "trials.json"])
    new_trials = len(study.trials) - before  # fewer than asked when --timeout stopped the search
    return TuneResult(metric, direction, float(best.value), dict(best.params), path, rows, new_trials=new_trials)


def check_budget(trials: int, timeout: float | None) -> None:
    """ConfigError unless ``trials`` is a positive count and ``timeout`` (seconds) positive or None."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a positive integer (got {trials})")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds (got {timeout})")


SEARCHED = ("learning_rate", "batch_size", "epochs", "warmup_ratio", "weight_decay", "max_length")
"""The options a trial draws (:class:`SearchSpace`): the rest of the base config is the same for every trial."""
RUN_ONLY = ("device", "track", "precision", "seed")
"""Base options a continued study may change: where and how the trials run, not what they search."""


def _search_record(
    base: TrainConfig, train: TextData, validation: TextData | None, metric: str, task: str, space: SearchSpace
) -> dict[str, Any]:
    """What makes a study's trials comparable: the data (fingerprints), task, metric, space and fixed options."""
    from bertkit.classification.inputs import fingerprint

    fixed = {k: v for k, v in base.to_dict().items() if k not in (*SEARCHED, *RUN_ONLY, "extra")}
    return {
        "train": fingerprint(train)["sha256"],
        "validation": None if validation is None else fingerprint(validation)["sha256"],
        "task": task, "metric": metric, "space": dataclasses.asdict(space),
        "options": json.loads(json.dumps(fixed, default=str)),
    }  # fmt: skip


def _check_same_search(study, study_dir: Path, record: dict[str, Any]) -> None:
    """Record what a new study searches; refuse to continue one that searched something else (other data,
    metric, ranges or fixed options), whose trials' scores would not compare with this run's."""
    saved = study.user_attrs.get("search")
    if saved is None:
        # new, or from before the record (its trials are taken as they are): later runs continue this search
        study.set_user_attr("search", json.loads(json.dumps(record)))
        return
    record = json.loads(json.dumps(record))  # tuples as lists, as stored
    differs = [key for key in record if saved.get(key) != record[key]]
    if "options" in differs:
        differs.remove("options")
        options = saved.get("options", {})
        differs += sorted(
            k for k in set(options) | set(record["options"]) if options.get(k) != record["options"].get(k)
        )
    if differs:
        names = {"train": "training data", "validation": "validation data", "space": "search ranges"}
        shown = [names.get(k, k if k in ("task", "metric") else f"--{k.replace('_', '-')}") for k in differs]
        raise ConfigError(
            f"{study_dir}: this study was run with other {', '.join(shown)}; its trials' scores would not compare "
            "with this run's. Give another --study-dir (or delete this one)"
        )


def _portable(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with local data files and model folders as absolute paths: best_config.json is read from
    wherever ``bertkit train --config`` runs."""
    options = dict(options)
    for key in ("train", "validation", "label_names", "model"):
        value = options.get(key)
        if isinstance(value, str) and value and not value.startswith("hf:") and Path(value).exists():
            options[key] = str(Path(value).resolve())
    return options


def _write_study(
    study, base: TrainConfig, study_dir: Path, metric: str, run_options: dict[str, Any] | None
) -> tuple[Path, list[dict[str, Any]]]:
    """Write best_config.json (the best trial's options, ready for ``bertkit train --config``) and trials.json
    (every trial); returns the best config's path and the trial rows."""
    best = study.best_trial
    # --track is how this search was run, not part of the recipe found: train --config logs only when asked
    best_config = _portable({**dataclasses.replace(base, **best.params, track=None).to_dict(), **(run_options or {})})
    best_config["extra"] = {**base.extra, "tuned": {"study": str(study_dir), "trial": best.number, metric: best.value}}
    path = study_dir / BEST_CONFIG_FILE
    path.write_text(json.dumps(best_config, indent=2, default=str) + "\n", encoding="utf-8")
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "epochs_run": len(t.intermediate_values),
            "metrics": t.user_attrs.get("metrics"),
        }  # fmt: skip
        for t in study.trials
    ]
    (study_dir / "trials.json").write_text(json.dumps(rows, indent=2, default=str) + "\n", encoding="utf-8")
    return path, rows


def _within_positions(space: SearchSpace, model: str) -> SearchSpace:
    """``space`` with the max lengths the model cannot read left out (training refuses them before it starts, so
    such a trial would only fail); the model's own limit stands in when it reads none of them."""
    from bertkit.models.checkpoints import load_config, position_limit, resolve_checkpoint

    found = position_limit(load_config(resolve_checkpoint(model)))
    if found is None:
        return space
    fitting = tuple(length for length in space.max_length if length <= found[0])
    return dataclasses.replace(space, max_length=fitting or (found[0],))
