"""``bertkit train / tune / evaluate / predict``: text classification from the command line, over
:class:`bertkit.TextClassifier`. Each command parses flags, makes one facade call and prints.

The run options of ``train`` and ``tune`` are built from the dataclasses that declare them
(:mod:`bertkit.config`, :mod:`bertkit.read_options`), so their defaults and help cannot drift from the config
(``cli.options.option``). How ``evaluate`` and ``predict`` read their data is :mod:`bertkit.cli.reading`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bertkit import TrainConfig
from bertkit.cli.console import say
from bertkit.cli.options import (
    Delimiter,
    Device,
    Encoding,
    Header,
    InferencePrecision,
    LabelColumn,
    LabelNames,
    LabelOffset,
    Overwrite,
    PairColumn,
    Quiet,
    SkipBadRows,
    TextColumn,
    merge_config_file,
    option,
    require,
    run_options,
)
from bertkit.cli.reading import PREDICT_SETTINGS, as_trained, local_input, saved_settings, say_saved
from bertkit.exceptions import ConfigError, DataError
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
    device: str = option(TrainConfig, "device"),
    cuda_graphs: bool = option(TrainConfig, "cuda_graphs"),
    config: Annotated[
        Path | None,
        typer.Option(
            help="JSON/TOML/YAML file of these options, keys as flag names (flags win); "
            "MODEL/train_config.json repeats a run."
        ),
    ] = None,  # fmt: skip
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
    from bertkit.runs import check_output_folder, fit_and_save, read_run_data

    # --overwrite is a flag only: a config file (train_config.json repeats a run) never deletes a model.
    params = merge_config_file(ctx, config, skip=("quiet", "overwrite"))
    settings, read = run_options(params)
    _check_seeds(params["seeds"])
    require(params, ("train", "output"), config)
    output = Path(params["output"])
    check_output_folder(output, overwrite)  # before the data is read: a refused folder costs no time
    train_data, validation_data = read_run_data(read)
    read = as_trained(read, train_data)
    main_process = is_main_process()
    if main_process:
        _before_training(train_data, validation_data, settings, output, overwrite and params["seeds"] > 1)
    if params["seeds"] > 1:
        _train_seeds(settings, train_data, validation_data, output, params["seeds"], read, quiet)
        return
    classifier = fit_and_save(settings, train_data, validation_data, output, progress=not quiet,
                              run_options=read.to_dict(), replace=overwrite)  # fmt: skip
    if main_process:
        _print_trained(classifier, output, quiet)


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
    settings: TrainConfig, train_data, validation_data, output: Path, count: int, read: ReadOptions, quiet: bool
) -> None:
    from bertkit import train_seeds

    def done(run: dict) -> None:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in run["metrics"].items())
        say(f"seed {run['seed']}: kept epoch {run['kept_epoch']} (best {run['best_epoch']}), "
            f"{run['train_seconds']:.0f} s; {metrics}")  # fmt: skip

    result = train_seeds(settings, train_data, validation_data, output, count,
                         progress=not quiet, run_options=read.to_dict(), on_seed=done)  # fmt: skip
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
    quiet: Quiet = False,
) -> None:
    """Search learning rate, batch size, epochs, warm-up, weight decay and max length with Optuna (TPE,
    median pruning); the study is kept in --study-dir/study.db and the best options in best_config.json."""
    from bertkit import tune as run_tune
    from bertkit.runs import read_run_data

    params = merge_config_file(ctx, config, skip=("quiet", "trials", "timeout", "max_epochs"))
    if params.get("study_dir") in (None, ""):
        raise ConfigError("--study-dir is required: the folder that keeps the study")
    if max_epochs < 1:
        raise ConfigError(f"--max-epochs must be a positive integer (got {max_epochs})")
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


def evaluate(
    ctx: typer.Context,
    model_dir: Annotated[str, typer.Argument(help="A bertkit model folder or any HF classification model.")],
    data: Annotated[str, typer.Option("--data", help="Labelled data to evaluate on.")],
    text_column: TextColumn = None,
    text_pair_column: PairColumn = None,
    label_column: LabelColumn = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    report_dir: Annotated[Path | None, typer.Option(help="Write report.json and PNGs here.")] = None,
    encoding: Encoding = "utf-8",
    header: Header = None,
    skip_bad_rows: SkipBadRows = False,
    label_names: LabelNames = None,
    delimiter: Delimiter = None,
    label_offset: LabelOffset = None,
    device: Device = "auto",
    precision: InferencePrecision = None,
) -> None:
    """Score a model on labelled data: metrics, per-class table, confusion matrix. Reading settings of the
    model's training (columns, header, encoding, delimiter, label names) apply unless a flag is given."""
    from bertkit import TextClassifier
    from bertkit.runs import check_data_file, read_data

    check_data_file(
        data, delimiter=delimiter, model_dir=model_dir
    )  # before the model loads (seconds): a wrong path fails at once
    classifier = TextClassifier.load(model_dir, device=device, precision=precision)
    read = ReadOptions(text_column=text_column, text_pair_column=text_pair_column, label_column=label_column,
                       encoding=encoding, header=header, skip_bad_rows=skip_bad_rows, label_names=label_names,
                       delimiter=delimiter, label_offset=label_offset)  # fmt: skip
    read, taken = saved_settings(classifier, read, ctx, data)
    dataset = read_data(data, read)
    for note in dataset.notes:
        say(note)
    say_saved(data, taken)
    report = classifier.evaluate(dataset, skip_unseen_labels=skip_bad_rows)
    if report_dir is not None:
        report.save(report_dir, history=classifier.history_)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.to_dict().items()}, default=str))
    else:
        report.print()


