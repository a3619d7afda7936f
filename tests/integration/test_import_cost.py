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


def test_predicting_with_an_onnx_graph_imports_neither_torch_nor_transformers(tiny_classifier, tmp_path):
    """`bertkit predict` on a model whose default backend is an ONNX graph: torch (1.5 s) and transformers
    (about 1 s) stay unimported, and the predictions are torch's."""
    import json
    import shutil

    from bertkit import TextClassifier

    folder = shutil.copytree(tiny_classifier, tmp_path / "model")
    TextClassifier.load(folder, backend="torch").export_onnx(folder)  # onnx/model.onnx, checked against torch
    metadata = json.loads((folder / "bertkit.json").read_text())
    (folder / "bertkit.json").write_text(json.dumps({**metadata, "backend": {"default": "onnx"}}))
    texts = ["a great film", "awful and dull plot", "the music was good but the story bad", "ok"]
    (tmp_path / "in.csv").write_text("text\n" + "\n".join(f'"{t}"' for t in texts) + "\n")
    from bertkit.devices import GPU_DEVICE_FILES

    # --device auto, as users run it, unless a GPU is there (torch is then asked whether it may use it)
    device = ", '--device', 'cpu'" if any(Path(p).exists() for p in GPU_DEVICE_FILES) else ""
    code = (
        "import sys\nfrom bertkit.cli import main\n"
        f"sys.argv = ['bertkit', 'predict', {str(folder)!r}, '--data', {str(tmp_path / 'in.csv')!r}, "
        f"'--output', {str(tmp_path / 'out.csv')!r}{device}]\n"
        "try:\n    main()\nfinally:\n"
        "    print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={
        **__import__("os").environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
    import pandas as pd

    written = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    expected = TextClassifier.load(folder, backend="torch").predict(texts)
    assert list(written["label"]) == list(expected)
    # a model loaded to predict with its graph (stand-ins for its network and tokenizer) still exports
    from helpers import run_cli

    assert run_cli("export", folder, "--format", "onnx", "--quantize", "int8") == 0
    assert list(TextClassifier.load(folder, backend="onnx").predict(texts)) == list(expected)
    assert (folder / "onnx" / "model-int8.onnx").is_file()
