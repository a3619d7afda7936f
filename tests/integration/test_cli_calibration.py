"""Calibration, prediction sets and abstaining (issue 22) through TextClassifier and the ``bertkit`` CLI, on
tiny models trained once per module."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import fails, ok, read_csv, sentiment_examples, write_csv
from scipy.special import softmax

from bertkit import ConfigError, TextClassifier

SETTINGS = {"epochs": 1, "batch_size": 16, "learning_rate": 0.002, "max_length": 32, "progress": False}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("calibration")


@pytest.fixture(scope="module")
def model(tiny_bert, files) -> Path:
    """A sentiment classifier calibrated on valid.csv's 80 rows; test.csv has 40 more. A tiny random BERT learns
    little in seconds, so after fit (which calibrates on its validation rows: what it found is in fit.json) its
    head gets large random weights (answers that differ from text to text) and it is calibrated again."""
    texts, labels = sentiment_examples(64)
    clf = TextClassifier(str(tiny_bert), **SETTINGS).fit(texts, labels, eval_set=sentiment_examples(24, seed=1))
    fitted = {"temperature": clf.temperature_, "scores": len(clf.conformal_scores_)}
    fitted["report"] = clf.validation_report_.calibration
    (files / "fit.json").write_text(json.dumps(fitted))
    with torch.no_grad():
        head = clf.model_.classifier.weight
        head.copy_(torch.randn(head.shape, generator=torch.Generator().manual_seed(0)) * 4)
    for name, n, seed in (("valid.csv", 80, 2), ("test.csv", 40, 3)):
        rows, drawn = sentiment_examples(n, seed=seed)
        write_csv(files / name, ["text", "label"], [list(r) for r in zip(rows, drawn, strict=True)])
    valid = pd.read_csv(files / "valid.csv")
    clf.calibrate(list(valid.text), list(valid.label))
    return clf.save(files / "model")


@pytest.fixture(scope="module")
def test_rows(model, files) -> pd.DataFrame:
    return pd.read_csv(files / "test.csv")


def test_fit_calibrates_on_its_validation_rows(model, files):
    fitted = json.loads((files / "fit.json").read_text())
    assert fitted["scores"] == 24 and fitted["report"]["temperature"] == fitted["temperature"]
    assert {"ece_uncalibrated", "ece_calibrated", "brier_uncalibrated", "brier_calibrated"} <= set(fitted["report"])


def test_the_folder_holds_the_temperature_and_the_sorted_scores_of_the_validation_rows(model, files):
    meta = json.loads((model / "bertkit.json").read_text())
    temperature = meta["calibration"]["temperature"]
    assert meta["calibration"]["method"] == "temperature"
    assert temperature > 0 and temperature != 1
    scores = meta["conformal"]["scores"]
    assert meta["conformal"]["n"] == len(scores) == 80 and scores == sorted(scores)
    assert {"ece", "brier"} <= set(meta["validation_metrics"])
    # the scores are 1 - p(true label) of the calibrated probabilities of the validation rows
    valid = pd.read_csv(files / "valid.csv")
    clf = TextClassifier.load(model, device="cpu")  # the precision the scores were computed at
    proba = clf.predict_proba(list(valid.text))
    truth = np.array([list(clf.classes_).index(v) for v in valid.label])
    np.testing.assert_allclose(sorted(1 - proba[np.arange(80), truth]), scores, atol=1e-5)


def test_no_calibration_gives_the_model_s_own_probabilities(model, test_rows, capsys):
    texts = list(test_rows.text)
    calibrated = TextClassifier.load(model, device="cpu")
    raw = TextClassifier.load(model, device="cpu", calibration=False)
    temperature = calibrated.temperature_
    assert abs(temperature - 1) > 0.05  # otherwise the comparison below could not tell them apart
    raw_proba, proba = raw.predict_proba(texts), calibrated.predict_proba(texts)
    np.testing.assert_allclose(proba, softmax(np.log(raw_proba) / temperature, axis=1), atol=1e-5)
    assert not np.allclose(proba, raw_proba, atol=1e-3)
    assert (raw.predict(texts) == calibrated.predict(texts)).all()  # one temperature never changes the argmax
    row = json.loads(ok(capsys, "predict", model, texts[0], "--no-calibration", "--top-k", "2")[0])
    assert row["top1_score"] == pytest.approx(raw_proba[0].max(), abs=1e-5)
    row = json.loads(ok(capsys, "predict", model, texts[0], "--top-k", "2")[0])
    assert row["top1_score"] == pytest.approx(proba[0].max(), abs=1e-5)


def test_predict_coverage_adds_the_prediction_sets(model, files, test_rows, tmp_path, capsys):
    expected = TextClassifier.load(model, device="cpu").predict_set(list(test_rows.text), coverage=0.9)
    assert any(len(s) != len(expected[0]) for s in expected) or len(expected[0]) == 1  # not every set the same
    out = tmp_path / "out.csv"
    ok(capsys, "predict", model, "--data", files / "test.csv", "--output", out, "--coverage", "0.9")
    assert [json.loads(r["prediction_set"]) for r in read_csv(out)] == expected  # a JSON list in CSV
    out = tmp_path / "out.jsonl"
    ok(capsys, "predict", model, "--data", files / "test.csv", "--output", out, "--coverage", "0.9")
    assert [json.loads(line)["prediction_set"] for line in out.read_text().splitlines()] == expected
    row = json.loads(ok(capsys, "predict", model, test_rows.text[0], "--coverage", "0.9")[0])
    assert row["prediction_set"] == expected[0]


def test_evaluate_json_reports_calibration_and_set_coverage(model, files, test_rows, capsys):
    clf = TextClassifier.load(model, device="cpu")
    sets = clf.predict_set(list(test_rows.text), coverage=0.8)
    out, _ = ok(capsys, "evaluate", model, "--data", files / "test.csv", "--coverage", "0.8", "--json")
    report = json.loads(out)
    assert {"ece", "brier", "set_coverage", "mean_set_size", "target_coverage", "calibration"} <= set(report)
    assert report["set_coverage"] == pytest.approx(
        np.mean([y in s for y, s in zip(test_rows.label, sets, strict=True)])
    )
    assert report["mean_set_size"] == pytest.approx(np.mean([len(s) for s in sets]))
    calibration = report["calibration"]
    assert calibration["temperature"] == pytest.approx(clf.temperature_)
    assert calibration["ece_calibrated"] == report["ece"] and "ece_uncalibrated" in calibration
    assert 0 <= report["ece"] <= 1 and 0 <= report["brier"] <= 2


def test_evaluate_report_dir_writes_a_reliability_diagram(model, files, tmp_path, capsys):
    ok(capsys, "evaluate", model, "--data", files / "test.csv", "--report-dir", tmp_path / "report")
    assert (tmp_path / "report" / "reliability.png").stat().st_size > 1000
    assert "calibration" in json.loads((tmp_path / "report" / "report.json").read_text())


def test_abstain_below_withholds_and_counts_the_unsure_rows(model, files, test_rows, tmp_path, capsys):
    clf = TextClassifier.load(model, device="cpu")
    proba = clf.predict_proba(list(test_rows.text))
    top = proba.max(axis=1)
    ordered = np.sort(top)
    cut = float((ordered[19] + ordered[20]) / 2)  # str(cut) reads back as the same float
    unsure = top < cut
    assert unsure.sum() == 20
    out = tmp_path / "out.csv"
    _, err = ok(capsys, "predict", model, "--data", files / "test.csv", "--output", out, "--abstain-below", str(cut))
    assert f"{unsure.sum()} of 40 rows abstained" in err
    rows = read_csv(out)
    assert [r["predicted_label"] == "" for r in rows] == list(unsure)  # empty in CSV (the input has "label")
    out = tmp_path / "out.jsonl"
    ok(capsys, "predict", model, "--data", files / "test.csv", "--output", out, "--abstain-below", str(cut))
    assert [json.loads(line)["predicted_label"] is None for line in out.read_text().splitlines()] == list(unsure)
    unsure_text = test_rows.text[int(np.argmin(top))]
    printed, err = ok(capsys, "predict", model, unsure_text, "--abstain-below", str(cut))
    assert json.loads(printed)["label"] is None and "1 of 1 rows abstained" in err  # null, not "<NA>"
    report = json.loads(
        ok(capsys, "evaluate", model, "--data", files / "test.csv", "--abstain-below", str(cut), "--json")[0]
    )
    right = proba.argmax(axis=1) == np.array([list(clf.classes_).index(v) for v in test_rows.label])
    assert report["abstained"] == unsure.sum() and report["coverage_rate"] == pytest.approx(1 - unsure.mean())
    assert report["answered_accuracy"] == pytest.approx(right[~unsure].mean())


def test_a_folder_saved_without_a_temperature_predicts_as_before(model, files, test_rows, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(model, old)
    meta = json.loads((old / "bertkit.json").read_text())
    del meta["calibration"], meta["conformal"]
    (old / "bertkit.json").write_text(json.dumps(meta))
    loaded = TextClassifier.load(old, device="cpu")
    assert loaded.temperature_ is None and loaded.conformal_scores_ is None
    texts = list(test_rows.text)
    raw = TextClassifier.load(model, device="cpu", calibration=False).predict_proba(texts)
    np.testing.assert_allclose(loaded.predict_proba(texts), raw, atol=1e-6)
    report = json.loads(ok(capsys, "evaluate", old, "--data", files / "test.csv", "--json")[0])
    assert "ece" in report and "calibration" not in report
    error = fails(capsys, "predict", old, "a good film", "--coverage", "0.9")
    assert "no conformity scores" in error and "retrain" in error


def test_coverage_must_lie_strictly_between_0_and_1(model, files, capsys):
    error = fails(capsys, "predict", model, "a good film", "--coverage", "1.5")
    assert "coverage (--coverage) must be a probability strictly between 0 and 1" in error
    error = fails(capsys, "evaluate", model, "--data", files / "test.csv", "--coverage", "0")
    assert "coverage (--coverage) must be a probability strictly between 0 and 1" in error
    assert "--abstain-below" in fails(capsys, "predict", model, "a good film", "--abstain-below", "2")
    error = fails(capsys, "predict", model, "a good film", "--coverage", "0.9", "--no-calibration")
    assert "leave out --no-calibration" in error


def test_multi_label_models_calibrate_each_label_but_refuse_sets(tiny_bert, tmp_path, capsys):
    texts, labels = sentiment_examples(48)
    tags = [[label, "long"] if len(text.split()) > 4 else [label] for text, label in zip(texts, labels, strict=True)]
    clf = TextClassifier(str(tiny_bert), **SETTINGS).fit(texts, tags)
    folder = clf.save(tmp_path / "multi")
    temperatures = json.loads((folder / "bertkit.json").read_text())["calibration"]["temperature"]
    assert len(temperatures) == len(clf.classes_) == 3
    raw = TextClassifier.load(folder, device="cpu", calibration=False)
    loaded = TextClassifier.load(folder, device="cpu")
    assert raw.predict(texts) == loaded.predict(texts)  # thresholds follow the calibration: the same label sets
    with pytest.raises(ConfigError, match="single-label classification only"):
        loaded.predict_set(texts[:2])
    assert "single-label classification only" in fails(capsys, "predict", folder, "a film", "--coverage", "0.9")
    assert "single-label classification only" in fails(capsys, "predict", folder, "a film", "--abstain-below", "0.5")


def test_regression_models_have_no_calibration_and_refuse_sets(tiny_bert, tmp_path, capsys):
    texts, _ = sentiment_examples(32)
    clf = TextClassifier(str(tiny_bert), **SETTINGS).fit(texts, [len(t) / 10 for t in texts])
    folder = clf.save(tmp_path / "regression")
    assert "calibration" not in json.loads((folder / "bertkit.json").read_text())
    assert "single-label classification only" in fails(capsys, "predict", folder, "a film", "--coverage", "0.9")


def test_the_service_serves_calibrated_probabilities_unless_told_not_to(model, test_rows):
    pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")
    from fastapi.testclient import TestClient

    from bertkit.serving import ServeSettings, create_app

    texts = list(test_rows.text[:4])
    for calibration in (True, False):
        expected = TextClassifier.load(model, device="cpu", calibration=calibration).predict_proba(texts)
        with TestClient(create_app(model, ServeSettings(device="cpu", calibration=calibration))) as client:
            deadline = time.monotonic() + 60
            while client.get("/ready").status_code != 200:  # the model loads in the background
                assert time.monotonic() < deadline
                time.sleep(0.02)
            response = client.post("/predict", json={"texts": texts})
            served = [list(p["probabilities"].values()) for p in response.json()["predictions"]]
            np.testing.assert_allclose(served, expected, atol=1e-5)
            temperature = client.get("/info").json()["model"]["temperature"]
            assert (temperature is not None) == calibration
