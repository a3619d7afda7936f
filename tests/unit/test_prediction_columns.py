"""The columns ``predict`` adds to the input rows: an input column is never overwritten (a file a previous
prediction wrote keeps its columns), and abstained labels keep a type, so Parquet chunks agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import NEGATIVE, POSITIVE, write_csv

from bertkit import TextClassifier
from bertkit.classification.tables import free_name


def test_free_names_never_take_an_input_column():
    assert free_name("label", ["text"]) == "label"
    assert free_name("label", ["text", "label"]) == "predicted_label"
    assert free_name("label", ["label", "predicted_label", "predicted_label_2"]) == "predicted_label_3"


def test_a_file_a_previous_prediction_wrote_keeps_its_columns(tiny_classifier, tmp_path):
    columns = ["text", "label", "predicted_label", "score", "predicted_score"]
    data = write_csv(tmp_path / "old.csv", columns, [["a great film", "positive", "MYCOL", "0.1", "0.2"]])
    clf = TextClassifier.load(tiny_classifier, device="cpu")
    out = tmp_path / "new.csv"
    clf.predict_file(data, out)
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame.loc[0, "predicted_label"] == "MYCOL" and frame.loc[0, "predicted_score"] == 0.2  # as they were
    assert frame.loc[0, "predicted_label_2"] in ("negative", "positive") and 0 < frame.loc[0, "predicted_score_2"] <= 1


def test_parquet_output_whose_first_chunk_abstains_everywhere(tiny_classifier, tmp_path):
    rows = [[f"text number {i}"] for i in range(6)]
    data = write_csv(tmp_path / "d.csv", ["text"], rows)
    clf = TextClassifier.load(tiny_classifier, device="cpu")
    scores = clf.predict_proba([r[0] for r in rows]).max(axis=1)
    below = float(scores[:2].max()) + 1e-6  # the first chunk's two rows abstain, some later rows may not
    out = tmp_path / "p.parquet"
    written, _ = clf.predict_file(data, out, abstain_below=below, chunk_rows=2)
    frame = pd.read_parquet(out)
    assert written == 6 and frame["label"].isna()[:2].all()
    assert frame["label"].dropna().tolist() == [
        label for label, score in zip(clf.predict([r[0] for r in rows]), scores, strict=True) if score >= below
    ]


def test_top_k_is_checked_in_the_api_too_and_regression_has_no_labels_to_rank(tiny_classifier, tiny_bert):
    from bertkit import ConfigError

    clf = TextClassifier.load(tiny_classifier, device="cpu")
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError, match=r"^top_k \(--top-k\) must be a positive integer"):
            clf.predict_table(["a film"], top_k=bad)
    regression = TextClassifier(str(tiny_bert), epochs=1, progress=False).fit(
        [f"film {i}" for i in range(12)], [i + 0.5 for i in range(12)]
    )
    with pytest.raises(ConfigError, match=r"ranks labels, and a regression model has none"):
        regression.predict_table(["a film"], top_k=3)
    assert "score" in regression.predict_table(["a film"]).columns


def test_coverage_without_calibration_is_refused_only_where_calibration_changes_the_probabilities(tiny_bert):
    import pytest
    from helpers import sentiment_examples

    from bertkit import ConfigError

    clf = TextClassifier(str(tiny_bert), epochs=1, progress=False).fit(*sentiment_examples(40))
    clf.use_calibration = False
    clf.temperature_ = 1.0  # fitted and dropped by the cross-fitted check: the same probabilities
    assert clf.conformal_threshold(0.9) >= 0
    clf.temperature_ = 2.0
    with pytest.raises(ConfigError, match="--coverage needs the calibrated probabilities"):
        clf.conformal_threshold(0.9)


@pytest.mark.parametrize(
    ("classes", "arrow_type"),
    [([3, 7], "int64"), ([False, True], "bool"), ([0.5, 1.5], "double")],
    ids=["int", "bool", "float"],
)
def test_abstained_labels_keep_the_classes_type_in_parquet_chunks(tiny_bert, tmp_path, classes, arrow_type):
    import pyarrow.parquet as pq

    texts = [f"a {good} and {bad} film" for good, bad in zip(POSITIVE, NEGATIVE[::-1], strict=True)]
    texts += [f"{good} {bad}" for good, bad in zip(POSITIVE[:4], NEGATIVE[:4], strict=True)]
    labels = [classes[i % 2] for i in range(12)]
    clf = TextClassifier(str(tiny_bert), epochs=1, task="classification", progress=False).fit(texts, labels)
    assert clf.predict(texts[:2]).dtype == clf.classes_.dtype  # what scikit-learn's metrics compare
    scores = clf.predict_proba(texts).max(axis=1)
    ordered = [texts[i] for i in scores.argsort()]  # the two least sure rows first: the first chunk abstains
    cut = np.sort(scores)
    assert cut[1] < cut[2], "the tiny model gave three rows the same top probability"
    data = write_csv(tmp_path / "d.csv", ["text"], [[t] for t in ordered])
    out = tmp_path / "p.parquet"
    written, _ = clf.predict_file(data, out, abstain_below=float(cut[1] + cut[2]) / 2, chunk_rows=2)
    label_type = pq.read_schema(out).field("label").type
    assert written == 12 and str(label_type) == arrow_type
    labels = pq.read_table(out).column("label").to_pylist()
    assert labels[:2] == [None, None] and labels[2:] == clf.predict(ordered[2:]).tolist()
