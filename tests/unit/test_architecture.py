"""Imports flow one way, through the layers that docs/ARCHITECTURE.md describes (low to high):

0. bertkit.exceptions, devices, flags, config, read_options, params, selection: pure helpers, nothing above
1. bertkit.data: files, columns, labels, encoding
2. bertkit.models: loading and packing the networks
3. bertkit.engine, bertkit.ddp, bertkit.cuda_graphs, bertkit.onnx_forward: the training loop and the forward passes
4. task packages bertkit.classification, bertkit.tagging, bertkit.qa (siblings: none imports another),
   plus bertkit.embeddings and bertkit.export
5. bertkit.runs, seeds, tuning, ray_predict, demo, distillation, tracking, cross_validation: built on the task
   facades
6. bertkit (its __init__): the public API
7. bertkit.cli and bertkit.serving: shells over the public API (``SHELL_ALLOWED`` lists what else each may use)
8. bertkit.__main__: ``python -m bertkit`` runs the CLI

A module may import only from its own layer or a lower one. Every .py under src/bertkit is read with ast,
imports inside functions and ``if TYPE_CHECKING:`` blocks included. A module listed here that does not exist
(yet) is fine; a module that exists but has no layer fails, so a new module gets a place on purpose.
The subprocess checks (``import bertkit`` stays light) live in tests/integration/test_import_cost.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "bertkit"

LAYERS: dict[str, int] = {
    "bertkit.exceptions": 0,
    "bertkit.devices": 0,
    "bertkit.config": 0,
    "bertkit.flags": 0,
    "bertkit.read_options": 0,
    "bertkit.params": 0,
    "bertkit.selection": 0,
    "bertkit.data": 1,
    "bertkit.models": 2,
    "bertkit.engine": 3,
    "bertkit.ddp": 3,
    "bertkit.cuda_graphs": 3,
    "bertkit.onnx_forward": 3,
    "bertkit.classification": 4,
    "bertkit.tagging": 4,
    "bertkit.qa": 4,
    "bertkit.embeddings": 4,
    "bertkit.export": 4,
    "bertkit.runs": 5,
    "bertkit.seeds": 5,
    "bertkit.tuning": 5,
    "bertkit.ray_predict": 5,
    "bertkit.demo": 5,
    "bertkit.cross_validation": 5,
    "bertkit.tracking": 5,
    "bertkit.distillation": 5,
    "bertkit.fast_backend": 5,
    "bertkit": 6,
    "bertkit.cli": 7,
    "bertkit.serving": 7,
    "bertkit.__main__": 8,
}
TASKS = ("bertkit.classification", "bertkit.tagging", "bertkit.qa")
SHELLS = ("bertkit.cli", "bertkit.serving")
# What each shell may import besides its own package: the public API, the errors, and for the CLI the option
# declarations its flags are built from (config and read_options, through the field machinery of flags), the run
# helpers behind `train` (runs) and `cv` (cross_validation's output-folder checks), the MLflow run of `distill`
# (tracking), the commands that are not estimators (demo, embed) and the service that `bertkit serve` starts.
SHELL_ALLOWED: dict[str, tuple[str, ...]] = {
    "bertkit.cli": ("bertkit", "bertkit.exceptions", "bertkit.config", "bertkit.flags", "bertkit.read_options",
                    "bertkit.runs", "bertkit.demo", "bertkit.embeddings", "bertkit.serving",
                    "bertkit.cross_validation", "bertkit.tracking", "bertkit.tuning"),
    "bertkit.serving": ("bertkit", "bertkit.exceptions"),
}  # fmt: skip
# The facade of each task package: nothing else in its package imports it (it sits on top of its package).
FACADES = ("bertkit.classification.estimator", "bertkit.tagging.estimator", "bertkit.qa.estimator")
# Finer rules the layers do not express: (modules, imports they must never make).
EXTRA_RULES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    # metrics and span decoding are pure numpy: no torch
    (("bertkit.classification.metrics", "bertkit.tagging.metrics", "bertkit.qa.metrics", "bertkit.qa.decoding"),
     ("torch",)),
    # what prediction with an ONNX graph runs: no torch, no transformers (imports inside functions count too)
    (("bertkit.classification.inputs", "bertkit.classification.prediction", "bertkit.classification.tables",
      "bertkit.classification.scoring", "bertkit.classification.report", "bertkit.classification.calibration",
      "bertkit.classification.conformal", "bertkit.engine.batches", "bertkit.onnx_forward",
      "bertkit.models.rust_tokenizer"),
     ("torch", "transformers", "bertkit.classification.fitting", "bertkit.engine.forward", "bertkit.ddp")),
    # the forward passes sit below the loop that uses them
    (("bertkit.engine.forward",), ("bertkit.engine.loop",)),
    # the process-group helpers know nothing of data or models
    (("bertkit.ddp",), ("bertkit.data", "bertkit.models")),
    # built on the facades, not on the loop; Optuna and Ray each only where used
    (("bertkit.seeds", "bertkit.tuning", "bertkit.ray_predict", "bertkit.runs", "bertkit.tracking"),
     ("bertkit.engine.loop",)),
    (("bertkit.seeds",), ("optuna", "ray")),
    (("bertkit.tuning",), ("ray",)),
    (("bertkit.ray_predict",), ("optuna",)),
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").is_file() or (PACKAGE.parent / relative).is_dir()


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file; ``from pkg import sub`` counts as ``pkg.sub``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if is_module(f"{module}.{alias.name}") else module)
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def unit_of(module: str) -> str | None:
    """The most specific LAYERS key ``module`` falls under (``bertkit`` itself only for the package root)."""
    if module == "bertkit":
        return "bertkit"
    keys = [key for key in LAYERS if key != "bertkit" and within(module, key)]
    return max(keys, key=len) if keys else None


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_package_is_found():
    assert "bertkit" in MODULES and "bertkit.data" in MODULES and len(MODULES) > 20, sorted(MODULES)


def test_every_module_has_a_layer():
    assert not [m for m in MODULES if unit_of(m) is None], "give these modules a layer in LAYERS"


def bertkit_imports(module: str) -> set[str]:
    return {m for m in imports_of(MODULES[module]) if within(m, "bertkit")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_from_its_own_layer_or_below(module):
    own = unit_of(module)
    assert own is not None
    higher = {m for m in bertkit_imports(module) if LAYERS[unit_of(m) or "bertkit"] > LAYERS[own]}
    assert not higher, f"{module} (layer {LAYERS[own]}) imports higher layers: " + ", ".join(
        f"{m} (layer {LAYERS[unit_of(m) or 'bertkit']})" for m in sorted(higher)
    )


@pytest.mark.parametrize("module", sorted(m for m in MODULES if any(within(m, t) for t in TASKS)))
def test_task_packages_do_not_import_each_other(module):
    task = next(t for t in TASKS if within(module, t))
    others = {m for m in bertkit_imports(module) for t in TASKS if t != task and within(m, t)}
    assert not others, f"{module} imports the sibling task package(s): {sorted(others)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if within(m, "bertkit.data")))
def test_data_does_not_import_the_torch_layers(module):
    above = {m for m in bertkit_imports(module) if LAYERS[unit_of(m) or "bertkit"] > LAYERS["bertkit.data"]}
    assert not above, f"{module} imports {sorted(above)}: data/ sits below models, engine and the tasks"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if any(within(m, s) for s in SHELLS)))
def test_shells_use_only_the_public_api(module):
    shell = next(s for s in SHELLS if within(module, s))
    allowed = SHELL_ALLOWED[shell]
    # "bertkit" itself only exactly (its public names); the others with their submodules
    internal = {
        m for m in bertkit_imports(module)
        if not within(m, shell) and m not in allowed and not any(within(m, a) for a in allowed if a != "bertkit")
    }  # fmt: skip
    assert not internal, f"{module} imports internals: {sorted(internal)} (allowed: {allowed} and {shell})"


@pytest.mark.parametrize("facade", FACADES)
def test_nothing_in_a_task_package_imports_its_facade(facade):
    package = facade.rpartition(".")[0]
    users = sorted(m for m in MODULES if within(m, package) and m != facade and facade in bertkit_imports(m))
    assert not users, f"{users} import {facade}, the top of {package}"


@pytest.mark.parametrize(("modules", "forbidden"), EXTRA_RULES, ids=lambda value: ",".join(value))
def test_finer_rules(modules, forbidden):
    present = [m for m in modules if m in MODULES]
    assert present, f"none of {modules} exists: update EXTRA_RULES"
    bad = {m: sorted(i for i in imports_of(MODULES[m]) for f in forbidden if within(i, f)) for m in present}
    assert not any(bad.values()), {m: found for m, found in bad.items() if found}
