"""``bertkit train / tune / evaluate / predict``: text classification from the command line, over
:class:`bertkit.TextClassifier`. Each command parses flags, makes one facade call and prints.

The run options of ``train`` and ``tune`` are built from the dataclasses that declare them
(:mod:`bertkit.config`, :mod:`bertkit.read_options`), so their defaults and help cannot drift from the config
(``cli.options.option``). How ``evaluate`` and ``predict`` read their data is :mod:`bertkit.cli.reading`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bertkit import TrainConfig
from bertkit.cli.console import say
from bertkit.cli.options import (
    ConfigFile,
    Export,
    Overwrite,
    Quiet,
    Resume,
    merge_config_file,
    option,
    require,
    run_options,
    without_checkpoints,
)
from bertkit.cli.reading import as_trained
from bertkit.exceptions import ConfigError
from bertkit.read_options import ReadOptions

if TYPE_CHECKING:
    from bertkit import TextClassifier


def train(
    ctx: typer.Context,
    train: str | None = option(ReadOptions, "train"),
    output: Annotated[Path | None, typer.Option("--output", help="Folder to write the model into.")] = None,
    overwrite: Overwrite = False,
    validation: str | None = option(ReadOptions, "validation"),
    text_column: str | None = option(ReadOptions, "text_column"),
    text_pair_column: str | None = option(ReadOptions, "text_pair_column"),
    label_column: str | None = option(ReadOptions, "label_column"),
    task: str = option(TrainConfig, "task"),
    model: str = option(TrainConfig, "model"),
    epochs: int = option(TrainConfig, "epochs"),
    batch_size: int | None = option(TrainConfig, "batch_size"),
    learning_rate: float | None = option(TrainConfig, "learning_rate"),
    max_length: int = option(TrainConfig, "max_length"),
    window_stride: int | None = option(TrainConfig, "window_stride"),
    window_aggregation: str = option(TrainConfig, "window_aggregation"),
    seed: int = option(TrainConfig, "seed"),
    seeds: Annotated[
        int, typer.Option(help="Train N times with seeds SEED, SEED+1, ...; report mean and std (models in seed-N/).")
    ] = 1,
    max_train_rows: int | None = option(TrainConfig, "max_train_rows"),
    weight_decay: float = option(TrainConfig, "weight_decay"),
    warmup_ratio: float = option(TrainConfig, "warmup_ratio"),
    classifier_pooling: str = option(TrainConfig, "classifier_pooling"),
    label_smoothing: float = option(TrainConfig, "label_smoothing"),
    dropout: float | None = option(TrainConfig, "dropout"),
    attention_dropout: float | None = option(TrainConfig, "attention_dropout"),
    rdrop: float | None = option(TrainConfig, "rdrop"),
    grad_accumulation: int = option(TrainConfig, "grad_accumulation"),
    max_grad_norm: float = option(TrainConfig, "max_grad_norm"),
    selection_metric: str = option(TrainConfig, "selection_metric"),
    average_weights: float = option(TrainConfig, "average_weights"),
    keep_epoch: str = option(TrainConfig, "keep_epoch"),
    early_stopping_patience: int = option(TrainConfig, "early_stopping_patience"),
    freeze_encoder: bool = option(TrainConfig, "freeze_encoder"),
    class_weights: str = option(TrainConfig, "class_weights"),
    precision: str = option(TrainConfig, "precision"),
    validation_fraction: float = option(TrainConfig, "validation_fraction"),
    validation_overlap: str = option(TrainConfig, "validation_overlap"),
    device: str = option(TrainConfig, "device"),
    cuda_graphs: bool = option(TrainConfig, "cuda_graphs"),
    checkpoint_every: str | None = option(TrainConfig, "checkpoint_every"),
    resume: Resume = None,
    export: Export = True,
    track: str | None = option(TrainConfig, "track"),
    config: ConfigFile = None,
    encoding: str = option(ReadOptions, "encoding"),
    header: bool | None = option(ReadOptions, "header"),
    skip_bad_rows: bool = option(ReadOptions, "skip_bad_rows"),
    label_names: Path | None = option(ReadOptions, "label_names"),
    delimiter: str | None = option(ReadOptions, "delimiter"),
    label_offset: int | None = option(ReadOptions, "label_offset"),
    quiet: Quiet = False,
) -> None:
    """Fine-tune a model on labelled text and save it (with a validation report) to --output.

    Under `torchrun --nproc-per-node N -m bertkit train ...` the same command trains on N processes (DDP)."""
    from bertkit import is_main_process
    from bertkit.runs import fit_and_save, read_run_data

    # --overwrite is a flag only: a config file (train_config.json repeats a run) never deletes a model.
    params = merge_config_file(ctx, config, skip=("quiet", "overwrite", "resume", "export"))
    if params["seeds"] > 1:
        params = without_checkpoints(ctx, params, "train --seeds")
    settings, read = run_options(params)
    output = _checked_output(params, config, overwrite, resume)
    train_data, validation_data = read_run_data(read)
    read = as_trained(read, train_data)
    main_process = is_main_process()
    if main_process:
        _before_training(train_data, validation_data, settings, output, overwrite and params["seeds"] > 1)
    if params["seeds"] > 1:
        _train_seeds(settings, train_data, validation_data, output, params["seeds"], read, quiet, export)
        return
    classifier = fit_and_save(settings, train_data, validation_data, output, progress=not quiet,
                              run_options=read.to_dict(), replace=overwrite, resume=resume,
                              export=export)  # fmt: skip
    if main_process:
        _print_trained(classifier, output, quiet)


def _checked_output(params: dict, config: Path | None, overwrite: bool, resume: Path | None) -> Path:
    """The --output folder, once --seeds, the required options, --resume and the folder itself are checked: all
    before the data is read, so a refused run costs no time."""
    from bertkit.runs import check_output_folder, check_resume_folder

    _check_seeds(params["seeds"])
    require(params, ("train", "output"), config)
    output = Path(params["output"])
    if resume is not None and params["seeds"] > 1:
        raise ConfigError("--resume continues one run; it does not apply to --seeds")
    same = resume is not None and resume.resolve() == output.resolve()
    check_output_folder(output, overwrite, resume=same)
    if resume is not None and not same:
        check_resume_folder(resume)  # the folder resumed from, when it is not --output (checked just above)
    return output


def _check_seeds(seeds: int) -> None:
    """ConfigError unless --seeds is a positive count that this launch can run (one process per seed)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be a positive integer (got {seeds})")
    if seeds > 1 and os.environ.get("WORLD_SIZE", "1") != "1":
        raise ConfigError("--seeds runs one process per seed; launch it without torchrun")


