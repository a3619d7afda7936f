"""Options shared by the ``bertkit`` command modules: one definition, one help text.

The options of ``bertkit train`` and ``bertkit tune`` that are run options come from the dataclasses that
declare them (:class:`bertkit.TrainConfig`, :class:`bertkit.read_options.ReadOptions`): :func:`option` and
:func:`annotation` take the default, the help and the flag spelling from the field, so a command cannot
drift from the config. ``--config FILE`` merging (:func:`merge_config_file`) lives here too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from bertkit import ConfigError, TrainConfig
from bertkit.cli.console import say
from bertkit.flags import from_values, option_field
from bertkit.read_options import ReadOptions


def option(owner: type, name: str, *, help: str | None = None) -> Any:
    """``typer.Option`` for the field ``name`` of the dataclass ``owner`` (TrainConfig, ReadOptions), used as a
    parameter's default (``epochs: int = option(TrainConfig, "epochs")``): the field's default, flag spelling
    and one-line help; ``help`` replaces the help where a command uses the option differently."""
    found = option_field(owner, name)
    return typer.Option(found.default, *found.metadata["decls"], help=help or found.metadata["help"])


def annotation(owner: type, name: str) -> Any:
    """``typer.Option`` for ``Annotated[type, annotation(owner, name)]``: the field's flag spelling and help (the
    default is written at the parameter, as Annotated options require)."""
    found = option_field(owner, name)
    return typer.Option(*found.metadata["decls"], help=found.metadata["help"])


TextColumn = Annotated[str | None, annotation(ReadOptions, "text_column")]
PairColumn = Annotated[str | None, annotation(ReadOptions, "text_pair_column")]
LabelColumn = Annotated[str | None, annotation(ReadOptions, "label_column")]
Encoding = Annotated[str, annotation(ReadOptions, "encoding")]
SkipBadRows = Annotated[bool, annotation(ReadOptions, "skip_bad_rows")]
Header = Annotated[bool | None, annotation(ReadOptions, "header")]
LabelNames = Annotated[Path | None, annotation(ReadOptions, "label_names")]
Delimiter = Annotated[str | None, annotation(ReadOptions, "delimiter")]
LabelOffset = Annotated[int | None, annotation(ReadOptions, "label_offset")]
InferencePrecision = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="Override the saved precision for torch inference: auto (bf16 where native), bf16 or fp32 "
        "(fp32 matches plain transformers exactly).",
    ),
]

Task = Annotated[str, annotation(TrainConfig, "task")]
BaseModel = Annotated[str, annotation(TrainConfig, "model")]
TrainPrecision = Annotated[str, annotation(TrainConfig, "precision")]
Device = Annotated[str, annotation(TrainConfig, "device")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
Export = Annotated[
    bool,
    typer.Option(
        "--export/--no-export",
        help="After training, write ONNX graphs (fp32, int8), score each backend on the validation rows and make "
        "the fastest within 0.5 point of torch the default of predict and serve.",
    ),
]
Resume = Annotated[
    Path | None,
    typer.Option(help="Continue the interrupted run whose checkpoint is DIR/checkpoint (DIR: normally --output)."),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        help="JSON/TOML/YAML file of these options, keys as flag names (flags win); "
        "MODEL/train_config.json repeats a run."
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace the model in a non-empty --output folder (only a folder bertkit wrote, holding only its files).",
    ),
]


def merge_config_file(ctx: typer.Context, config: Path | None, skip: tuple[str, ...]) -> dict[str, Any]:
    """The command's parameters with the values of a JSON/TOML/YAML file filled in where the flag was left at
    its default (flags win over the file, the file over defaults). Keys are flag names (dashes or underscores)
    or TrainConfig fields, except ``config`` and ``skip``; any other key is a ConfigError."""
    params = dict(ctx.params)
    if config is None:
        return params
    values = TrainConfig.read_options(config)
    allowed = sorted((set(params) | {f.name for f in dataclasses.fields(TrainConfig)}) - {"config", *skip})
    spelled = {key.removeprefix("no_"): key for key in values}  # no_export, as --no-export spells it
    command_only = sorted(spelled[key] for key in spelled if key in skip)
    if command_only:
        flags = ", ".join(f"--{key.replace('_', '-')}" for key in command_only)
        raise ConfigError(
            f"{config}: {command_only} act on this command, not on the run a config file repeats; give them as "
            f"flags ({flags}) and remove them from the file"
        )
    unknown = sorted(k for k in values if k not in allowed)
    if unknown:
        raise ConfigError(f"{config}: unknown keys {unknown}; allowed: {', '.join(allowed)}")
    merged = dict(params)
    for key, value in values.items():
        source = ctx.get_parameter_source(key) if key in params else None
        if source is None or source.name == "DEFAULT":
            merged[key] = value
    return merged


def without_checkpoints(ctx: typer.Context, merged: dict[str, Any], command: str) -> dict[str, Any]:
    """``merged`` for a command that cannot resume (``cv``, ``train --seeds``, ``tune``): --checkpoint-every given
    as a flag is refused; from a config file (a model's train_config.json repeats its run) it is left out, said."""
    if merged.get("checkpoint_every") in (None, ""):
        return merged
    source = ctx.get_parameter_source("checkpoint_every") if "checkpoint_every" in ctx.params else None
    if source is not None and source.name != "DEFAULT":
        raise ConfigError(f"--checkpoint-every: {command} cannot resume, so it keeps no checkpoint; leave it out")
    say(f"note: checkpoint_every of the config file is not used: {command} cannot resume")
    return {**merged, "checkpoint_every": None}


def run_options(params: dict[str, Any]) -> tuple[TrainConfig, ReadOptions]:
    """The typed options of a run from the merged parameters: hyperparameters and data options (the
    hyperparameters are checked here, before any data is read)."""
    return from_values(TrainConfig, params), from_values(ReadOptions, params)


def given_flags(ctx: typer.Context) -> set[str]:
    """The parameters of a command set on its command line (not left at their defaults)."""
    return {name for name in ctx.params if (source := ctx.get_parameter_source(name)) and source.name != "DEFAULT"}


def require(params: dict[str, Any], names: tuple[str, ...], config: Path | None) -> None:
    """ConfigError for the first of ``names`` given neither as a flag nor in the config file."""
    for name in names:
        if params.get(name) in (None, ""):
            where = f" or `{name}` in {config}" if config else ""
            raise ConfigError(f"--{name} is required{where}")
