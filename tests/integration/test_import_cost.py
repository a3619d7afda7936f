"""Importing is light, checked in fresh interpreters (so these spawn subprocesses and sit with the slow tests).

The import-layer rules that need no subprocess are in tests/unit/test_architecture.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_import_is_light_and_side_effect_free():
    code = "import sys, bertkit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and out.stderr == ""


def test_optional_engines_are_imported_only_when_used():
    # Optuna and Ray are extras: the facade and the CLI must load without them (imports inside functions).
    code = (
        "import sys, bertkit.cli, bertkit.classification.estimator, bertkit.seeds, bertkit.tuning, bertkit.ray_predict; "
        "print(sorted(m for m in ('optuna', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_importing_the_serving_package_stays_light():
    code = "import sys, bertkit.serving; print(sorted(m for m in ('fastapi', 'torch', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})  # fmt: skip
    assert out.stdout.strip() == "[]"
