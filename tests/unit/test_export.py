"""ONNX export and the ONNX Runtime backend on the tiny BERT."""

from __future__ import annotations

import pytest
from helpers import sentiment_examples

from bertkit import ModelLoadError, TextClassifier

pytest.importorskip("onnxruntime")


def test_missing_export_names_the_command(tiny_bert, tmp_path):
    texts, labels = sentiment_examples(40)
    TextClassifier(str(tiny_bert), epochs=1, progress=False).fit(texts, labels).save(tmp_path)
    with pytest.raises(ModelLoadError, match=r"no exported ONNX model; run `bertkit export .* --format onnx`"):
        TextClassifier.load(tmp_path, backend="onnx")
