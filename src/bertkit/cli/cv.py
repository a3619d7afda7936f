"""``bertkit cv``: K-fold cross-validation of a text classifier, over :func:`bertkit.cross_validate`.

Its flags are ``bertkit train``'s: the command's signature is train's parameters (read by Typer through
``inspect.signature``) less ``--seeds``, plus ``--folds`` and ``--keep-models``, so an option added to train
reaches cv without being declared twice. Each fold trains as ``bertkit train`` would with the fold's held-out
rows as ``--validation``.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bertkit import TrainConfig
from bertkit.cli.classify import train as train_command
from bertkit.cli.console import say
from bertkit.cli.options import merge_config_file, option, require, run_options, without_checkpoints
from bertkit.cli.reading import as_trained
from bertkit.exceptions import ConfigError
from bertkit.read_options import ReadOptions

# train's options that cv does not take: several seeds are another kind of run (train --seeds).
LEFT_OUT = ("seeds", "export")  # cv keeps no model by default: nothing to export
# cv's own parameters besides the config fields: what the body below reads.
HANDLED = {"ctx", "train", "output", "overwrite", "validation", "config", "quiet", "folds", "keep_models"}
VALIDATION_HELP = "Not taken by cv: each fold validates on its held-out rows."
Folds = Annotated[int, typer.Option("--folds", help="Number of folds (at least 2); every row validates once.")]
KeepModels = Annotated[
    bool, typer.Option("--keep-models", help="Keep each fold's model in --output/fold-K/ (default: not written).")
]
Output = Annotated[
    Path | None,
    typer.Option("--output", help="Folder for oof_predictions.csv, cv_report.json (and fold-K/ with --keep-models)."),
]


def cv(ctx: typer.Context, **params: Any) -> None:
    """Cross-validate: train one model per fold (each validating on its held-out fold, as train's --validation)
    and write out-of-fold predictions and the metrics' mean and std to --output."""
    from bertkit import cross_validate
    from bertkit.cross_validation import check_cv_output, check_fold_count, clear_cv_output
    from bertkit.runs import read_data

    config = params["config"]
    merged = without_checkpoints(ctx, merge_config_file(ctx, config, skip=("quiet", "overwrite", "keep_models")), "cv")
    _check_flags(ctx, merged)
    settings, read = run_options(merged)
    read = dataclasses.replace(read, validation=None)
    require(merged, ("train", "output"), config)
    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise ConfigError("cv trains its folds one after another in one process; launch it without torchrun")
    output, folds = Path(merged["output"]), merged["folds"]
    check_fold_count(folds)
    check_cv_output(output, params["overwrite"])  # before the data is read: a refused folder costs no time
    train_data = read_data(read.train, read)
    read = as_trained(read, train_data)
    for note in train_data.notes:
        say(note)
    columns = train_data.columns
    pair = f", pair: {columns.pair!r}" if columns.pair else ""
    say(f"cross-validating on {len(train_data)} rows of {train_data.source.name} in {folds} folds "
        f"(text: {columns.text!r}{pair}, label: {columns.label!r})")  # fmt: skip
    if params["overwrite"]:
        clear_cv_output(output)  # only now: a run that fails on its data keeps the old results

    def done(run: dict) -> None:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in run["metrics"].items())
        say(f"fold {run['fold']}/{folds}: kept epoch {run['kept_epoch']} (best {run['best_epoch']}), "
            f"{run['train_seconds']:.0f} s; {metrics}")  # fmt: skip

    result = cross_validate(settings, train_data, folds, output=output, keep_models=params["keep_models"],
                            progress=not params["quiet"], run_options=read.to_dict(), on_fold=done)  # fmt: skip
    for note in result.notes:
        say(f"note: {note}")
    print_table(result)
    kept = f", fold models in {output}/fold-K/" if params["keep_models"] else ""
    say(f"{folds} folds; out-of-fold predictions in {output / 'oof_predictions.csv'}, report in "
        f"{output / 'cv_report.json'}{kept}")  # fmt: skip


def _check_flags(ctx: typer.Context, merged: dict[str, Any]) -> None:
    """ConfigError for --validation given as a flag (the folds validate) or a train option cv does not apply;
    a --validation from a config file (a model's train_config.json) is left out with a note."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)} | {f.name for f in dataclasses.fields(ReadOptions)}
    for name in sorted(set(ctx.params) - fields - HANDLED):
        source = ctx.get_parameter_source(name)
        if source is not None and source.name != "DEFAULT":
            raise ConfigError(f"--{name.replace('_', '-')} is a train option that cv does not apply; leave it out")
    if merged.get("validation") in (None, ""):
        return
    source = ctx.get_parameter_source("validation")
    if source is not None and source.name != "DEFAULT":
        raise ConfigError("--validation: cv validates each fold on its own held-out rows; leave --validation out")
    say(f"note: validation file {merged['validation']} of the config file is not used: each fold validates on its "
        "held-out rows")  # fmt: skip


def print_table(result: Any) -> None:
    """The validation metrics of each fold (a column each), their mean and std, and the same metrics over the
    out-of-fold predictions pooled, as a rich table: one row per metric keeps it narrow."""
    from rich.console import Console
    from rich.table import Table

    sizes = ", ".join(f"{run['train_rows']}/{run['validation_rows']}" for run in result.per_fold)
    table = Table(title=f"{result.folds}-fold cross-validation ({result.task}; train/validation rows: {sizes})")
    table.add_column("metric")
    for column in (*(f"fold {run['fold']}" for run in result.per_fold), "mean", "std", "pooled"):
        table.add_column(column, justify="right")
    for name, mean in result.mean.items():
        folds = (f"{run['metrics'][name]:.4f}" for run in result.per_fold)
        pooled = result.oof_metrics.get(name)
        table.add_row(
            name, *folds, f"{mean:.4f}", f"{result.std[name]:.4f}", "-" if pooled is None else f"{pooled:.4f}"
        )
    table.add_row("kept epoch", *(str(run["kept_epoch"]) for run in result.per_fold), "", "", "")
    Console().print(table)


def _signature() -> inspect.Signature:
    """train's parameters less ``LEFT_OUT``, with cv's --output help, then --folds and --keep-models."""
    parameters = []
    for parameter in inspect.signature(train_command, eval_str=True).parameters.values():
        if parameter.name in LEFT_OUT:
            continue
        if parameter.name == "output":
            parameter = parameter.replace(annotation=Output)
        elif parameter.name == "validation":
            parameter = parameter.replace(default=option(ReadOptions, "validation", help=VALIDATION_HELP))
        parameters.append(parameter)
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters += [
        inspect.Parameter("folds", keyword, annotation=Folds, default=5),
        inspect.Parameter("keep_models", keyword, annotation=KeepModels, default=False),
    ]
    return inspect.Signature(parameters, return_annotation=None)


cv.__signature__ = _signature()  # type: ignore[attr-defined]