def predict(
    ctx: typer.Context,
    model_dir: Annotated[str, typer.Argument(help="A bertkit model folder or any HF classification model.")],
    text: Annotated[str | None, typer.Argument(help="One text to classify (instead of --data).")] = None,
    pair: Annotated[str | None, typer.Option("--pair", help="Second text of a pair, with TEXT.")] = None,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", help="File of texts to classify (repeat for several with --engine ray)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Where to write predictions (.csv/.jsonl; a folder with --engine ray)."),
    ] = None,
    text_column: TextColumn = None,
    text_pair_column: PairColumn = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Also write the K most likely labels.")] = None,
    encoding: Encoding = "utf-8",
    header: Header = None,
    skip_bad_rows: SkipBadRows = False,
    delimiter: Delimiter = None,
    device: Device = "auto",
    backend: Annotated[str, typer.Option(help="torch, onnx or onnx-int8 (after `bertkit export`).")] = "torch",
    precision: InferencePrecision = None,
    engine: Annotated[
        str, typer.Option(help="local (this process) or ray (a Ray cluster, files in parallel).")
    ] = "local",
    workers: Annotated[int, typer.Option(help="--engine ray: model replicas (Ray actors).")] = 2,
    cpus_per_worker: Annotated[float, typer.Option(help="--engine ray: CPUs per replica.")] = 1,
    gpus_per_worker: Annotated[float, typer.Option(help="--engine ray: GPUs per replica (0: CPU).")] = 0,
    ray_address: Annotated[
        str | None, typer.Option(help="--engine ray: cluster to join ('auto', ray://HOST:10001); default local.")
    ] = None,
    output_format: Annotated[
        str, typer.Option(help="--engine ray: part format: parquet, csv, tsv or jsonl.")
    ] = "parquet",
    chunk_rows: Annotated[
        int, typer.Option(help="Rows read and predicted at a time (one part each with ray).")
    ] = 50_000,
) -> None:
    """Predict labels for one text (printed as JSON) or for a file (written to --output).

    With --engine ray, the --data files are spread over Ray workers, each loading the model once; --output is
    a folder of parts part-FILE-CHUNK.* with input_file and input_row columns (input order recoverable)."""
    from bertkit import TextClassifier
    from bertkit.runs import check_data_file

    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray (got {engine!r})")
    if chunk_rows < 1:
        raise ConfigError(f"--chunk-rows must be a positive integer (got {chunk_rows})")
    if engine == "ray":
        _check_ray(text, data, output, backend=backend, device=device)
        _predict_ray(
            model_dir, data, output, workers=workers, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
            output_format=output_format, top_k=top_k, text_column=text_column, pair_column=text_pair_column,
            encoding=encoding, header=header, skip_bad_rows=skip_bad_rows, address=ray_address, chunk_rows=chunk_rows,
            precision=precision,
        )  # fmt: skip
        return
    path = local_input(text, data, output)
    if path is not None:  # checked before the model loads (seconds): a wrong path fails at once
        check_data_file(path, delimiter=delimiter, model_dir=model_dir)
    classifier = TextClassifier.load(model_dir, device=device, backend=backend, precision=precision)
    if text is not None:
        frame = classifier.predict_table([(text, pair)] if pair else [text], top_k or 5)
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].items()}
        typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    read, taken = saved_settings(
        classifier, ReadOptions(text_column=text_column, text_pair_column=text_pair_column, encoding=encoding,
                                header=header, delimiter=delimiter), ctx, path, PREDICT_SETTINGS,
    )  # fmt: skip
    rows, skipped = classifier.predict_file(
        path, output, top_k=top_k, text_column=read.text_column, pair_column=read.text_pair_column,
        encoding=read.encoding, header=read.header, skip_bad_rows=skip_bad_rows, chunk_rows=chunk_rows,
        delimiter=read.delimiter,
    )  # fmt: skip
    say_saved(path, taken)
    say(f"wrote {rows} predictions to {output}" + (f" ({skipped} rows skipped)" if skipped else ""))


def _check_ray(text: str | None, data: list[str] | None, output: Path | None, *, backend: str, device: str) -> None:
    """DataError unless the flags fit a Ray prediction: files (no TEXT), an output folder, torch, no --device."""
    if text is not None or not data:
        raise DataError("--engine ray predicts files: give --data FILE (repeat for more) and --output FOLDER")
    if output is None:
        raise DataError("--engine ray needs --output FOLDER to write the prediction parts into")
    if backend != "torch":
        raise DataError("--engine ray runs the torch backend; leave out --backend")
    if device != "auto":
        raise DataError("--engine ray places workers itself (--gpus-per-worker); leave out --device")


def _predict_ray(model_dir: str, data: list[str], output: Path, **options) -> None:
    """Predict the --data files on Ray workers (``bertkit.predict_ray``, ``options`` passed on) after the cheap
    checks of each file, and say what was written."""
    from bertkit import predict_ray
    from bertkit.runs import check_data_file

    for path in data:
        check_data_file(path, model_dir=model_dir)
    result = predict_ray(model_dir, data, output, **options)
    say(f"wrote {result.rows} predictions from {len(data)} files in {len(result.parts)} parts to {output}"
        + (f" ({result.skipped} rows skipped)" if result.skipped else ""))  # fmt: skip
