"""Imports flow one way: data -> modeling -> training/inference -> estimators -> cli (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "bertkit"
# module -> bertkit modules it must never import
FORBIDDEN = {
    "data": (
        "bertkit.models.modeling",
        "bertkit.engine.loop",
        "bertkit.engine.forward",
        "bertkit.classification.estimator",
        "bertkit.cli.main",
    ),
    "models/modeling": (
        "bertkit.engine.loop",
        "bertkit.engine.forward",
        "bertkit.classification.estimator",
        "bertkit.cli.main",
    ),
    "engine/loop": ("bertkit.classification.estimator", "bertkit.cli.main"),
    "engine/forward": ("bertkit.engine.loop", "bertkit.classification.estimator", "bertkit.cli.main"),
    "classification/metrics": ("bertkit.engine.loop", "bertkit.classification.estimator", "bertkit.cli.main", "torch"),
    "classification/estimator": ("bertkit.cli.main", "bertkit.seeds", "bertkit.tuning", "bertkit.ray_predict"),
    "tagging/metrics": ("bertkit.engine.loop", "bertkit.classification.estimator", "bertkit.cli.main", "torch"),
    "tagging/words": (
        "bertkit.engine.loop",
        "bertkit.classification.estimator",
        "bertkit.tagging.estimator",
        "bertkit.cli.main",
    ),
    "tagging/estimator": ("bertkit.classification.estimator", "bertkit.cli.main"),
    # Question answering: pure-numpy decoding and metrics; the objective sits beside training; one facade.
    "qa/metrics": (
        "bertkit.engine.loop",
        "bertkit.classification.estimator",
        "bertkit.qa.estimator",
        "bertkit.cli.main",
        "torch",
    ),
    "qa/decoding": (
        "bertkit.engine.loop",
        "bertkit.classification.estimator",
        "bertkit.qa.estimator",
        "bertkit.cli.main",
        "torch",
    ),
    "qa/objective": (
        "bertkit.engine.loop",
        "bertkit.classification.estimator",
        "bertkit.qa.estimator",
        "bertkit.cli.main",
    ),
    "qa/estimator": ("bertkit.cli.main", "bertkit.classification.estimator"),
    # The service is a shell over the public facade, like the CLI (see test_serving_uses_only_the_public_api).
    "serving": (
        "bertkit.cli.main",
        "bertkit.engine.loop",
        "bertkit.engine.forward",
        "bertkit.models.modeling",
        "bertkit.data",
    ),
    "ddp": (
        "bertkit.engine.loop",
        "bertkit.classification.estimator",
        "bertkit.cli.main",
        "bertkit.data",
        "bertkit.models.modeling",
    ),
    # built on the facade; the CLI reaches them through `bertkit` only
    "seeds": ("bertkit.cli.main", "bertkit.engine.loop", "optuna", "ray"),
    "tuning": ("bertkit.cli.main", "bertkit.engine.loop", "ray"),
    "ray_predict": ("bertkit.cli.main", "bertkit.engine.loop", "optuna"),
}
CLI_ALLOWED = {
    "bertkit",
    "bertkit.exceptions",
    "bertkit.demo",
    "bertkit.embeddings",
    "bertkit.cli.tag",
    "bertkit.cli.qa",
    "bertkit.cli.options",
    "bertkit.serving",
}
CLI_FILES = ("cli/main.py", "cli/tag.py", "cli/qa.py")


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
    assert files[0].is_file(), files
    for path in files:
        bad = {m for m in imports_of(path) for f in FORBIDDEN[layer] if m == f or m.startswith(f + ".")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", CLI_FILES)
def test_cli_uses_only_the_public_api(name):
    modules = {m for m in imports_of(PACKAGE / name) if m.startswith("bertkit")}
    public = {m for m in modules if m in CLI_ALLOWED or m.rsplit(".", 1)[0] == "bertkit"}
    assert modules == public, f"cli imports internals: {sorted(modules - public)}"


def test_serving_uses_only_the_public_api():
    allowed = {"bertkit", "bertkit.exceptions", "bertkit.models.packed"}
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
        "import sys, bertkit.cli.main, bertkit.classification.estimator, bertkit.seeds, bertkit.tuning, bertkit.ray_predict; "
        "print(sorted(m for m in ('optuna', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
