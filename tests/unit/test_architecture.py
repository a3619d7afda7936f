"""Imports flow one way: data -> modeling -> training/inference -> estimators -> cli (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "bertkit"
# module -> bertkit modules it must never import
FORBIDDEN = {
    "data": ("bertkit.modeling", "bertkit.training", "bertkit.inference", "bertkit.estimators", "bertkit.cli"),
    "modeling": ("bertkit.training", "bertkit.inference", "bertkit.estimators", "bertkit.cli"),
    "training": ("bertkit.estimators", "bertkit.cli"),
    "inference": ("bertkit.training", "bertkit.estimators", "bertkit.cli"),
    "metrics": ("bertkit.training", "bertkit.estimators", "bertkit.cli", "torch"),
    "estimators": ("bertkit.cli", "bertkit.seeds", "bertkit.tuning", "bertkit.ray_predict"),
    "entity_metrics": ("bertkit.training", "bertkit.estimators", "bertkit.cli", "torch"),
    "tagging": ("bertkit.training", "bertkit.estimators", "bertkit.tagger", "bertkit.cli"),
    "tagger": ("bertkit.estimators", "bertkit.cli"),
    # Question answering: pure-numpy decoding and metrics; the objective sits beside training; one facade.
    "qa/metrics": ("bertkit.training", "bertkit.estimators", "bertkit.qa.estimator", "bertkit.cli", "torch"),
    "qa/decoding": ("bertkit.training", "bertkit.estimators", "bertkit.qa.estimator", "bertkit.cli", "torch"),
    "qa/objective": ("bertkit.training", "bertkit.estimators", "bertkit.qa.estimator", "bertkit.cli"),
    "qa/estimator": ("bertkit.cli", "bertkit.estimators"),
    # The service is a shell over the public facade, like the CLI (see test_serving_uses_only_the_public_api).
    "serving": ("bertkit.cli", "bertkit.training", "bertkit.inference", "bertkit.modeling", "bertkit.data"),
    "ddp": ("bertkit.training", "bertkit.estimators", "bertkit.cli", "bertkit.data", "bertkit.modeling"),
    # built on the facade; the CLI reaches them through `bertkit` only
    "seeds": ("bertkit.cli", "bertkit.training", "optuna", "ray"),
    "tuning": ("bertkit.cli", "bertkit.training", "ray"),
    "ray_predict": ("bertkit.cli", "bertkit.training", "optuna"),
}
CLI_ALLOWED = {
    "bertkit",
    "bertkit.exceptions",
    "bertkit.demo",
    "bertkit.embeddings",
    "bertkit.cli_tag",
    "bertkit.cli_qa",
    "bertkit.serving",
}
CLI_FILES = ("cli.py", "cli_tag.py", "cli_qa.py")


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "bertkit")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_later_layers(layer):
    files = list((PACKAGE / layer).glob("*.py")) if (PACKAGE / layer).is_dir() else [PACKAGE / f"{layer}.py"]
    for path in files:
        bad = {m for m in imports_of(path) for f in FORBIDDEN[layer] if m == f or m.startswith(f + ".")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", CLI_FILES)
def test_cli_uses_only_the_public_api(name):
    modules = {m for m in imports_of(PACKAGE / name) if m.startswith("bertkit")}
    public = {m for m in modules if m in CLI_ALLOWED or m.rsplit(".", 1)[0] == "bertkit"}
    assert modules == public, f"cli imports internals: {sorted(modules - public)}"


def test_serving_uses_only_the_public_api():
    allowed = {"bertkit", "bertkit.exceptions"}
    for path in (PACKAGE / "serving").glob("*.py"):
        modules = {m for m in imports_of(path) if m.startswith("bertkit") and not m.startswith("bertkit.serving")}
        internal = {m for m in modules if m not in allowed and m.rsplit(".", 1)[0] != "bertkit"}
        assert not internal, f"serving/{path.name} imports internals: {sorted(internal)}"


def test_import_is_light_and_side_effect_free():
    import subprocess
    import sys

    code = "import sys, bertkit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and out.stderr == ""


def test_optional_engines_are_imported_only_when_used():
    import subprocess
    import sys

    # Optuna and Ray are extras: the facade and the CLI must load without them (imports inside functions).
    code = (
        "import sys, bertkit.cli, bertkit.estimators, bertkit.seeds, bertkit.tuning, bertkit.ray_predict; "
        "print(sorted(m for m in ('optuna', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
