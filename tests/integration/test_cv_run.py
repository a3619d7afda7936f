"""``bertkit cv`` for real: the packaged MiniLM on the packaged sentiment data (out-of-fold accuracy well above
chance, a fold model's card naming its hub base model), and the regression and multi-label paths on the tiny
BERT (plain K-fold, their out-of-fold columns)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ok, write_csv
from huggingface_hub import ModelCard

from bertkit import TrainConfig, cross_validate, load_data

DEMO_TRAIN = Path(str(files("bertkit") / "demo_data" / "sentiment_train.csv"))


def test_minilm_cross_validation_on_the_demo_data(capsys, tmp_path):
    output = tmp_path / "cv"
    out, _ = ok(capsys, "cv", "--train", DEMO_TRAIN, "--output", output, "--folds", "3", "--epochs", "3",
                "--max-length", "64", "--keep-models", "--quiet")  # fmt: skip
    report = json.loads((output / "cv_report.json").read_text())
    oof = pd.read_csv(output / "oof_predictions.csv")
    rows = len(pd.read_csv(DEMO_TRAIN))
    assert sorted(oof["input_row"]) == list(range(rows))
    assert report["oof_metrics"]["accuracy"] >= 0.8, report["oof_metrics"]
    assert report["mean"]["accuracy"] >= 0.8 and report["std"]["accuracy"] < 0.15
    assert "3-fold cross-validation" in out
    card = ModelCard.load(output / "fold-1" / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert {r.metric_type for r in card.data.eval_results} >= {"accuracy", "mcc"}


def test_regression_and_multi_label_folds(tiny_bert, tmp_path):
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["good", "bad", "film", "plot", "music"], size=5)) for _ in range(24)]
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=8, max_length=16)
    values = [[t, round(float(t.count("good") - t.count("bad")) + 0.5, 1)] for t in texts]
    data = load_data(write_csv(tmp_path / "reg.csv", ["text", "label"], values))
    result = cross_validate(config, data, folds=3, output=tmp_path / "reg", progress=False)
    assert result.task == "regression" and set(result.oof_metrics) >= {"pearson", "mse"}
    assert not [c for c in result.oof.columns if c.startswith("proba_")]
    assert sorted(result.oof["input_row"]) == list(range(24))
    tags = [[t, ",".join(sorted({w for w in t.split() if w in ("good", "bad")} or {"film"}))] for t in texts]
    data = load_data(write_csv(tmp_path / "multi.csv", ["text", "label"], tags), label_column="label")
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=8, max_length=16, task="multi-label")
    result = cross_validate(config, data, folds=3, output=tmp_path / "multi", progress=False)
    assert result.task == "multi-label" and result.oof_metrics == {}
    assert {f"proba_{c}" for c in result.classes} <= set(result.oof.columns)
    written = pd.read_csv(tmp_path / "multi" / "oof_predictions.csv", keep_default_na=False)
    assert list(written["label"]) == [tags[i][1] for i in written["input_row"]]


@pytest.mark.parametrize("folds", [2])
def test_stratified_folds_hold_both_labels(folds, tiny_bert, tmp_path):
    data = load_data(DEMO_TRAIN)
    config = TrainConfig(model=str(tiny_bert), epochs=1, batch_size=32, max_length=16, max_train_rows=40)
    result = cross_validate(config, data, folds=folds, progress=False)
    by_fold = result.oof.groupby("fold")["label"].value_counts().unstack()
    assert (by_fold.max(axis=1) - by_fold.min(axis=1) <= 2).all() and by_fold.shape == (folds, 2)
