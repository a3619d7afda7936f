"""Distributed batch prediction on a local Ray cluster (2 CPUs) against single-process predict_file and the local
engine of ``bertkit predict``."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import CLI_TRAIN_FLAGS, fails, ok, run_cli, sentiment_examples, write_csv

ray = pytest.importorskip("ray")

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def ray_cluster():
    # Workers are new processes: they must import this checkout's bertkit, and use one thread each.
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS", "RAY_USAGE_STATS_ENABLED")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), saved["PYTHONPATH"]) if p)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # tests never reach out
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2)
    yield
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def model_and_files(tiny_bert, tmp_path_factory) -> tuple[Path, list[Path]]:
    from bertkit import TextClassifier

    folder = tmp_path_factory.mktemp("ray")
    texts, labels = sentiment_examples(96)
    clf = TextClassifier(str(tiny_bert), epochs=1, batch_size=16, learning_rate=2e-3, max_length=32, progress=False)
    clf.fit(texts, labels).save(folder / "model")
    files = []
    for index, n in enumerate((1200, 900, 700)):  # 2,800 rows: with chunks of 500, parts 3 + 2 + 2
        texts, _ = sentiment_examples(n, seed=10 + index)
        rows = [[t, random.Random(i).randint(0, 9)] for i, t in enumerate(texts)]
        files.append(write_csv(folder / f"input-{index}.csv", ["review", "stars"], rows))
    table = pd.read_csv(files[2])
    files[2] = folder / "input-2.parquet"
    table.to_parquet(files[2], index=False)
    return folder / "model", files


def single_process(model: Path, files: list[Path], tmp_path: Path) -> pd.DataFrame:
    from bertkit import TextClassifier

    clf = TextClassifier.load(model)
    frames = []
    for index, path in enumerate(files):
        clf.predict_file(path, tmp_path / f"single-{index}.parquet", top_k=2)
        frames.append(pd.read_parquet(tmp_path / f"single-{index}.parquet"))
    return pd.concat(frames, ignore_index=True)


def test_ray_prediction_equals_single_process_prediction(capsys, ray_cluster, model_and_files, tmp_path):
    from bertkit.ray_predict import read_parts

    model, files = model_and_files
    out = tmp_path / "out"
    data = [arg for path in files for arg in ("--data", path)]
    _, err = ok(capsys, "predict", model, *data, "--output", out, "--engine", "ray", "--workers", "2",
                "--top-k", "2", "--chunk-rows", "500")  # fmt: skip
    assert err.strip() == f"wrote 2800 predictions from 3 files in 7 parts to {out}"
    names = sorted(p.name for p in out.glob("part-*"))
    assert names == [f"part-{f:05d}-{c:05d}.parquet" for f, chunks in ((0, 3), (1, 2), (2, 2)) for c in range(chunks)]

    merged = read_parts(out)
    expected = single_process(model, files, tmp_path)
    assert list(merged.columns) == ["input_file", "input_row", *expected.columns]
    assert merged["input_file"].tolist() == [0] * 1200 + [1] * 900 + [2] * 700
    assert merged["input_row"].tolist() == list(range(1200)) + list(range(900)) + list(range(700))
    for column in ("review", "stars", "label", "top1_label", "top2_label"):
        assert merged[column].tolist() == expected[column].tolist(), column
    for column in ("score", "top1_score", "top2_score"):
        np.testing.assert_allclose(merged[column], expected[column], atol=1e-6)
    # reading the parts in name order gives the input order too
    in_name_order = pd.concat([pd.read_parquet(out / n) for n in names], ignore_index=True)
    assert in_name_order["review"].tolist() == expected["review"].tolist()

    assert fails(capsys, "predict", model, "--data", files[0], "--output", out, "--engine", "ray") == (
        f"error: {out}: output folder is not empty; choose a new folder or empty it"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "spark"], "error: --engine must be local or ray (got 'spark')"),
        (["--engine", "ray", "some text"], "error: --engine ray predicts files: give --data FILE (repeat for more) and --output FOLDER"),
        (["--engine", "ray", "--data", "{f}"], "error: --engine ray needs --output FOLDER to write the prediction parts into"),
        (["--engine", "ray", "--data", "{f}", "--output", "{t}/x.csv"], "error: {t}/x.csv: with --engine ray, --output names a folder (parts are written into it)"),
        (["--engine", "ray", "--data", "{t}/missing.csv", "--output", "{t}/o"], "error: {t}/missing.csv: file not found; check the path (looked in {cwd})"),  # the reader's words, checked before Ray starts
        (["--engine", "ray", "--data", "{f}", "--output", "{t}/o", "--output-format", "xml"], "error: --output-format must be one of csv, tsv, jsonl, parquet (got 'xml')"),
        (["--data", "{f}", "--data", "{f}", "--output", "{t}/p.csv"], "error: --data was given 2 times; one file at a time, or several with --engine ray"),
        (["--data", "{f}", "--output", "{t}/p.csv", "--chunk-rows", "0"], "error: --chunk-rows must be a positive integer (got 0)"),
    ],
    ids=["engine", "text", "no-output", "file-output", "missing", "format", "local-two-files", "chunk-rows"],
)  # fmt: skip
def test_engine_errors(capsys, model_and_files, tmp_path, args, message):
    model, files = model_and_files
    fill = {"f": str(files[0]), "t": str(tmp_path), "cwd": str(Path.cwd())}
    assert fails(capsys, "predict", model, *[a.format(**fill) for a in args]) == message.format(**fill)


# --engine ray reads each file as the local engine does -----------------------------------------------------------


@pytest.fixture(scope="module")
def saved_settings_model(tiny_bert, tmp_path_factory) -> tuple[Path, list[Path]]:
    """A model trained with `bertkit train --text-column comment --encoding latin-1` on a CSV whose `text` column is
    a decoy; returns (model, [a latin-1 CSV, a latin-1 TSV]) of that layout, without labels, whose `id` and decoy
    columns hold values a reader could take for missing or numbers ("NA", "null", "0012")."""
    folder = tmp_path_factory.mktemp("ray-saved")
    texts, labels = sentiment_examples(64)
    rows = [[f"the film {i}", f"{t} \u00e4", y] for i, (t, y) in enumerate(zip(texts, labels, strict=True))]
    train = folder / "train.csv"
    train.write_bytes(pd.DataFrame(rows, columns=["text", "comment", "label"]).to_csv(index=False).encode("latin-1"))
    model = folder / "model"
    assert run_cli("train", "--train", train, "--output", model, "--model", tiny_bert, "--text-column", "comment",
                   "--label-column", "label", "--encoding", "latin-1", *CLI_TRAIN_FLAGS) == 0  # fmt: skip
    files = []
    for name, sep, seed in (("a.csv", ",", 3), ("b.tsv", "\t", 4)):
        texts, _ = sentiment_examples(40, seed=seed)
        ids = ["0012", "NA", "null", *(str(i) for i in range(3, 40))]
        decoys = ["NA" if i % 5 == 0 else "the plot" for i in range(40)]
        table = pd.DataFrame({"id": ids, "text": decoys, "comment": [f"{t} \u00e4" for t in texts]})
        (folder / name).write_bytes(table.to_csv(index=False, sep=sep).encode("latin-1"))
        files.append(folder / name)
    return model, files


def test_ray_reads_files_with_the_saved_settings_as_the_local_engine_does(
    capsys, ray_cluster, saved_settings_model, tmp_path
):
    from bertkit.ray_predict import read_parts

    model, files = saved_settings_model
    flags = ["--backend", "torch", "--precision", "fp32"]
    local = []
    for index, path in enumerate(files):
        _, err = ok(capsys, "predict", model, "--data", path, "--output", tmp_path / f"local-{index}.csv", *flags)
        assert f"read {path} as the model was trained: --text-column comment, --encoding latin-1" in err
        local.append(pd.read_csv(tmp_path / f"local-{index}.csv", dtype=str, keep_default_na=False))
    out = tmp_path / "out"
    _, err = ok(capsys, "predict", model, "--data", files[0], "--data", files[1], "--output", out, "--engine", "ray",
                "--output-format", "csv", *flags)  # fmt: skip
    lines = err.strip().splitlines()
    # the saved header decision describes .csv files (the training file's layout): it applies to a.csv only
    said = "as the model was trained: --text-column comment, --encoding latin-1"
    assert lines[0] == f"read {files[0]} {said}, --header (flags override these)"
    assert lines[1] == f"read {files[1]} {said} (flags override these)"
    assert lines[2] == f"wrote 80 predictions from 2 files in 2 parts to {out}"

    merged = read_parts(out)
    for index, expected in enumerate(local):
        got = merged[merged["input_file"] == index].drop(columns=["input_file", "input_row"]).reset_index(drop=True)
        assert list(got.columns) == list(expected.columns) == ["id", "text", "comment", "label", "score"]
        assert got["id"].tolist()[:3] == ["0012", "NA", "null"]
        assert got["comment"].tolist()[0].endswith(" \u00e4")
        for column in ("id", "text", "comment", "label"):
            assert got[column].tolist() == expected[column].tolist(), column
        np.testing.assert_allclose(got["score"].astype(float), expected["score"].astype(float), atol=1e-6)


# a bertkit error on a worker ---------------------------------------------------------------------------------------


@pytest.fixture()
def bad_row_file(tmp_path) -> Path:
    """30 rows whose 25th has an empty text: with --chunk-rows 10, two parts are written before the error."""
    texts, _ = sentiment_examples(30)
    rows = [[t, i] for i, t in enumerate(texts)]
    rows[24][0] = ""
    return write_csv(tmp_path / "bad.csv", ["review", "stars"], rows)


def empty_text(path: Path) -> str:
    return (
        f"{path} line 26: column 'review' is empty; every row needs a text (fix or remove the row, or pass "
        "--skip-bad-rows to skip such rows, counted in the report)"
    )


def test_a_bad_row_on_a_worker_is_one_error_line_and_leaves_no_parts(
    capsys, ray_cluster, model_and_files, bad_row_file, tmp_path
):
    model, _ = model_and_files
    out = tmp_path / "out"
    error = fails(capsys, "predict", model, "--data", bad_row_file, "--output", out, "--engine", "ray",
                  "--chunk-rows", "10")  # fmt: skip
    assert error == f"error: {empty_text(bad_row_file)}"  # the local engine's words, without Ray's traceback
    local = fails(capsys, "predict", model, "--data", bad_row_file, "--output", tmp_path / "local.csv")
    assert local == error
    assert not out.exists()  # the folder this run created, with the parts of the first two chunks, is gone

    # A folder that was there stays, empty: the parts written into it are removed.
    out.mkdir()
    assert fails(capsys, "predict", model, "--data", bad_row_file, "--output", out, "--engine", "ray",
                 "--chunk-rows", "10") == error  # fmt: skip
    assert out.is_dir() and list(out.iterdir()) == []


def test_predict_ray_raises_the_workers_bertkit_error_itself(ray_cluster, model_and_files, bad_row_file, tmp_path):
    from bertkit import predict_ray
    from bertkit.exceptions import DataError

    model, files = model_and_files
    with pytest.raises(DataError) as caught:
        predict_ray(model, [bad_row_file], tmp_path / "out", chunk_rows=10, text_column="review")
    assert type(caught.value) is DataError and str(caught.value) == empty_text(bad_row_file)
    assert not (tmp_path / "out").exists()
    # A model that cannot load fails on the workers the same way (one error, not Ray's dead-actor traceback).
    with pytest.raises(Exception) as caught:
        predict_ray(tmp_path / "no-model", [files[1]], tmp_path / "out")
    assert type(caught.value).__module__.startswith("bertkit"), repr(caught.value)
    assert "no-model" in str(caught.value) and "Traceback" not in str(caught.value)
