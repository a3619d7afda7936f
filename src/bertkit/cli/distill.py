"""``bertkit distill``: train a smaller, faster student from a fine-tuned classifier (:class:`bertkit.Distiller`),
keep it when it scores within ``--max-drop`` points of the teacher, and say so in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from bertkit.cli.console import say
from bertkit.cli.options import (
    Delimiter,
    Device,
    Encoding,
    Export,
    Header,
    LabelColumn,
    Overwrite,
    PairColumn,
    Quiet,
    SkipBadRows,
    TextColumn,
    option,
)
from bertkit.cli.reading import as_trained, saved_settings, say_saved
from bertkit.config import TrainConfig
from bertkit.exceptions import DataError
from bertkit.read_options import ReadOptions

READ_SETTINGS = ("text_column", "text_pair_column", "label_column", "encoding", "header", "delimiter", "label_names",
                 "label_offset")  # fmt: skip
"""The teacher's saved reading settings that --train, --validation and --unlabeled files are read with."""


def distill(
    ctx: typer.Context,
    teacher_dir: Annotated[str, typer.Argument(help="The teacher: a bertkit classifier folder.")],
    train: Annotated[str, typer.Option("--train", help="Labelled training data (CSV, TSV, JSONL, Parquet, hf:NAME).")],
    output: Annotated[Path, typer.Option("--output", help="Folder for the student (DIR-below-teacher if rejected).")],
    unlabeled: Annotated[
        list[str] | None,
        typer.Option("--unlabeled", help="Unlabeled texts the student learns the teacher's outputs on (repeatable)."),
    ] = None,
    validation: Annotated[
        str | None, typer.Option("--validation", help="Validation data (default: 10% of --train held out).")
    ] = None,
    student: Annotated[
        str,
        typer.Option(
            "--student",
            help="layers:N (the teacher's N lowest layers), layers:I,J,... (0-based) or a model "
            "(hub id, folder, minilm) trained fresh.",
        ),
    ] = "layers:3",
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 3,
    temperature: Annotated[float, typer.Option(help="Softens teacher and student logits in the soft loss.")] = 2.0,
    alpha: Annotated[
        float, typer.Option(help="Weight of the labels' loss; 1 - alpha goes to the soft loss (unlabeled rows: 0).")
    ] = 0.5,
    hidden_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the loss matching the student's last-layer [CLS] state to the teacher's "
            "(layers:N students; 0: off)."
        ),
    ] = 0.0,
    augment: Annotated[
        int,
        typer.Option(
            help="Altered copies of each training text (words masked or left out) the teacher labels for "
            "the student (0: none)."
        ),
    ] = 0,
    max_drop: Annotated[
        float, typer.Option(help="Most points the student may score below the teacher on validation, to be kept.")
    ] = 1.0,
    batch_size: Annotated[int | None, typer.Option(help="Examples per step (default: by data size).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate (default: by data size).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the teacher's).")] = None,
    validation_overlap: str = option(TrainConfig, "validation_overlap"),
    overwrite: Overwrite = False,
    export: Export = True,
    text_column: TextColumn = None,
    text_pair_column: PairColumn = None,
    label_column: LabelColumn = None,
    encoding: Encoding = "utf-8",
    header: Header = None,
    delimiter: Delimiter = None,
    skip_bad_rows: SkipBadRows = False,
    device: Device = "auto",
    track: Annotated[
        str | None,
        typer.Option(help="Log the run to MLflow: mlflow, or mlflow:URI (needs the 'track' extra of bertkit)."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Distil a classifier into a smaller student; exit 1 when the student scores more than --max-drop points
    below the teacher (it is then saved to OUTPUT-below-teacher)."""
    from bertkit import Distiller, TextClassifier
    from bertkit.runs import check_data_file, check_output_folder, choose_default_backend, read_data
    from bertkit.tracking import tracked

    tracking = TrainConfig(track=track)  # checks the form of --track before anything loads

    distiller = Distiller(
        student, epochs=epochs, temperature=temperature, alpha=alpha, hidden_weight=hidden_weight, augment=augment, max_drop=max_drop, batch_size=batch_size,
        learning_rate=learning_rate, seed=seed, device=device, validation_overlap=validation_overlap,
        progress=not quiet,
    )  # fmt: skip
    distiller.check()
    for folder in (output, Distiller.rejected_folder(output)):  # either may receive the student
        if Path(folder).resolve() == Path(teacher_dir).resolve():
            raise DataError(f"--output {folder}: is the teacher's folder; the student would replace the teacher, "
                            "choose another --output")  # fmt: skip
        check_output_folder(folder, overwrite)
    for path in (train, validation, *(unlabeled or [])):
        if path is not None:
            check_data_file(path, delimiter=delimiter, model_dir=teacher_dir)
    teacher = TextClassifier.load(teacher_dir, device=device)
    read = ReadOptions(
        text_column=text_column, text_pair_column=text_pair_column, label_column=label_column, encoding=encoding,
        header=header, delimiter=delimiter, skip_bad_rows=skip_bad_rows,
    )  # fmt: skip
    read, taken = saved_settings(teacher, read, ctx, train, READ_SETTINGS)
    train_data = read_data(train, read)
    say_saved(train, taken)
    validation_data = read_data(validation, read) if validation else None
    # Unlabeled files need no label column: one named for the labelled files must not be looked for in them.
    unlabeled_read = dataclasses.replace(read, label_column=None, label_names=None, label_offset=None)
    extra = [read_data(path, unlabeled_read, need_label=False) for path in unlabeled or []]
    say(f"distilling {teacher_dir} into {student}: {len(train_data)} rows of {train_data.source.name}"
        + (f", {sum(len(part) for part in extra)} unlabeled rows" if extra else "")
        + (f", {augment} altered copies of each training text" if augment else ""))  # fmt: skip
    options = {
        "teacher": teacher_dir, "student": student, "epochs": epochs, "temperature": temperature, "alpha": alpha,
        "hidden_weight": hidden_weight, "augment": augment, "max_drop": max_drop, "seed": seed, "device": device,
        "unlabeled": ",".join(unlabeled or []) or None,
    }  # fmt: skip
    # One MLflow run (--track): these options, the student's training options and epochs, the guard's scores and
    # verdict, and the student's folder; it ends FINISHED when the guard rejects the student (the run did its job).
    with tracked(
        tracking, output, read.to_dict(), params={k: v for k, v in options.items() if v is not None}
    ) as tracker:
        distiller.fit(teacher, train_data, eval_set=validation_data, unlabeled=extra, teacher_name=teacher_dir,
                      on_epoch=tracker.log_epoch)  # fmt: skip
        say(distiller.summary())
        # saved as bertkit train saves them: evaluate and predict read the student's files as the teacher's
        trained = as_trained(dataclasses.replace(read, train=train, validation=validation), train_data)
        folder = distiller.save(output, overwrite=overwrite, run_options=trained.to_dict())
        # as bertkit train does: the student predicts and serves with its fastest backend that scores as torch
        if export:
            choose_default_backend(distiller.student_, folder, progress=not quiet)
        record = distiller.record_
        guard = ("teacher_score", "student_score", "drop_points", "speedup")
        tracker.log_metrics({f"distill_{key}": record[key] for key in guard})
        tracker.set_tag("bertkit.kept", str(distiller.kept_).lower())
        tracker.finish(distiller.student_, folder)
    if not distiller.kept_:
        say(f"error: the student scored {distiller.drop_points_:.2f} points below the teacher (more than --max-drop "
            f"{max_drop:g}); it was saved to {folder} instead of {output}")  # fmt: skip
        raise typer.Exit(1)
    say(f"wrote the student to {folder} ({distiller.speedup_:.1f}x faster than the teacher on validation)")
