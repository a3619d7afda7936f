"""ONNX export and the ONNX Runtime backend on a tiny BERT trained in-process (moved from tests/unit/test_export.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import sentiment_examples

from bertkit import TextClassifier
from bertkit.cli import main

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def saved(tiny_bert, tmp_path_factory):
    texts, labels = sentiment_examples(120)
    clf = TextClassifier(str(tiny_bert), epochs=2, batch_size=16, learning_rate=3e-3, progress=False)
    folder = tmp_path_factory.mktemp("onnx-model")
    clf.fit(texts, labels).save(folder)
    return folder


def test_onnx_backend_matches_torch(saved):
    texts = sentiment_examples(40, seed=4)[0]
    path = TextClassifier.load(saved, device="cpu").export_onnx(saved)
    assert path.name == "model.onnx" and path.is_file()
    torch_clf = TextClassifier.load(saved, device="cpu")
    onnx_clf = TextClassifier.load(saved, backend="onnx")
    np.testing.assert_allclose(onnx_clf.predict_proba(texts), torch_clf.predict_proba(texts), atol=1e-4)


def test_int8_export_through_the_cli(saved, capsys):
    main(["export", str(saved), "--format", "onnx", "--quantize", "int8"])
    assert "model-int8.onnx" in capsys.readouterr().err
    clf = TextClassifier.load(saved, backend="onnx-int8")
    texts, labels = sentiment_examples(40, seed=4)
    torch_labels = TextClassifier.load(saved, device="cpu").predict(texts)
    agreement = np.mean(clf.predict(texts) == torch_labels)
    assert agreement >= 0.9


def test_bert_and_distilbert_graphs_are_packed_and_match_torch(saved, tiny_distilbert, tmp_path):
    import onnx

    graph = onnx.load(str(TextClassifier.load(saved, device="cpu").export_onnx(saved))).graph
    assert "NonZero" in {node.op_type for node in graph.node}  # BERT: the packed forward picks real tokens
    texts, labels = sentiment_examples(40)
    TextClassifier(str(tiny_distilbert), epochs=1, progress=False).fit(texts, labels).save(tmp_path)
    path = TextClassifier.load(tmp_path, device="cpu").export_onnx(tmp_path)
    assert "NonZero" in {node.op_type for node in onnx.load(str(path)).graph.node}  # DistilBERT is packed too
    some = sentiment_examples(12, seed=5)[0] + ["a", "the film was very good and the music was lovely"]
    np.testing.assert_allclose(
        TextClassifier.load(tmp_path, backend="onnx").predict_proba(some),
        TextClassifier.load(tmp_path, device="cpu").predict_proba(some),
        atol=1e-4,
    )
