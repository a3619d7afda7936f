"""Which backend a trained model predicts with by default (fast_backend.pick, persistence.resolve_backend)."""

from __future__ import annotations

import json

import pytest

from bertkit.classification.persistence import resolve_backend
from bertkit.fast_backend import Candidate, describe, pick


def test_the_fastest_backend_within_half_a_point_of_torch_is_chosen():
    torch, onnx = Candidate("torch", 0.860, 400.0), Candidate("onnx", 0.860, 700.0)
    assert pick([torch, onnx, Candidate("onnx-int8", 0.856, 1100.0)]) == "onnx-int8"  # -0.4 point: allowed
    assert pick([torch, onnx, Candidate("onnx-int8", 0.854, 1100.0)]) == "onnx"  # -0.6 point: too far
    assert pick([torch, onnx, Candidate("onnx-int8", 0.855, 1100.0)]) == "onnx-int8"  # exactly 0.5 point
    assert pick([Candidate("torch", 0.9, 900.0), Candidate("onnx-int8", 0.95, 800.0)]) == "torch"  # slower
    assert pick([torch]) == "torch"


def test_auto_loads_the_recorded_backend_only_when_its_graph_is_there(tmp_path):
    metadata = {"backend": {"default": "onnx-int8"}}
    assert resolve_backend(metadata, str(tmp_path), "cpu") == "torch"  # no graph in the folder
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model-int8.onnx").write_bytes(b"")
    assert resolve_backend(metadata, str(tmp_path), "cpu") == "onnx-int8"
    assert resolve_backend({"backend": {"default": "onnx"}}, str(tmp_path), "cpu") == "torch"  # model.onnx absent
    assert resolve_backend({}, str(tmp_path), "cpu") == "torch"  # a folder without the record
    assert resolve_backend({"backend": {"default": "torch"}}, str(tmp_path), "cpu") == "torch"


def test_the_line_a_run_prints_names_every_score_speed_and_the_choice():
    record = {
        "default": "onnx-int8", "metric": "accuracy", "tolerance": 0.005, "rows": 100,
        "candidates": {"torch": {"score": 0.86, "texts_per_second": 401.2},
                       "onnx-int8": {"score": 0.858, "texts_per_second": 1210.0}},
    }  # fmt: skip
    line = describe(json.loads(json.dumps(record)))
    assert line.startswith("validation accuracy: torch 0.8600 (401 texts/s), onnx-int8 0.8580 (1,210 texts/s);")
    assert "use onnx-int8 by default" in line and "--backend overrides" in line
    assert (
        describe({"default": "torch", "reason": "trained on cuda"}) == "predict and serve use torch (trained on cuda)"
    )


def test_the_device_type_is_known_without_torch_only_where_torch_would_find_no_gpu(monkeypatch):
    import sys

    import torch  # noqa: F401

    from bertkit import devices

    assert devices.device_type("cpu") == "cpu"
    assert devices.gpu_may_be_visible()  # torch is imported: it is asked
    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh `bertkit predict` (restored after the test)
    monkeypatch.setattr(devices.sys, "platform", "linux")
    monkeypatch.setattr(devices, "GPU_DEVICE_FILES", ("/nonexistent/nvidiactl",))
    assert not devices.gpu_may_be_visible() and devices.device_type("auto") == "cpu"
    monkeypatch.setattr(devices, "GPU_DEVICE_FILES", ("/dev/null",))  # a device file there: torch decides
    assert devices.gpu_may_be_visible()
    monkeypatch.setattr(devices.sys, "platform", "win32")
    monkeypatch.setattr(devices, "GPU_DEVICE_FILES", ())
    assert devices.gpu_may_be_visible()  # no device files to look at elsewhere: torch decides


def test_a_deferred_model_reads_its_config_json_and_asks_transformers_for_the_rest(tiny_classifier):
    from transformers import AutoConfig

    from bertkit.models.heads import DeferredClassifier, SavedConfig

    deferred = DeferredClassifier(str(tiny_classifier))
    full = AutoConfig.from_pretrained(str(tiny_classifier))
    assert isinstance(deferred.config, SavedConfig) and deferred.config._config is None
    for name in ("model_type", "type_vocab_size", "hidden_size", "num_labels"):
        assert getattr(deferred.config, name) == getattr(full, name), name
    assert deferred.config._config is None  # all of those from the JSON
    assert deferred.config.id2label == full.id2label  # integer keys: from transformers
    assert deferred.config._config is not None and deferred._model is None  # the weights still unloaded


