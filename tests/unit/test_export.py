"""ONNX export and the ONNX Runtime backend on the tiny BERT."""

from __future__ import annotations

import pytest
from helpers import sentiment_examples

from bertkit import ConfigError, ModelLoadError, TextClassifier

pytest.importorskip("onnxruntime")


def test_missing_export_names_the_command(tiny_bert, tmp_path):
    texts, labels = sentiment_examples(40)
    TextClassifier(str(tiny_bert), epochs=1, progress=False).fit(texts, labels).save(tmp_path)
    with pytest.raises(ModelLoadError, match=r"no exported ONNX model; run `bertkit export .* --format onnx`"):
        TextClassifier.load(tmp_path, backend="onnx")


def _saved(tiny_bert, folder, three_labels=False, seed=0):
    texts, labels = sentiment_examples(40)
    labels = [["a", "b", "c"][i % 3] for i in range(len(texts))] if three_labels else labels
    clf = TextClassifier(str(tiny_bert), epochs=1, progress=False, seed=seed).fit(texts, labels)
    return clf, clf.save(folder)


def test_a_graph_from_another_model_is_refused_and_auto_falls_back_to_torch(tiny_bert, tmp_path):
    import json
    import shutil

    import numpy as np

    _, binary = _saved(tiny_bert, tmp_path / "binary")
    three, _ = _saved(tiny_bert, tmp_path / "three", three_labels=True)
    three.export_onnx(tmp_path / "three", quantize="int8")
    shutil.copytree(tmp_path / "three" / "onnx", binary / "onnx")  # a graph copied in from the 3-label model
    with pytest.raises(ModelLoadError, match=r"model.onnx: the graph gives 3 scores per text where this model has 2; .*"
                       r"export it again: bertkit export .*binary --format onnx$"):  # fmt: skip
        TextClassifier.load(binary, backend="onnx")
    metadata = json.loads((binary / "bertkit.json").read_text())
    (binary / "bertkit.json").write_text(json.dumps({**metadata, "backend": {"default": "onnx-int8"}}))
    with pytest.warns(
        UserWarning, match=r"model-int8.onnx: the graph gives 3 .*--quantize int8; predicting with torch"
    ):
        loaded = TextClassifier.load(binary, device="cpu")  # the recorded default: torch is right, only slower
    assert loaded.backend_ == "torch"
    expected = TextClassifier.load(binary, backend="torch", device="cpu").predict_proba(["good film"])
    np.testing.assert_allclose(loaded.predict_proba(["good film"]), expected, atol=1e-6)


def test_a_graph_exported_before_the_weights_changed_is_refused(tiny_bert, tmp_path):
    import shutil

    clf, folder = _saved(tiny_bert, tmp_path / "m")
    clf.export_onnx(folder, quantize="int8")
    assert TextClassifier.load(folder, backend="onnx-int8").backend_ == "onnx-int8"
    _, other = _saved(tiny_bert, tmp_path / "other", seed=5)  # same labels and shapes, other weights
    shutil.copy(other / "model.safetensors", folder / "model.safetensors")  # replaced by hand, onnx/ kept
    for backend, name in (("onnx", "model.onnx"), ("onnx-int8", "model-int8.onnx")):
        with pytest.raises(ModelLoadError, match=rf"{name}: exported from other weights than the folder holds now"):
            TextClassifier.load(folder, backend=backend)
    TextClassifier.load(folder, backend="torch", device="cpu").export_onnx(folder)  # fp32 again, int8 left as it was
    assert TextClassifier.load(folder, backend="onnx").backend_ == "onnx"
    with pytest.raises(ModelLoadError, match=r"model-int8.onnx: exported from other weights"):
        TextClassifier.load(folder, backend="onnx-int8")


def test_an_export_that_fails_leaves_the_graphs_as_they_were(tiny_bert, tmp_path, monkeypatch):
    import bertkit.export as export

    clf, folder = _saved(tiny_bert, tmp_path / "m")
    clf.export_onnx(folder)
    before = (folder / "onnx" / "model.onnx").read_bytes()

    def broken(*args, **kwargs):
        raise ModelLoadError("exported graph disagrees with torch")

    monkeypatch.setattr(export, "_check_against_torch", broken)
    with pytest.raises(ModelLoadError, match="disagrees"):
        clf.export_onnx(folder, quantize="int8")
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == ["model.onnx", "source.json"]  # no partial files
    assert (folder / "onnx" / "model.onnx").read_bytes() == before
    monkeypatch.undo()
    (folder / "onnx" / "model.onnx.partial").mkdir()  # stands in for an unwritable folder (root writes anywhere)
    with pytest.raises(ModelLoadError, match=r"onnx: cannot write the exported graph \(Is a directory\); make the"):
        clf.export_onnx(folder)
    assert (folder / "onnx" / "model.onnx").read_bytes() == before


def test_only_rank_0_exports_after_a_distributed_fit(tiny_classifier, tmp_path):
    clf = TextClassifier.load(tiny_classifier, device="cpu")
    clf.is_main_process_ = False  # as fit leaves it on the other ranks
    assert clf.export_onnx(tmp_path, quantize="int8") == tmp_path / "onnx" / "model-int8.onnx"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match=r"--quantize must be int8 or omitted \(got 'fp16'\)"):
        clf.export_onnx(tmp_path, quantize="fp16")  # refused on every rank, not only where it would write
