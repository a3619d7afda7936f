"""The public surface: ``bertkit.__all__`` is pinned, every public name resolves, every module imports.

Changing ``__all__`` is an API change: update PUBLIC below on purpose, together with the README.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import bertkit

PUBLIC = [
    "BertkitError",
    "BertkitWarning",
    "ConfigError",
    "DataError",
    "Distiller",
    "ModelKind",
    "ModelLoadError",
    "NotFittedError",
    "QuestionAnswerer",
    "TextClassifier",
    "TextEmbedder",
    "TokenTagger",
    "TrainConfig",
    "__version__",
    "cross_validate",
    "is_main_process",
    "load_data",
    "load_tagged_data",
    "predict_ray",
    "read_squad",
    "train_seeds",
    "tune",
]
# Third-party packages that only optional extras install (serve, onnx, tune, ray, hf): a module that needs one
# may be skipped when it is missing; any other import error fails.
EXTRA_PACKAGES = {
    "fastapi", "starlette", "pydantic", "uvicorn", "prometheus_client", "httpx",
    "onnx", "onnxruntime", "optuna", "ray", "datasets",
}  # fmt: skip
# Importing bertkit.__main__ runs the CLI: it is checked on its own below.
ENTRY_POINT = "bertkit.__main__"


def test_all_is_pinned():
    assert sorted(bertkit.__all__) == PUBLIC
    assert len(set(bertkit.__all__)) == len(bertkit.__all__), "__all__ lists a name twice"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name):
    assert getattr(bertkit, name) is not None


def all_modules() -> list[str]:
    names = ["bertkit"]
    for info in pkgutil.walk_packages(bertkit.__path__, prefix="bertkit.", onerror=lambda name: None):
        names.append(info.name)
    return sorted(set(names) - {ENTRY_POINT})


def test_the_walk_finds_every_package():
    found = set(all_modules())
    assert {"bertkit.data", "bertkit.engine", "bertkit.models", "bertkit.cli", "bertkit.serving"} <= found
    assert {"bertkit.classification", "bertkit.tagging", "bertkit.qa"} <= found


@pytest.mark.parametrize("module", all_modules())
def test_every_module_imports(module):
    """A fast import of every module of src/bertkit: a module that no fast test touches still gets loaded here."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing in EXTRA_PACKAGES:
            pytest.skip(f"{module} needs {missing}, from an optional extra that is not installed")
        raise


def test_entry_point_runs_the_cli(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bertkit", "--help"])
    monkeypatch.delitem(sys.modules, ENTRY_POINT, raising=False)
    try:
        importlib.import_module(ENTRY_POINT)
    except SystemExit as exit_info:  # --help returns without exiting; a failure would exit non-zero
        assert exit_info.code in (0, None)
    assert "Usage" in capsys.readouterr().out