def _before_training(train_data, validation_data, settings: TrainConfig, output: Path, clear: bool) -> None:
    """On the main process, once the data is read: the readers' notes, the rows that train and validate, and
    with ``clear`` (--overwrite with --seeds) the old models deleted (only now, so a run that fails on its data
    keeps them; a single run deletes the old model only once the new one is trained: runs.fit_and_save)."""
    from bertkit.runs import clear_output_folder, describe_rows

    for note in dict.fromkeys([*train_data.notes, *(validation_data.notes if validation_data else [])]):
        say(note)
    say(describe_rows(train_data, validation_data, settings))
    if clear:
        clear_output_folder(output)


def _print_trained(classifier: TextClassifier, output: Path, quiet: bool) -> None:
    """The validation report (unless ``quiet``) and one line: where the model is, the epochs, the metrics."""
    report = classifier.validation_report_
    if not quiet:
        report.print()
    best, kept = classifier.best_epoch_, classifier.kept_epoch_
    epochs = f"best epoch {best}" if best == kept else f"epoch {kept} kept, best validation score at epoch {best}"
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in report.metrics.items())
    say(f"{classifier.task_} model saved to {output} ({epochs}, {classifier.train_seconds_:.0f} s); "
        f"validation: {metrics}")  # fmt: skip


def _train_seeds(
    settings: TrainConfig, train_data, validation_data, output: Path, count: int, read: ReadOptions, quiet: bool,
    export: bool,
) -> None:  # fmt: skip
    from bertkit import train_seeds

    def done(run: dict) -> None:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in run["metrics"].items())
        say(f"seed {run['seed']}: kept epoch {run['kept_epoch']} (best {run['best_epoch']}), "
            f"{run['train_seconds']:.0f} s; {metrics}")  # fmt: skip

    result = train_seeds(settings, train_data, validation_data, output, count,
                         progress=not quiet, run_options=read.to_dict(), on_seed=done, export=export)  # fmt: skip
    say(
        f"{len(result.seeds)} seeds ({result.seeds[0]}..{result.seeds[-1]}), models in {output}/seed-N/, "
        f"summary in {output / 'seeds.json'}; best seed by {result.selection_metric}: {result.best_seed}"
    )
    for name, mean in result.mean.items():
        say(f"  {name:<10} {mean:.4f} +/- {result.std[name]:.4f}")


