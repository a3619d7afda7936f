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
    "estimators": ("bertkit.cli",),
    # The service is a shell over the public facade, like the CLI (see test_serving_uses_only_the_public_api).
    "serving": ("bertkit.cli", "bertkit.training", "bertkit.inference", "bertkit.modeling", "bertkit.data"),
}
CLI_ALLOWED = {"bertkit", "bertkit.exceptions", "bertkit.demo", "bertkit.embeddings", "bertkit.serving"}


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


def test_cli_uses_only_the_public_api():
    modules = {m for m in imports_of(PACKAGE / "cli.py") if m.startswith("bertkit")}
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
