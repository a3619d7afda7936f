"""How ``evaluate`` and ``predict`` read their ``--data``: checked before the model loads (seconds), then read
with the reading settings of the model's training wherever no flag was given (``ReadOptions.with_saved``);
``train`` records those settings (:func:`as_trained`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bertkit.cli.console import say
from bertkit.cli.options import given_flags
from bertkit.exceptions import DataError
from bertkit.read_options import ReadOptions

if TYPE_CHECKING:
    from bertkit import TextClassifier

PREDICT_SETTINGS = ("text_column", "text_pair_column", "encoding", "header", "delimiter")
"""The saved reading settings that apply to unlabelled files."""


def as_trained(read: ReadOptions, train_data) -> ReadOptions:
    """The read options a model saves: evaluate and predict reuse them (``ReadOptions.with_saved``)."""
    return read.as_trained(train_data.source.header, train_data.label_offset)


def saved_settings(
    classifier: TextClassifier, read: ReadOptions, ctx: typer.Context, data: str, names: tuple[str, ...] | None = None
) -> tuple[ReadOptions, list[str]]:
    """``read`` with the settings of the model's training filled in where no flag was given, and those taken."""
    saved = getattr(classifier, "metadata_", {}).get("run_options") or {}
    return read.with_saved(saved, given_flags(ctx), data, names)


def folder_settings(
    model_dir: str, read: ReadOptions, ctx: typer.Context, data: str, names: tuple[str, ...] | None = None
) -> tuple[ReadOptions, list[str]]:
    """:func:`saved_settings` from the model folder's bertkit.json, without loading the model (``predict --engine
    ray`` loads it on its workers only)."""
    from bertkit.runs import saved_run_options

    return read.with_saved(saved_run_options(model_dir), given_flags(ctx), data, names)


def say_saved(data: str, taken: list[str]) -> None:
    """One info line: the settings of the model's training that were used to read ``data``."""
    if taken:
        say(f"read {data} as the model was trained: {', '.join(taken)} (flags override these)")


@contextmanager
def saved_in_errors(taken: list[str]) -> Iterator[None]:
    """Reading under the settings of the model's training: a DataError that names one of their flags (the saved
    ``--text-column 1`` missing from this file) says where that setting came from."""
    try:
        yield
    except DataError as exc:
        named = [flag for flag in taken if flag.split()[0] in str(exc)]
        if not named:
            raise
        raise DataError(
            f"{exc} ({', '.join(named)}: the setting of the model's training, used as no flag gave another)"
        ) from None


def local_input(text: str | None, data: list[str] | None, output: Path | None) -> str | None:
    """The one --data file of a local predict (None with TEXT), after checking TEXT, --data and --output fit."""
    if text is not None and data:
        raise DataError("give either one TEXT argument or --data FILE (with --output FILE)")
    if data and len(data) > 1:
        raise DataError(f"--data was given {len(data)} times; one file at a time, or several with --engine ray")
    path = data[0] if data else None
    if (text is None) == (path is None):
        raise DataError("give either one TEXT argument or --data FILE (with --output FILE)")
    if path is not None and output is None:
        raise DataError("--data needs --output FILE.csv or FILE.jsonl to write the predictions to")
    if output is not None and output.suffix.lower() not in (".csv", ".jsonl", ".tsv", ".parquet"):
        raise DataError(f"{output}: --output must end in .csv, .tsv, .jsonl or .parquet")
    if output is not None:
        from bertkit.runs import check_output_file

        check_output_file(output, path)  # before the model loads: a wrong --output costs no time
    return path
