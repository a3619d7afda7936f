"""`bertkit train` exports the model, scores every backend on validation and records the default that predict,
evaluate and serve load; --backend overrides it, --no-export skips it (tiny BERT)."""

from __future__ import annotations

import json

import numpy as np
from helpers import ok, read_csv, sentiment_examples, write_csv

from bertkit import TextClassifier
from bertkit.models.heads import DeferredClassifier

FLAGS = ["--epochs", "2", "--batch-size", "16", "--learning-rate", "0.002", "--max-length", "32"]


def test_train_records_the_fastest_backend_within_half_a_point_and_predict_uses_it(capsys, tmp_path, tiny_bert):
    texts, labels = sentiment_examples(96)
    train = write_csv(tmp_path / "train.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    held_out, held_labels = sentiment_examples(24, seed=5)
    validation = write_csv(tmp_path / "validation.csv", ["text", "label"],
                           [list(r) for r in zip(held_out, held_labels, strict=True)])  # fmt: skip
    model = tmp_path / "model"
    _, err = ok(capsys, "train", "--train", train, "--validation", validation, "--output", model,
                "--model", tiny_bert, *FLAGS)  # fmt: skip
    record = json.loads((model / "bertkit.json").read_text())["backend"]
    assert set(record["candidates"]) == {"torch", "onnx", "onnx-int8"} and record["metric"] == "accuracy"
    assert record["rows"] == record["timed_rows"] == 24 and (model / "onnx" / "model-int8.onnx").is_file()
    scores = {name: c["score"] for name, c in record["candidates"].items()}
    # the recorded torch score is the score torch gives the validation file
    assert scores["torch"] == TextClassifier.load(model, backend="torch").score(held_out, held_labels)
    speeds = {name: c["texts_per_second"] for name, c in record["candidates"].items()}
    eligible = [name for name in scores if scores[name] >= scores["torch"] - 0.005]
    assert record["default"] == max(eligible, key=speeds.get)
    assert f"predict and serve use {record['default']} by default" in err

    loaded = TextClassifier.load(model)
    assert loaded.backend_ == record["default"]
    # an ONNX graph predicts without the torch model, which loads only when asked for (here: by save)
    int8 = TextClassifier.load(model, backend="onnx-int8")
    assert isinstance(int8.model_, DeferredClassifier) and int8.predict(texts[:5]) is not None
    assert int8.model_._model is None
    np.testing.assert_allclose(int8.predict_proba(texts[:8]), int8.predict_proba(texts[:8]))
    int8.save(tmp_path / "copy")
    assert int8.model_._model is not None
    np.testing.assert_allclose(
        TextClassifier.load(tmp_path / "copy", backend="torch").predict_proba(texts[:8]),
        TextClassifier.load(model, backend="torch").predict_proba(texts[:8]), atol=1e-6,
    )  # fmt: skip
    assert TextClassifier.load(model, backend="torch").backend_ == "torch"
    # predict follows the record; the probabilities are those of the chosen graph
    out = tmp_path / "p.csv"
    ok(capsys, "predict", model, "--data", train, "--output", out)
    expected = loaded.predict(texts)
    assert [row["predicted_label"] for row in read_csv(out)] == list(expected)


def test_no_export_keeps_torch_and_writes_no_graph(capsys, tmp_path, tiny_bert):
    texts, labels = sentiment_examples(64)
    train = write_csv(tmp_path / "train.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    model = tmp_path / "model"
    ok(capsys, "train", "--train", train, "--output", model, "--model", tiny_bert, *FLAGS, "--quiet", "--no-export")
    assert "backend" not in json.loads((model / "bertkit.json").read_text())
    assert not (model / "onnx").exists()
    loaded = TextClassifier.load(model)
    assert loaded.backend_ == "torch" and np.isfinite(loaded.predict_proba(texts[:4])).all()


def test_a_refused_export_keeps_torch_and_says_why(tmp_path, tiny_bert, monkeypatch):
    from bertkit.exceptions import ModelLoadError
    from bertkit.fast_backend import choose_backend, describe

    texts, labels = sentiment_examples(48)
    clf = TextClassifier(model=str(tiny_bert), epochs=1, max_length=32, progress=False).fit(texts, labels)
    clf.save(tmp_path / "model")

    def refused(*args, **kwargs):
        raise ModelLoadError("model.onnx: exported graph disagrees with torch (max logit error 2)")

    monkeypatch.setattr(clf, "export_onnx", refused)
    record = choose_backend(clf, tmp_path / "model", clf.validation_data_)
    assert record["default"] == "torch" and "disagrees with torch" in record["reason"]
    assert json.loads((tmp_path / "model" / "bertkit.json").read_text())["backend"] == record
    assert describe(record).startswith("predict and serve use torch (the ONNX export was refused: model.onnx")
    assert TextClassifier.load(tmp_path / "model").backend_ == "torch"
