"""Every run option is declared once, in the config dataclasses (bertkit.config, bertkit.read_options), and the
two other places that name it, ``TextClassifier.__init__`` and the ``bertkit train`` / ``tune`` options, are held
equal to it: a field that is added, dropped, renamed or given another default or type on one side only fails here."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from typing import Any

import pytest
import typer

from bertkit import TrainConfig
from bertkit.cli import app, main
from bertkit.read_options import ReadOptions

# Options of `bertkit train` that are neither TrainConfig nor ReadOptions fields.
TRAIN_ONLY = {"output", "overwrite", "seeds", "config", "quiet", "resume", "export"}
# TextClassifier parameters that are not training options (prediction and display).
ESTIMATOR_ONLY = {"predict_batch_size", "progress"}
# TrainConfig fields that are not flags (free-form notes, from a config file only).
FILE_ONLY = {"extra"}


def fields_of(owner: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(owner)}


def default_of(found: dataclasses.Field) -> Any:
    return found.default if found.default is not dataclasses.MISSING else found.default_factory()


def command(*path: str) -> Any:
    group: Any = typer.main.get_command(app)
    for name in path:
        group = group.commands[name]
    return group


def options_of(*path: str) -> dict[str, Any]:
    return {p.name: p for p in command(*path).params}


def annotations_of(function: Any) -> dict[str, str]:
    return {name: str(p.annotation) for name, p in inspect.signature(function).parameters.items()}


def field_docstrings(owner: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (attribute docstrings, as litgpt's args)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(owner))).body[0].body
    found = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            found[node.target.id] = after.value.value
    return found


def test_every_option_field_has_a_short_help_and_a_docstring():
    for owner in (TrainConfig, ReadOptions):
        docstrings = field_docstrings(owner)
        for name, found in fields_of(owner).items():
            assert docstrings.get(name, "").strip(), f"{owner.__name__}.{name}: no docstring"
            if name not in FILE_ONLY:
                assert found.metadata.get("help", "").strip(), f"{owner.__name__}.{name}: no CLI help"


def test_estimator_parameters_match_train_config():
    from bertkit import TextClassifier

    params = inspect.signature(TextClassifier.__init__).parameters
    estimator = {name: p for name, p in params.items() if name != "self"}
    fields = fields_of(TrainConfig)
    assert set(estimator) - ESTIMATOR_ONLY == set(fields) - FILE_ONLY, "TextClassifier and TrainConfig differ"
    for name in set(fields) - FILE_ONLY:
        assert estimator[name].default == default_of(fields[name]), f"{name}: default differs"
        assert str(estimator[name].annotation) == str(fields[name].type), f"{name}: type differs"


def test_train_command_options_are_the_config_fields():
    from bertkit.cli.classify import train

    options = options_of("train")
    train_fields = set(fields_of(TrainConfig)) - FILE_ONLY
    read_fields = set(fields_of(ReadOptions))
    assert set(options) - TRAIN_ONLY == train_fields | read_fields
    annotations = annotations_of(train)
    for owner in (TrainConfig, ReadOptions):
        for name, found in fields_of(owner).items():
            if name in FILE_ONLY:
                continue
            option = options[name]
            assert option.default == default_of(found), f"--{name}: default differs from {owner.__name__}"
            assert option.help == found.metadata["help"], f"--{name}: help differs from {owner.__name__}"
            decls = found.metadata["decls"] or (f"--{name.replace('_', '-')}",)
            spelled = "/".join(option.opts + option.secondary_opts)
            assert spelled in decls or (option.secondary_opts and spelled == f"{decls[0]}/--no-{decls[0][2:]}")
            if owner is TrainConfig:
                assert annotations[name] == str(found.type), f"--{name}: type differs from TrainConfig"


def test_tune_options_default_to_the_config():
    options = options_of("tune")
    shared = 0
    for owner in (TrainConfig, ReadOptions):
        for name, found in fields_of(owner).items():
            if name in options:
                shared += 1
                assert options[name].default == default_of(found), f"tune --{name}: default differs"
    assert shared >= 15


@pytest.mark.parametrize("name", ["evaluate", "predict", "embed"])
def test_data_options_of_other_commands_default_to_read_options(name):
    options = options_of(name)
    for field_name, found in fields_of(ReadOptions).items():
        if field_name in options:
            assert options[field_name].default == default_of(found), f"{name} --{field_name}"
            assert options[field_name].help == found.metadata["help"], f"{name} --{field_name}"


@pytest.mark.parametrize(
    ("path", "estimator"),
    [(("tag", "train"), "TokenTagger"), (("qa", "train"), "QuestionAnswerer")],
)
def test_tag_and_qa_train_options_default_to_the_estimator(path, estimator):
    import bertkit

    params = inspect.signature(getattr(bertkit, estimator).__init__).parameters
    options = options_of(*path)
    shared = set(options) & set(params)
    assert len(shared) >= 10, shared
    for name in shared:
        assert options[name].default == params[name].default, f"{' '.join(path)} --{name}"


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    try:
        main(["--version"])
    except SystemExit as exc:  # pragma: no cover - only on failure
        assert exc.code == 0
    out, err = capsys.readouterr()
    assert out == f"bertkit {version('bertkit')}\n" and err == ""


def test_read_options_keep_paths_as_text():
    from pathlib import Path

    options = ReadOptions(train=Path("a.csv"), label_names=Path("names.txt"))
    assert options.to_dict()["train"] == "a.csv" and options.to_dict()["label_names"] == "names.txt"
    assert list(options.to_dict()) == [f.name for f in dataclasses.fields(ReadOptions)]