def tune(
    ctx: typer.Context,
    study_dir: Annotated[
        Path | None, typer.Option("--study-dir", help="Folder of the study (study.db, trials.json, best_config.json).")
    ] = None,
    trials: Annotated[int, typer.Option(help="Finished trials the study should hold (a rerun continues).")] = 20,
    timeout: Annotated[float | None, typer.Option(help="Start no new trial after this many seconds.")] = None,
    max_epochs: Annotated[int, typer.Option(help="Epochs are searched in 1..N.")] = 3,
    learning_rate_range: Annotated[
        tuple[float, float], typer.Option(help="Learning rates searched (log-uniform): LOW HIGH.")
    ] = (1e-5, 2e-4),
    train: str | None = option(ReadOptions, "train", help="Training data."),
    validation: str | None = option(
        ReadOptions, "validation", help="Validation data scoring the trials (default: 10% of train)."
    ),
    text_column: str | None = option(ReadOptions, "text_column"),
    text_pair_column: str | None = option(ReadOptions, "text_pair_column"),
    label_column: str | None = option(ReadOptions, "label_column"),
    task: str = option(TrainConfig, "task"),
    model: str = option(TrainConfig, "model"),
    seed: int = option(TrainConfig, "seed", help="Seed of the sampler and of every trial's training."),
    max_train_rows: int | None = option(
        TrainConfig, "max_train_rows", help="Train each trial on a seeded sample of N rows."
    ),
    selection_metric: str = option(
        TrainConfig, "selection_metric", help="Validation metric to optimise (auto: mcc, ...)."
    ),
    precision: str = option(TrainConfig, "precision"),
    device: str = option(TrainConfig, "device"),
    config: Annotated[
        Path | None, typer.Option(help="Base options as for `bertkit train --config` (flags win).")
    ] = None,
    encoding: str = option(ReadOptions, "encoding"),
    header: bool | None = option(ReadOptions, "header"),
    skip_bad_rows: bool = option(ReadOptions, "skip_bad_rows"),
    label_names: Path | None = option(ReadOptions, "label_names"),
    delimiter: str | None = option(ReadOptions, "delimiter"),
    label_offset: int | None = option(ReadOptions, "label_offset"),
    track: str | None = option(TrainConfig, "track"),
    quiet: Quiet = False,
) -> None:
    """Search learning rate, batch size, epochs, warm-up, weight decay and max length with Optuna (TPE,
    median pruning); the study is kept in --study-dir/study.db and the best options in best_config.json."""
    from bertkit import tune as run_tune
    from bertkit.runs import read_run_data
    from bertkit.tuning import check_budget

    params = without_checkpoints(
        ctx, merge_config_file(ctx, config, skip=("quiet", "trials", "timeout", "max_epochs")), "tune"
    )
    if params.get("study_dir") in (None, ""):
        raise ConfigError("--study-dir is required: the folder that keeps the study")
    if max_epochs < 1:
        raise ConfigError(f"--max-epochs must be a positive integer (got {max_epochs})")
    check_budget(trials, timeout)  # before the data is read
    low, high = learning_rate_range
    if not 0 < low < high < 1:
        raise ConfigError(f"--learning-rate-range needs 0 < LOW < HIGH < 1 (got {low} {high})")
    settings, read = run_options(params)
    require(params, ("train",), config)
    train_data, validation_data = read_run_data(read)
    say(f"tuning on {len(train_data)} rows of {train_data.source.name}; study in {params['study_dir']}")
    result = run_tune(settings, train_data, validation_data, params["study_dir"], trials=trials, timeout=timeout,
                      max_epochs=max_epochs, learning_rates=(low, high), run_options=read.to_dict(),
                      progress=not quiet)  # fmt: skip
    for row in result.trials:
        value = "-" if row["value"] is None else f"{row['value']:.4f}"
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row["params"].items())
        say(f"trial {row['number']:>3} {row['state']:<8} {result.metric} {value:<7} epochs run {row['epochs_run']}: "
            f"{shown}")  # fmt: skip
    say(f"best {result.metric} {result.best_value:.4f} ({result.new_trials} new trials); "
        f"train it with: bertkit train --config {result.best_config_path} --output MODEL_DIR")  # fmt: skip
