"""The ``bertkit`` command line: each command parses flags, makes one facade call and prints.

Errors a user can cause (:class:`bertkit.BertkitError`) end as one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from bertkit.cli.options import (
    BaseModel,
    Device,
    Encoding,
    Header,
    InferencePrecision,
    LabelColumn,
    LabelNames,
    PairColumn,
    Quiet,
    SkipBadRows,
    Task,
    TextColumn,
    TrainPrecision,
)
from bertkit.cli.qa import qa_app
from bertkit.cli.tag import tag_app
from bertkit.exceptions import BertkitError, DataError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Fine-tune, evaluate, predict with and serve BERT-family models: text classifiers, taggers (tag), "
    "question answering (qa).",
)

app.add_typer(tag_app, name="tag")
app.add_typer(qa_app, name="qa")


def _read(path, *, text, pair, label, need_label, encoding, header, skip, label_names=None):
    from bertkit import load_data

    names = None
    if label_names is not None:
        if not label_names.is_file():
            raise DataError(f"{label_names}: --label-names file not found")
        names = [line.strip() for line in label_names.read_text(encoding="utf-8").splitlines() if line.strip()]
    return load_data(
        path, text_column=text, pair_column=pair, label_column=label, need_label=need_label,
        encoding=encoding, header=header, skip_bad_rows=skip, label_names=names,
    )  # fmt: skip


def _say(message: str) -> None:
    typer.echo(message, err=True)


# Options of `bertkit train` that are not TrainConfig fields: where the data is and how to read it. A config
# file may hold them too (keys map 1:1 to flags), so a saved train_config.json repeats a run exactly.
RUN_OPTIONS = (
    "train", "validation", "text_column", "text_pair_column", "label_column", "encoding", "header",
    "skip_bad_rows", "label_names",
)  # fmt: skip


def _with_config_file(ctx: typer.Context, params: dict, config: Path | None, skip: tuple[str, ...]) -> dict:
    """``params`` with the values of a JSON/TOML/YAML file filled in where the flag was left at its default.
    Keys are flag names (dashes or underscores) or TrainConfig fields; any other key is an error."""
    import dataclasses

    from bertkit import ConfigError, TrainConfig

    if config is None:
        return params
    values = TrainConfig.read_options(config)
    allowed = sorted((set(params) | {f.name for f in dataclasses.fields(TrainConfig)}) - {"config", *skip})
    unknown = sorted(k for k in values if k not in allowed)
    if unknown:
        raise ConfigError(f"{config}: unknown keys {unknown}; allowed: {', '.join(allowed)}")
    merged = dict(params)
    for key, value in values.items():
        source = ctx.get_parameter_source(key) if key in params else None
        if source is None or source.name == "DEFAULT":
            merged[key] = value
    return merged


def _train_config(params: dict):
    import dataclasses

    from bertkit import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in params.items() if k in fields})


def _read_run_data(params: dict, config: Path | None, required: tuple[str, ...] = ("train", "output")):
    from bertkit import ConfigError

    for name in required:
        if params.get(name) in (None, ""):
            where = f" or `{name}` in {config}" if config else ""
            raise ConfigError(f"--{name} is required{where}")
    label_names = params["label_names"]
    read = dict(text=params["text_column"], pair=params["text_pair_column"], label=params["label_column"],
                encoding=params["encoding"], header=params["header"], skip=params["skip_bad_rows"],
                label_names=Path(label_names) if label_names else None)  # fmt: skip
    train_data = _read(params["train"], need_label=True, **read)
    validation = params["validation"]
    validation_data = _read(validation, need_label=True, **read) if validation else None
    options = {k: (str(params[k]) if isinstance(params[k], Path) else params[k]) for k in RUN_OPTIONS}
    return train_data, validation_data, options


@app.command()
def train(
    ctx: typer.Context,
    train: Annotated[
        str | None, typer.Option("--train", help="Training data: CSV, TSV, JSONL, Parquet or hf:NAME.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Folder to write the model into.")] = None,
    validation: Annotated[
        str | None, typer.Option("--validation", help="Validation data (default: 10% of train).")
    ] = None,
    text_column: TextColumn = None,
    text_pair_column: PairColumn = None,
    label_column: LabelColumn = None,
    task: Task = "auto",
    model: BaseModel = "minilm",
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 3,
    batch_size: Annotated[
        int | None, typer.Option(help="Examples per step, over all processes (default: 16 or 32 by data size).")
    ] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate (default by data size).")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens kept per text or pair.")] = 128,
    window_stride: Annotated[
        int | None, typer.Option(help="Split long texts into overlapping windows sharing N tokens (no truncation).")
    ] = None,
    window_aggregation: Annotated[str, typer.Option(help="Combine window logits: mean or max.")] = "mean",
    seed: Annotated[int, typer.Option(help="Random seed (the first one with --seeds).")] = 42,
    seeds: Annotated[
        int, typer.Option(help="Train N times with seeds SEED, SEED+1, ...; report mean and std (models in seed-N/).")
    ] = 1,
    max_train_rows: Annotated[
        int | None,
        typer.Option(
            help="Train on a seeded sample of N rows (validation, when not given, comes from the other rows)."
        ),
    ] = None,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.01,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps with linear warm-up.")] = 0.1,
    classifier_pooling: Annotated[
        str,
        typer.Option(
            help="cls; mean: a layer that starts as mean pooling (still a plain HF model); "
            "auto: mean for sentence-transformers models trained with it (minilm), else cls."
        ),
    ] = "auto",
    label_smoothing: Annotated[
        float, typer.Option(help="Classification: probability spread over all classes in the loss (e.g. 0.1).")
    ] = 0.0,
    dropout: Annotated[
        float | None,
        typer.Option(help="Dropout probability while training, everywhere in the model (default: the checkpoint's)."),
    ] = None,
    rdrop: Annotated[
        float | None,
        typer.Option(
            help="R-Drop weight: each batch runs twice (two dropout masks), KL between them added; 0: off "
            "(default: 0.5 for single-label classification from 4,000 rows, else 0)."
        ),
    ] = None,
    grad_accumulation: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    max_grad_norm: Annotated[float, typer.Option(help="Gradient clipping norm (0: no clipping).")] = 1.0,
    selection_metric: Annotated[
        str,
        typer.Option(
            help="Validation metric picking the best epoch: auto (mcc / micro_f1 / pearson), accuracy, f1, loss..."
        ),
    ] = "auto",
    average_weights: Annotated[
        float,
        typer.Option(help="Share of the last optimizer steps whose weights are averaged into the model (0: off)."),
    ] = 0.0,
    keep_epoch: Annotated[
        str,
        typer.Option(
            help="Weights kept: best (validation), last, or auto: the last unless an earlier epoch is better "
            "beyond validation noise (95% of paired bootstrap resamples)."
        ),
    ] = "auto",
    early_stopping_patience: Annotated[int, typer.Option(help="Stop after N epochs without gain (0: never).")] = 0,
    freeze_encoder: Annotated[bool, typer.Option("--freeze-encoder", help="Train only the head.")] = False,
    class_weights: Annotated[str, typer.Option(help="none or balanced.")] = "none",
    precision: TrainPrecision = "auto",
    validation_fraction: Annotated[
        float, typer.Option(help="Share of train held out for validation when --validation is not given.")
    ] = 0.1,
    device: Device = "auto",
    cuda_graphs: Annotated[
        bool,
        typer.Option("--cuda-graphs", help="GPU: replay each training step from a CUDA graph (less host work)."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            help="JSON/TOML/YAML file of these options, keys as flag names (flags win); "
            "MODEL/train_config.json repeats a run."
        ),
    ] = None,  # fmt: skip
    encoding: Encoding = "utf-8",
    header: Header = None,
    skip_bad_rows: SkipBadRows = False,
    label_names: LabelNames = None,
    quiet: Quiet = False,
) -> None:
    """Fine-tune a model on labelled text and save it (with a validation report) to --output.

    Under `torchrun --nproc-per-node N -m bertkit train ...` the same command trains on N processes (DDP)."""
    from bertkit import ConfigError, TextClassifier, is_main_process

    params = _with_config_file(ctx, dict(ctx.params), config, skip=("quiet",))
    settings = _train_config(params)
    if params["seeds"] < 1:
        raise ConfigError(f"--seeds must be a positive integer (got {params['seeds']})")
    if params["seeds"] > 1 and os.environ.get("WORLD_SIZE", "1") != "1":
        raise ConfigError("--seeds runs one process per seed; launch it without torchrun")
    output = Path(params["output"]) if params.get("output") else None
    train_data, validation_data, run_options = _read_run_data(params, config)
    main_process = is_main_process()
    if main_process:
        _say(f"training on {len(train_data)} rows of {train_data.source.name} "
             f"(text: {train_data.columns.text!r}"
             + (f", pair: {train_data.columns.pair!r}" if train_data.columns.pair else "")
             + f", label: {train_data.columns.label!r})")  # fmt: skip
    if params["seeds"] > 1:
        _train_seeds(settings, train_data, validation_data, output, params["seeds"], run_options, quiet)
        return
    classifier = TextClassifier.from_config(settings, progress=not quiet)
    classifier.fit(train_data, eval_set=validation_data, output_dir=output)
    if not main_process:
        return
    classifier.metadata_["skipped_rows"] = len(train_data.skipped)
    classifier.metadata_["run_options"] = run_options
    classifier.save(output)
    report = classifier.validation_report_
    report.save(output / "report", history=classifier.history_)
    if not quiet:
        report.print()
    _say(f"{classifier.task_} model saved to {output} ({_epochs_note(classifier)}, "
         f"{classifier.train_seconds_:.0f} s); validation: "
         + ", ".join(f"{k} {v:.4f}" for k, v in report.metrics.items()))  # fmt: skip


def _epochs_note(classifier) -> str:
    best, kept = classifier.best_epoch_, classifier.kept_epoch_
    return f"best epoch {best}" if best == kept else f"epoch {kept} kept, best validation score at epoch {best}"


def _train_seeds(settings, train_data, validation_data, output: Path, count: int, run_options, quiet: bool) -> None:
    from bertkit import train_seeds

    def done(run: dict) -> None:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in run["metrics"].items())
        _say(f"seed {run['seed']}: kept epoch {run['kept_epoch']} (best {run['best_epoch']}), "
             f"{run['train_seconds']:.0f} s; {metrics}")  # fmt: skip

    result = train_seeds(settings, train_data, validation_data, output, count,
                         progress=not quiet, run_options=run_options, on_seed=done)  # fmt: skip
    _say(
        f"{len(result.seeds)} seeds ({result.seeds[0]}..{result.seeds[-1]}), models in {output}/seed-N/, "
        f"summary in {output / 'seeds.json'}; best seed by {result.selection_metric}: {result.best_seed}"
    )
    for name, mean in result.mean.items():
        _say(f"  {name:<10} {mean:.4f} +/- {result.std[name]:.4f}")


@app.command()
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
    train: Annotated[str | None, typer.Option("--train", help="Training data.")] = None,
    validation: Annotated[
        str | None, typer.Option("--validation", help="Validation data scoring the trials (default: 10% of train).")
    ] = None,
    text_column: TextColumn = None,
    text_pair_column: PairColumn = None,
    label_column: LabelColumn = None,
    task: Task = "auto",
    model: BaseModel = "minilm",
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of every trial's training.")] = 42,
    max_train_rows: Annotated[int | None, typer.Option(help="Train each trial on a seeded sample of N rows.")] = None,
    selection_metric: Annotated[str, typer.Option(help="Validation metric to optimise (auto: mcc, ...).")] = "auto",
    precision: TrainPrecision = "auto",
    device: Device = "auto",
    config: Annotated[
        Path | None, typer.Option(help="Base options as for `bertkit train --config` (flags win).")
    ] = None,
    encoding: Encoding = "utf-8",
    header: Header = None,
    skip_bad_rows: SkipBadRows = False,
    label_names: LabelNames = None,
    quiet: Quiet = False,
) -> None:
    """Search learning rate, batch size, epochs, warm-up, weight decay and max length with Optuna (TPE,
    median pruning); the study is kept in --study-dir/study.db and the best options in best_config.json."""
    from bertkit import tune as run_tune
    from bertkit.exceptions import ConfigError

    params = _with_config_file(ctx, dict(ctx.params), config, skip=("quiet", "trials", "timeout", "max_epochs"))
    if params.get("study_dir") in (None, ""):
        raise ConfigError("--study-dir is required: the folder that keeps the study")
    if max_epochs < 1:
        raise ConfigError(f"--max-epochs must be a positive integer (got {max_epochs})")
    low, high = learning_rate_range
    if not 0 < low < high < 1:
        raise ConfigError(f"--learning-rate-range needs 0 < LOW < HIGH < 1 (got {low} {high})")
    settings = _train_config(params)
    train_data, validation_data, run_options = _read_run_data(params, config, required=("train",))
    _say(f"tuning on {len(train_data)} rows of {train_data.source.name}; study in {params['study_dir']}")
    result = run_tune(settings, train_data, validation_data, params["study_dir"], trials=trials, timeout=timeout,
                      max_epochs=max_epochs, learning_rates=(low, high), run_options=run_options, progress=not quiet)  # fmt: skip
    for row in result.trials:
        value = "-" if row["value"] is None else f"{row['value']:.4f}"
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row["params"].items())
        _say(
            f"trial {row['number']:>3} {row['state']:<8} {result.metric} {value:<7} epochs run {row['epochs_run']}: {shown}"
        )
    _say(f"best {result.metric} {result.best_value:.4f} ({result.new_trials} new trials); "
         f"train it with: bertkit train --config {result.best_config_path} --output MODEL_DIR")  # fmt: skip


@app.command()
def evaluate(
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
    device: Device = "auto",
    precision: InferencePrecision = None,
) -> None:
    """Score a model on labelled data: metrics, per-class table, confusion matrix."""
    from bertkit import TextClassifier

    classifier = TextClassifier.load(model_dir, device=device, precision=precision)
    dataset = _read(data, text=text_column, pair=text_pair_column, label=label_column, need_label=True,
                    encoding=encoding, header=header, skip=skip_bad_rows, label_names=label_names)  # fmt: skip
    report = classifier.evaluate(dataset)
    if report_dir is not None:
        report.save(report_dir, history=classifier.history_)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.to_dict().items()}, default=str))
    else:
        report.print()


@app.command()
def predict(
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
    from bertkit import ConfigError, TextClassifier

    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray (got {engine!r})")
    if chunk_rows < 1:
        raise ConfigError(f"--chunk-rows must be a positive integer (got {chunk_rows})")
    if engine == "ray":
        ray_flags = dict(
            backend=backend, workers=workers, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
            output_format=output_format, top_k=top_k, text_column=text_column, text_pair_column=text_pair_column,
            encoding=encoding, header=header, skip_bad_rows=skip_bad_rows, ray_address=ray_address,
            chunk_rows=chunk_rows, precision=precision, device=device,
        )  # fmt: skip
        _predict_ray(model_dir, text, data, output, ray_flags)
        return
    if text is not None and data:
        raise DataError("give either one TEXT argument or --data FILE (with --output FILE)")
    if data and len(data) > 1:
        raise DataError(f"--data was given {len(data)} times; one file at a time, or several with --engine ray")
    data = data[0] if data else None
    if (text is None) == (data is None):
        raise DataError("give either one TEXT argument or --data FILE (with --output FILE)")
    if data is not None and output is None:
        raise DataError("--data needs --output FILE.csv or FILE.jsonl to write the predictions to")
    if output is not None and output.suffix.lower() not in (".csv", ".jsonl", ".tsv", ".parquet"):
        raise DataError(f"{output}: --output must end in .csv, .tsv, .jsonl or .parquet")
    classifier = TextClassifier.load(model_dir, device=device, backend=backend, precision=precision)
    if text is not None:
        frame = classifier.predict_table([(text, pair)] if pair else [text], top_k or 5)
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].items()}
        typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    rows, skipped = classifier.predict_file(
        data, output, top_k=top_k, text_column=text_column, pair_column=text_pair_column, encoding=encoding,
        header=header, skip_bad_rows=skip_bad_rows, chunk_rows=chunk_rows,
    )  # fmt: skip
    _say(f"wrote {rows} predictions to {output}" + (f" ({skipped} rows skipped)" if skipped else ""))


def _predict_ray(model_dir: str, text: str | None, data: list[str] | None, output: Path | None, flags: dict) -> None:
    from bertkit import predict_ray

    if text is not None or not data:
        raise DataError("--engine ray predicts files: give --data FILE (repeat for more) and --output FOLDER")
    if output is None:
        raise DataError("--engine ray needs --output FOLDER to write the prediction parts into")
    if flags["backend"] != "torch":
        raise DataError("--engine ray runs the torch backend; leave out --backend")
    if flags["device"] != "auto":
        raise DataError("--engine ray places workers itself (--gpus-per-worker); leave out --device")
    result = predict_ray(
        model_dir, data, output, workers=flags["workers"], cpus_per_worker=flags["cpus_per_worker"],
        gpus_per_worker=flags["gpus_per_worker"], output_format=flags["output_format"], top_k=flags["top_k"],
        text_column=flags["text_column"], pair_column=flags["text_pair_column"], encoding=flags["encoding"],
        header=flags["header"], skip_bad_rows=flags["skip_bad_rows"], address=flags["ray_address"],
        chunk_rows=flags["chunk_rows"], precision=flags["precision"],
    )  # fmt: skip
    _say(f"wrote {result.rows} predictions from {len(data)} files in {len(result.parts)} parts to {output}"
         + (f" ({result.skipped} rows skipped)" if result.skipped else ""))  # fmt: skip


@app.command()
def embed(
    model: Annotated[str, typer.Argument(help="minilm, a hub id, a model folder or a bertkit model.")],
    data: Annotated[str, typer.Option("--data", help="File of texts to embed.")],
    output: Annotated[Path, typer.Option("--output", help="FILE.npy (matrix) or FILE.parquet.")],
    text_column: TextColumn = None,
    pooling: Annotated[str, typer.Option(help="mean, cls or pooler.")] = "mean",
    layer: Annotated[
        list[int] | None, typer.Option("--layer", help="Hidden layer (repeat to average several).")
    ] = None,
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale vectors to unit length.")] = False,
    max_length: Annotated[int, typer.Option(help="Tokens kept per text.")] = 256,
    encoding: Encoding = "utf-8",
    header: Header = None,
    device: Device = "auto",
) -> None:
    """Write one embedding per text (rows in input order)."""
    from bertkit import TextEmbedder
    from bertkit.embeddings import write_embeddings

    if output.suffix not in (".npy", ".parquet"):
        raise DataError(f"{output}: --output must end in .npy or .parquet")
    dataset = _read(data, text=text_column, pair=None, label=None, need_label=False, encoding=encoding,
                    header=header, skip=False)  # fmt: skip
    embedder = TextEmbedder(model, pooling=pooling, layers=layer or -1, normalize=normalize,
                            max_length=max_length, device=device).fit()  # fmt: skip
    vectors = embedder.transform(dataset.texts)
    write_embeddings(vectors, output)
    _say(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}")


@app.command()
def export(
    model_dir: Annotated[str, typer.Argument(help="A bertkit model folder.")],
    format: Annotated[str, typer.Option("--format", help="Only onnx for now.")] = "onnx",
    quantize: Annotated[str | None, typer.Option("--quantize", help="int8: dynamic int8 weights.")] = None,
) -> None:
    """Export a model for ONNX Runtime (written to MODEL_DIR/onnx/), optionally int8-quantized."""
    from bertkit import ConfigError, TextClassifier

    if format != "onnx":
        raise ConfigError(f"--format must be onnx (got {format!r})")
    path = TextClassifier.load(model_dir, device="cpu").export_onnx(model_dir, quantize=quantize)
    _say(f"wrote {path}; predict with: bertkit predict {model_dir} --backend {'onnx-int8' if quantize else 'onnx'} ...")


@app.command()
def demo(
    output: Annotated[Path, typer.Option(help="Where to write the demo model.")] = Path("bertkit-demo"),
    epochs: Annotated[int, typer.Option(help="Passes over the demo data.")] = 4,
) -> None:
    """Train the built-in model on a small packaged sentiment set, evaluate it, and predict a few sentences."""
    from bertkit.demo import run_demo

    run_demo(output, epochs=epochs)


@app.command()
def serve(
    model_dir: Annotated[str, typer.Argument(help="A bertkit model folder (fixed for the server's life).")],
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless told otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_batch_size: Annotated[
        int, typer.Option(help="Most texts of concurrent requests merged into one model call.")
    ] = 32,
    max_wait_ms: Annotated[float, typer.Option(help="How long a text waits for others to batch with.")] = 5.0,
    max_queue: Annotated[int, typer.Option(help="Most texts waiting; beyond it 503 with Retry-After.")] = 1024,
    max_texts: Annotated[int, typer.Option(help="Most texts per request (413 beyond).")] = 64,
    max_chars: Annotated[int, typer.Option(help="Most characters per text (413 beyond).")] = 10_000,
    timeout: Annotated[float, typer.Option(help="Seconds before an unanswered request gets 504.")] = 30.0,
    graceful_timeout: Annotated[float, typer.Option(help="Seconds in-flight requests get on shutdown.")] = 30.0,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding an API key every endpoint but /health needs.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads for the model (default: torch's).")] = None,
    precision: Annotated[
        str, typer.Option(help="auto (the saved precision: bf16 where native), fp32 (matches transformers) or bf16.")
    ] = "auto",
    forward_batch_size: Annotated[
        int | None,
        typer.Option(
            help="Texts per forward pass in a merged batch (default: all of it for BERT classifiers or on GPU, else 8)."
        ),
    ] = None,
    device: Device = "auto",
) -> None:
    """Serve a model over HTTP: /predict, /embed (classifiers), /qa, /tag (by the folder's kind), /info, /health,
    /ready, /metrics, /docs and a page at /."""
    from bertkit.serving import ServeSettings, api_key_from_env
    from bertkit.serving import serve as run_server

    # The service's load figures (benchmarks/RESULTS.md) were measured with the tokenizer on one thread: on a
    # small CPU its threads would compete with torch's for the same cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = ServeSettings(
        host=host, port=port, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue,
        max_texts=max_texts, max_chars=max_chars, request_timeout_s=timeout, graceful_timeout_s=graceful_timeout,
        api_key=api_key_from_env(api_key_env) if api_key_env else None, torch_threads=threads, device=device,
        precision=precision, forward_batch_size=forward_batch_size,
    )  # fmt: skip
    if not settings.is_loopback and settings.api_key is None:
        _say(f"warning: serving on {host} without an API key: anyone who can reach it can use it "
             "(set --api-key-env VAR)")  # fmt: skip
    _say(f"loading {model_dir} ...")
    run_server(
        model_dir, settings,
        on_loaded=lambda service: _say(f"serving {service.kind} from {service.folder} on http://{host}:{port}/ "
                                       f"({service.route}, /embed, /docs; Ctrl-C stops)"),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bertkit`` console script."""
    usage_errors, aborts = _click_exceptions()
    try:
        # Without standalone mode typer turns Ctrl-C into an exit code (130) and returns it.
        code = app(args=argv, standalone_mode=False)
    except BertkitError as exc:
        _say(f"error: {exc}")
        sys.exit(1)
    except aborts:
        _say("aborted")
        sys.exit(130)
    except usage_errors as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        code = 130
    if code == 130:
        _say("interrupted")
    if isinstance(code, int) and code:
        sys.exit(code)


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage errors, aborts) as raised by the installed typer: recent typer vendors click (typer._click),
    older typer raises click's own exceptions."""
    import typer

    usage: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [typer.Abort]
    try:
        from typer._click.exceptions import ClickException

        usage.append(ClickException)
    except ImportError:
        pass
    try:
        import click

        usage.append(click.ClickException)
        aborts.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(usage), tuple(aborts)


if __name__ == "__main__":  # pragma: no cover
    main()
