"""``bertkit evaluate / predict``: scoring and prediction with a trained text classifier, over
:class:`bertkit.TextClassifier`. Each command parses flags, makes one facade call and prints. How they read
their data (the model's saved read settings) is :mod:`bertkit.cli.reading`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    PairColumn,
    SkipBadRows,
    TextColumn,
)
from bertkit.cli.reading import (
    PREDICT_SETTINGS,
    folder_settings,
    local_input,
    saved_in_errors,
    saved_settings,
    say_saved,
)
from bertkit.exceptions import ConfigError, DataError
from bertkit.read_options import ReadOptions

if TYPE_CHECKING:
    from bertkit import TextClassifier

Coverage = Annotated[
    float | None,
    typer.Option(
        "--coverage",
        help="Single-label: prediction sets holding the true label with at least this probability (e.g. 0.9; "
        "split conformal on the training run's validation rows).",
    ),
]
AbstainBelow = Annotated[
    float | None,
    typer.Option(
        "--abstain-below", help="Single-label: no label (empty/null) where the top probability is below this."
    ),
]
Backend = Annotated[
    str,
    typer.Option(
        help="auto (the default `bertkit train` recorded: the fastest within 0.5 point of torch on validation), "
        "torch, onnx or onnx-int8 (after `bertkit export`)."
    ),
]
NoCalibration = Annotated[
    bool,
    typer.Option("--no-calibration", help="The model's own probabilities, without the temperature fitted in training."),
]


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
    backend: Backend = "auto",
    precision: InferencePrecision = None,
    coverage: Coverage = None,
    abstain_below: AbstainBelow = None,
    no_calibration: NoCalibration = False,
) -> None:
    """Score a model on labelled data: metrics (with ECE and Brier score), per-class table, confusion matrix.
    Reading settings of the model's training (columns, header, encoding, delimiter, label names) apply unless a
    flag is given. --coverage adds set_coverage and mean_set_size; --abstain-below adds abstained,
    coverage_rate and answered_accuracy."""
    from bertkit import TextClassifier
    from bertkit.runs import check_data_file, prepare_report_dir, read_data

    check_data_file(
        data, delimiter=delimiter, model_dir=model_dir
    )  # before the model loads (seconds): a wrong path fails at once
    if report_dir is not None:
        prepare_report_dir(report_dir)
    classifier = TextClassifier.load(
        model_dir, device=device, backend=backend, precision=precision, calibration=not no_calibration
    )
    _set_options(classifier, coverage, abstain_below)
    read = ReadOptions(text_column=text_column, text_pair_column=text_pair_column, label_column=label_column,
                       encoding=encoding, header=header, skip_bad_rows=skip_bad_rows, label_names=label_names,
                       delimiter=delimiter, label_offset=label_offset)  # fmt: skip
    read, taken = saved_settings(classifier, read, ctx, data)
    with saved_in_errors(taken):
        dataset = read_data(data, read)
    for note in dataset.notes:
        say(note)
    say_saved(data, taken)
    report = classifier.evaluate(
        dataset, skip_unseen_labels=skip_bad_rows, coverage=coverage, abstain_below=abstain_below
    )
    if report_dir is not None:
        report.save(report_dir, history=classifier.history_)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.to_dict().items()}, default=str))
        for line in report.warnings():
            say(f"warning: {line}")
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
    backend: Backend = "auto",
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
    coverage: Coverage = None,
    abstain_below: AbstainBelow = None,
    no_calibration: NoCalibration = False,
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
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k must be a positive integer (got {top_k})")
    if engine == "ray":
        if coverage is not None or abstain_below is not None or no_calibration:
            raise ConfigError("--coverage, --abstain-below and --no-calibration work with --engine local only")
        _check_ray(text, data, output, backend=backend, device=device)
        read = ReadOptions(text_column=text_column, text_pair_column=text_pair_column, encoding=encoding,
                           header=header, delimiter=delimiter)  # fmt: skip
        _predict_ray(
            ctx, model_dir, data, output, read, workers=workers, cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker, output_format=output_format, top_k=top_k, skip_bad_rows=skip_bad_rows,
            address=ray_address, chunk_rows=chunk_rows, precision=precision,
        )  # fmt: skip
        return
    path = local_input(text, data, output)
    if path is not None:  # checked before the model loads (seconds): a wrong path fails at once
        check_data_file(path, delimiter=delimiter, model_dir=model_dir)
    classifier = TextClassifier.load(
        model_dir, device=device, backend=backend, precision=precision, calibration=not no_calibration
    )
    sets = _set_options(classifier, coverage, abstain_below)
    if text is not None:
        _check_pair(classifier, pair)
        ranked = None if classifier.task_ == "regression" else 5  # the top labels, unless there are none
        _predict_text(classifier, [(text, pair)] if pair is not None else [text], top_k or ranked, sets)
        return
    read, taken = saved_settings(
        classifier, ReadOptions(text_column=text_column, text_pair_column=text_pair_column, encoding=encoding,
                                header=header, delimiter=delimiter), ctx, path, PREDICT_SETTINGS,
    )  # fmt: skip
    say_saved(path, taken)
    _predict_file(classifier, path, output, read, sets, top_k=top_k, skip_bad_rows=skip_bad_rows, chunk_rows=chunk_rows)


def _predict_file(
    classifier: TextClassifier, path: str, output: Path, read: ReadOptions, sets: dict[str, float | None], **options
) -> None:  # fmt: skip
    """Write the predictions of the file ``path`` to ``output`` (``options``: top_k, skip_bad_rows, chunk_rows)
    and say how many rows were written, skipped and (with --abstain-below) abstained."""
    abstained = 0

    def count_abstained(frame) -> None:  # each chunk's table, as it is written
        nonlocal abstained
        abstained += frame.attrs.get("abstained", 0)

    rows, skipped = classifier.predict_file(
        path, output, **_file_options(read), on_chunk=count_abstained, **sets, **options
    )
    say(f"wrote {rows} predictions to {output}" + (f" ({skipped} rows skipped)" if skipped else ""))
    if sets.get("abstain_below") is not None:
        say(f"{abstained} of {rows} rows abstained (top probability below {sets['abstain_below']})")


def _file_options(read: ReadOptions) -> dict[str, str | bool | None]:
    """How ``predict_file`` (and each file of ``predict_ray``) reads a file, from the resolved read options."""
    return {"text_column": read.text_column, "pair_column": read.text_pair_column, "encoding": read.encoding,
            "header": read.header, "delimiter": read.delimiter}  # fmt: skip


def _set_options(classifier, coverage: float | None, abstain_below: float | None) -> dict[str, float | None]:
    """The prediction-set and abstention options of predict_table/predict_file; wrong ones (or a model without
    conformity scores) fail here, before any data is read."""
    classifier.check_set_options(coverage, abstain_below)
    return {"coverage": coverage, "abstain_below": abstain_below}


def _check_pair(classifier: TextClassifier, pair: str | None) -> None:
    """DataError in the CLI's words when TEXT and --pair do not fit the model (``text_pair_``: None when the
    folder does not record it; the model then judges)."""
    text_pair = getattr(classifier, "text_pair_", None)
    if text_pair and pair is None:
        raise DataError('this model was trained on text pairs: give the second text with --pair, as in '
                        'bertkit predict MODEL "first text" --pair "second text"')  # fmt: skip
    if text_pair is False and pair is not None:
        raise DataError("this model was trained on single texts, not pairs: leave out --pair")


def _predict_text(classifier, texts: list, top_k: int | None, sets: dict[str, float | None]) -> None:
    """Print one text's prediction as a JSON object (label null when it abstained)."""
    import pandas as pd

    frame = classifier.predict_table(texts, top_k, **sets)
    # pd.NA (an abstained label in its nullable column) prints as null, numpy scalars as plain numbers
    row = {k: (None if v is pd.NA else v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].items()}
    typer.echo(json.dumps(row, ensure_ascii=False, default=str))
    if frame.attrs.get("abstained"):
        say(f"1 of 1 rows abstained (top probability below {sets['abstain_below']})")