def test_torch_reuses_fittings_score_only_on_the_rows_fitting_scored(monkeypatch, tmp_path):
    """Single-label: torch's validation score is fitting's own when the backends are chosen on fitting's
    validation rows; on any other rows it is measured like the graphs' (every backend timed on the same rows)."""
    from types import SimpleNamespace

    import torch

    import bertkit.fast_backend as fast_backend
    import bertkit.onnx_forward as onnx_forward

    seen: dict[str, tuple] = {}

    def candidate(classifier, name, forward, validation, metric, known=None):
        seen[name] = (known, len(validation))
        return Candidate(name, known if known is not None else 0.5, 100.0)

    monkeypatch.setattr(fast_backend, "_candidate", candidate)
    monkeypatch.setattr(onnx_forward, "OnnxForward", lambda path: path)
    monkeypatch.setattr(onnx_forward, "onnx_path", lambda folder, quantize: f"{folder}/{quantize}")
    fitted_rows = [0] * 600
    classifier = SimpleNamespace(
        model_=torch.nn.Linear(1, 1), task_="classification", validation_metrics_={"accuracy": 0.875},
        validation_data_=fitted_rows, export_onnx=lambda folder, quantize: None,
    )  # fmt: skip
    record = fast_backend._measured(classifier, tmp_path, fitted_rows)
    assert seen["torch"] == (0.875, 600) and seen["onnx"][0] is None and seen["onnx-int8"][0] is None
    assert record["rows"] == 600 and record["timed_rows"] == fast_backend.TIMED_ROWS
    fast_backend._measured(classifier, tmp_path, [0] * 20)  # other rows than fitting scored
    assert seen["torch"] == (None, 20)
    classifier.task_ = "multi-label"  # calibration can move its thresholded labels: measured, never reused
    classifier.validation_metrics_ = {"micro_f1": 0.8}
    fast_backend._measured(classifier, tmp_path, fitted_rows)
    assert seen["torch"] == (None, 600)


class _Rows(list):
    def subset(self, index):
        return _Rows(self[i] for i in index)


def test_each_backend_is_timed_on_the_same_rows_and_each_row_runs_once():
    """Past TIMED_ROWS: timed on the first TIMED_ROWS rows, scored on all from those rows' logits and the other
    rows' (not at all with a known score); up to it: one evaluate pass is both."""
    from types import SimpleNamespace

    import numpy as np

    import bertkit.fast_backend as fast_backend

    calls: list[tuple[str, int]] = []

    def example_logits(rows):
        calls.append(("logits", len(rows)))
        return np.zeros((len(rows), 2))

    def scored(rows, logits=None, truncated=None):
        calls.append(("score", len(rows) if logits is None else ("given", len(logits), truncated)))
        return SimpleNamespace(metrics={"accuracy": 0.8})

    classifier = SimpleNamespace(
        _example_logits=example_logits, _logits_and_truncated=lambda rows: (example_logits(rows), len(rows) // 100),
        evaluate=scored, _evaluate=scored,
    )  # fmt: skip
    many, few, timed = _Rows(range(600)), _Rows(range(20)), fast_backend.TIMED_ROWS
    assert fast_backend._candidate(classifier, "onnx", object(), many, "accuracy").score == 0.8
    # the truncated count comes with the logits: no row is tokenized a second time for the report
    assert calls == [("logits", 16), ("logits", timed), ("logits", 600 - timed), ("score", ("given", 600, 5 + 0))]
    calls.clear()
    assert fast_backend._candidate(classifier, "torch", None, many, "accuracy", known=0.9).score == 0.9
    assert calls == [("logits", 16), ("logits", timed)]
    calls.clear()
    assert fast_backend._candidate(classifier, "onnx", object(), few, "accuracy").score == 0.8
    assert calls == [("logits", 16), ("score", 20)]


def test_a_score_from_the_timed_rows_logits_and_the_rest_equals_evaluate(tiny_bert, monkeypatch):
    import numpy as np
    from helpers import sentiment_examples

    import bertkit.fast_backend as fast_backend
    from bertkit import TextClassifier
    from bertkit.data.dataset import from_lists

    texts, labels = sentiment_examples(40)
    classifier = TextClassifier(str(tiny_bert), epochs=1, batch_size=8, seed=0, progress=False).fit(texts, labels)
    monkeypatch.setattr(fast_backend, "TIMED_ROWS", 7)  # 7 rows timed, 33 more scored
    candidate = fast_backend._candidate(classifier, "torch", None, from_lists(texts, labels), "accuracy")
    assert candidate.score == classifier.score(texts, labels)
    whole = classifier.evaluate(texts, labels).metrics
    parts = np.concatenate([classifier._example_logits(texts[:7]), classifier._example_logits(texts[7:])])
    assert classifier._evaluate(texts, labels, logits=parts).metrics == pytest.approx(whole, abs=1e-6)
    given = classifier._evaluate(texts, labels, logits=parts, truncated=3)
    assert given.truncated == 3 and given.metrics == pytest.approx(whole, abs=1e-6)
    with pytest.raises(ValueError, match="39 rows of logits for 40 examples"):
        classifier._evaluate(texts, labels, logits=parts[1:])
