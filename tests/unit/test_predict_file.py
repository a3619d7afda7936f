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


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_skip_bad_rows_goes_on_past_a_chunk_of_only_bad_rows(clf, tmp_path, suffix):
    texts, _ = sentiment_examples(6)
    # chunks of 2: [good, bad], [bad, bad], [good, good], [bad, bad]: the second and last have no usable row
    cells = [texts[0], "", "", "", texts[1], texts[2], "", ""]
    source = write_rows(tmp_path / "in.csv", [[i, t] for i, t in enumerate(cells)])
    output = tmp_path / f"out{suffix}"
    assert clf.predict_file(source, output, chunk_rows=2, skip_bad_rows=True) == (3, 5)
    got = pd.read_parquet(output) if suffix == ".parquet" else pd.read_json(output, lines=True) if suffix == ".jsonl" \
        else pd.read_csv(output)  # fmt: skip
    assert [int(v) for v in got["id"]] == [0, 4, 5] and list(got["label"]) == list(clf.predict(texts[:3]))
    chunks = list(clf.iter_predict_file(source, chunk_rows=2, skip_bad_rows=True, abstain_below=1.0))
    assert [(len(f), n) for f, n in chunks] == [(1, 1), (2, 2), (0, 2)]
    for frame, _ in chunks:
        frame.insert(0, "input_file", 0)  # as a Ray worker does, in place: the trailing empty frame is its own
    assert chunks[-1][0].attrs.get("abstained", 0) == 0  # not the previous chunk's count again
    rows = [[i, ""] for i in range(4)]
    with pytest.raises(DataError, match=r"in.csv: no usable rows \(4 skipped as empty\)"):
        clf.predict_file(write_rows(tmp_path / "in.csv", rows), tmp_path / "none.csv", chunk_rows=2, skip_bad_rows=True)


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


def test_a_file_of_no_rows_is_an_error_and_leaves_an_earlier_output(clf, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, column in (("empty.parquet", "text"), ("no_text.parquet", "foo")):
        source = tmp_path / name
        pq.write_table(pa.table({column: pa.array([], pa.string())}), source)
        earlier = tmp_path / "out.csv"
        earlier.write_text("an earlier run's output\n", encoding="utf-8")
        message = f"{source}: file is empty; it needs at least one row of data"
        with pytest.raises(DataError, match=f"^{message}$"):
            clf.predict_file(source, earlier)
        assert earlier.read_text(encoding="utf-8") == "an earlier run's output\n"
        with pytest.raises(DataError, match=f"^{message}$"):  # what evaluate reads the same file with
            load_data(source)


def test_a_reader_that_yields_no_chunk_is_an_error(clf, tmp_path, monkeypatch):
    import bertkit.data.readers as readers

    monkeypatch.setattr(readers, "iter_tables", lambda *args, **kwargs: iter(()))
    with pytest.raises(DataError, match=r"in.csv: file is empty; it needs at least one row of data"):
        clf.predict_file(tmp_path / "in.csv", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_parquet_ids_with_a_null_come_out_exact(clf, tmp_path, suffix):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [1234567890123456789, None, 3]
    source = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "text": ["great film", "boring", "lovely"]}), source)
    output = tmp_path / f"out{suffix}"
    clf.predict_file(source, output, chunk_rows=2)
    if suffix == ".parquet":
        assert pq.read_table(output).column("id").to_pylist() == ids
        assert str(pq.read_table(output).schema.field("id").type) == "int64"
    elif suffix == ".jsonl":
        assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == ids
    else:
        lines = output.read_text().splitlines()[1:]
        assert [line.split("\t" if suffix == ".tsv" else ",")[0] for line in lines] == ["1234567890123456789", "", "3"]


def test_parquet_binary_texts_are_read_as_utf8_text(clf, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["good film", "bad plot", "café"]
    source = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"text": pa.array([t.encode() for t in texts], pa.binary())}), source)
    assert load_data(source, need_label=False).texts == texts
    output = tmp_path / "out.csv"
    clf.predict_file(source, output)
    got = pd.read_csv(output)
    assert got["text"].tolist() == texts
    assert got["label"].tolist() == list(clf.predict(texts))
    pq.write_table(pa.table({"text": pa.array([b"good", b"caf\xe9"], pa.binary())}), source)
    message = (
        r"bin.parquet row 2: column 'text' holds bytes that are not UTF-8 text \(unexpected end of data at byte 3\)"
    )
    with pytest.raises(DataError, match=message):
        clf.predict_file(source, output)


def test_jsonl_with_mixed_passthrough_columns_writes_parquet(clf, tmp_path):
    import pyarrow.parquet as pq

    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"text": "good", "id": 1, "big": 12345678901234567890, "label": ["a", "b"]}\n'
        '{"text": "bad", "id": "x2", "big": 1, "label": "c"}\n',
        encoding="utf-8",
    )
    output = tmp_path / "out.parquet"
    assert clf.predict_file(source, output) == (2, 0)
    table = pq.read_table(output).to_pydict()
    assert table["id"] == ["1", "x2"]
    assert table["big"] == [12345678901234567890, 1]
    assert table["label"] == ['["a", "b"]', "c"]
    assert table["predicted_label"] == list(clf.predict(["good", "bad"]))