def _check_ray(text: str | None, data: list[str] | None, output: Path | None, *, backend: str, device: str) -> None:
    """DataError unless the flags fit a Ray prediction: files (no TEXT), an output folder, torch, no --device."""
    if text is not None or not data:
        raise DataError("--engine ray predicts files: give --data FILE (repeat for more) and --output FOLDER")
    if output is None:
        raise DataError("--engine ray needs --output FOLDER to write the prediction parts into")
    if backend not in ("auto", "torch"):
        raise DataError("--engine ray runs the torch backend; leave out --backend")
    if device != "auto":
        raise DataError("--engine ray places workers itself (--gpus-per-worker); leave out --device")


def _predict_ray(
    ctx: typer.Context, model_dir: str, data: list[str], output: Path, read: ReadOptions, **options
) -> None:
    """Predict the --data files on Ray workers (``bertkit.predict_ray``, ``options`` passed on) after the cheap
    checks of each file, and say what was written. Each file is read as the local engine reads it: with the
    model's saved read settings (``read`` from the flags, the rest from the model folder's bertkit.json)."""
    from bertkit import predict_ray
    from bertkit.runs import check_data_file

    for path in data:
        check_data_file(path, delimiter=read.delimiter, model_dir=model_dir)
    per_file = []
    for path in data:  # the saved header and delimiter apply to files of the training file's extension only
        file_read, taken = folder_settings(model_dir, read, ctx, path, PREDICT_SETTINGS)
        say_saved(path, taken)
        per_file.append(_file_options(file_read))
    result = predict_ray(model_dir, data, output, per_file=per_file, **options)
    say(f"wrote {result.rows} predictions from {len(data)} files in {len(result.parts)} parts to {output}"
        + (f" ({result.skipped} rows skipped)" if result.skipped else ""))  # fmt: skip
