"""Streaming prediction of files: chunked output equals one-shot prediction, in input order."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from helpers import sentiment_examples

from bertkit import DataError, TextClassifier, load_data


@pytest.fixture(scope="module")
def clf(tiny_bert) -> TextClassifier:
    texts, labels = sentiment_examples(64)
    return TextClassifier(str(tiny_bert), epochs=1, batch_size=16, progress=False).fit(texts, labels)


def write_rows(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".tsv"])
def test_chunked_prediction_equals_whole_file_prediction(clf, tmp_path, suffix):
    texts, _ = sentiment_examples(53, seed=2)
    source = write_rows(tmp_path / "in.csv", [[i, t] for i, t in enumerate(texts)])
    output = tmp_path / f"out{suffix}"
    rows, skipped = clf.predict_file(source, output, top_k=2, chunk_rows=7)
    assert (rows, skipped) == (53, 0)
    expected = clf.predict_table(load_data(source, need_label=False), top_k=2)
    if suffix == ".parquet":
        got = pd.read_parquet(output)
    elif suffix == ".jsonl":
        got = pd.read_json(output, lines=True)
    else:
        got = pd.read_csv(output, sep="\t" if suffix == ".tsv" else ",")
    assert list(got.columns) == ["id", "text", "label", "score", "top1_label", "top1_score", "top2_label", "top2_score"]
    assert [int(v) for v in got["id"]] == list(range(53))
    assert list(got["label"]) == list(expected["label"])
    # Batches differ between chunked and whole-file runs, so summation order differs in the last bits.
    np.testing.assert_allclose(got["score"].astype(float), expected["score"].astype(float), atol=1e-5)


def test_bad_row_in_a_later_chunk_names_its_line(clf, tmp_path):
    texts, _ = sentiment_examples(30)
    rows = [[i, t] for i, t in enumerate(texts)]
    rows[24][1] = ""
    source = write_rows(tmp_path / "in.csv", rows)
    for suffix in (".csv", ".jsonl", ".parquet"):
        # The first chunks were predicted before the error: neither they nor a truncated old file are left.
        earlier = tmp_path / f"earlier{suffix}"
        earlier.write_text("an earlier run's output\n", encoding="utf-8")
        with pytest.raises(DataError, match=r"in.csv line 26: column 'text' is empty"):
            clf.predict_file(source, earlier, chunk_rows=10)
        assert earlier.read_text(encoding="utf-8") == "an earlier run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier.csv", "earlier.jsonl", "earlier.parquet", "in.csv"]
    written, skipped = clf.predict_file(source, tmp_path / "out.csv", chunk_rows=10, skip_bad_rows=True)
    assert (written, skipped) == (29, 1)


def test_the_output_may_not_be_the_input_or_a_folder(clf, tmp_path, capsys):
    from helpers import fails

    data = tmp_path / "in.csv"
    data.write_text("text\na fine film\na dull film\n")
    with pytest.raises(DataError, match=r"in.csv: --output is the --data file; writing there would replace"):
        clf.predict_file(data, data)
    assert data.read_text() == "text\na fine film\na dull film\n"
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(DataError, match=r"out.csv: is a folder; --output names the file to write"):
        clf.predict_file(data, tmp_path / "out.csv")
    folder = clf.save(tmp_path / "model")
    error = fails(capsys, "predict", folder, "--data", data, "--output", data)
    assert "--output is the --data file" in error
    assert "--top-k must be a positive integer (got 0)" in fails(capsys, "predict", folder, "a film", "--top-k", "0")
